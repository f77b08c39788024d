"""CloudEvents 1.0 envelope and its Kafka binary-mode mapping.

Binary mode: attributes travel as `ce_*` headers, `datacontenttype` as `content-type`, the data as
the record value; the record key is the subject (referral id) so one referral stays in order.
W3C trace context travels in `traceparent` as DESIGN.md asks.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from uuid6 import uuid7

from contracts.events import Payload, parse_payload, type_of

CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]


class InvalidEvent(ValueError):
    """A Kafka record that is not a valid NRM CloudEvent."""


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: Headers


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="UUIDv7, unique per event")
    source: str = Field(
        description="Producing service: an absolute URI naming the deployment, "
        "`urn:nrm:<deployment>:<service>` (`NRM_EVENT_SOURCE`)",
        examples=["urn:nrm:local:intake"],
    )
    type: str = Field(examples=["referral.submitted"])
    specversion: Literal["1.0"] = "1.0"
    time: AwareDatetime
    subject: str | None = Field(default=None, description="Referral id")
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str | None = Field(default=None, description="W3C trace context")
    agency: str | None = Field(default=None, description="Acting agency (extension)")
    actor: str | None = Field(
        default=None, description="Who acted: a person's username, or a client id (extension)"
    )
    sequence: int | None = Field(
        default=None,
        ge=1,
        description=(
            "CloudEvents `sequence` extension: the source's event number, gap-free in commit "
            "order (given by the outbox relay when it publishes)"
        ),
    )
    data: dict[str, Any]

    @classmethod
    def new(
        cls,
        *,
        source: str,
        payload: Payload,
        subject: str | None,
        agency: str | None = None,
        traceparent: str | None = None,
        actor: str | None = None,
    ) -> "CloudEvent":
        return cls(
            id=str(uuid7()),
            source=source,
            type=type_of(payload),
            time=datetime.now(UTC),
            subject=subject,
            traceparent=traceparent,
            agency=agency,
            actor=actor,
            data=payload.model_dump(mode="json"),
        )

    def payload(self) -> Payload:
        """The typed payload; raises `pydantic.ValidationError` if `data` does not fit."""
        return parse_payload(self.type, self.data)

    def to_kafka(self) -> KafkaRecord:
        headers: Headers = [
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_specversion", self.specversion.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("content-type", self.datacontenttype.encode()),
        ]
        if self.subject is not None:
            headers.append(("ce_subject", self.subject.encode()))
        if self.agency is not None:
            headers.append(("ce_agency", self.agency.encode()))
        if self.actor is not None:
            headers.append(("ce_actor", self.actor.encode()))
        if self.traceparent is not None:
            headers.append(("traceparent", self.traceparent.encode()))
        if self.sequence is not None:
            headers.append(("ce_sequence", str(self.sequence).encode()))
        key = self.subject.encode() if self.subject is not None else None
        return KafkaRecord(key=key, value=orjson.dumps(self.data), headers=headers)

    @classmethod
    def from_kafka(cls, *, headers: Any, value: bytes | None) -> "CloudEvent":
        """Decode a binary-mode record; `InvalidEvent` says why an operator should care."""
        try:
            h = {name: raw.decode() for name, raw in headers or ()}
        except (UnicodeDecodeError, AttributeError, ValueError) as exc:
            raise InvalidEvent(f"undecodable headers: {exc}") from exc
        missing = [
            name
            for name in ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time")
            if name not in h
        ]
        if missing:
            raise InvalidEvent(f"missing CloudEvents headers: {', '.join(missing)}")
        if h.get("content-type", CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
            raise InvalidEvent(f"unsupported content-type {h['content-type']!r}")
        if value is None:
            raise InvalidEvent("record has no value")
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidEvent("value is not a JSON object")
        try:
            sequence = int(h["ce_sequence"]) if "ce_sequence" in h else None
            return cls(
                id=h["ce_id"],
                source=h["ce_source"],
                type=h["ce_type"],
                specversion=h["ce_specversion"],
                time=datetime.fromisoformat(h["ce_time"]),
                subject=h.get("ce_subject"),
                traceparent=h.get("traceparent"),
                agency=h.get("ce_agency"),
                actor=h.get("ce_actor"),
                sequence=sequence,
                data=data,
            )
        except (ValidationError, ValueError) as exc:
            raise InvalidEvent(f"invalid CloudEvents attributes: {exc}") from exc
