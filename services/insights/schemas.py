"""Insights's request and response bodies."""

from pydantic import BaseModel, Field


class ReleaseRequest(BaseModel):
    year: int = Field(ge=2000, le=2100)


class ReleaseSummary(BaseModel):
    id: str
    year: int
    epsilon: float
    delta: float
    created_at: str
