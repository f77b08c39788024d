"""Audit's response bodies."""

from typing import Any

from pydantic import BaseModel


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Timeline(BaseModel):
    referral_id: str
    events: list[dict[str, Any]]


class SubjectAccessPage(BaseModel):
    referral_id: str
    items: list[dict[str, Any]]
    next_cursor: str | None


class Checkpoints(BaseModel):
    origin: str
    public_key: str
    checkpoints: list[dict[str, Any]]
