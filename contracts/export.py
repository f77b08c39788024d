"""Generate the JSON Schemas and the AsyncAPI 3 document from the models.

The document's messages and channels come from the models and the topic catalogue; its
operations (who sends what, which consumer group receives what) are handed in by the services,
which declare them beside their handlers (`services/asyncapi.py`): contracts import no service.
`nrm contracts export` writes the files; a test compares the checked-in ones with fresh output.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from contracts import referrals
from contracts.cloudevents import CloudEvent
from contracts.events import EVENT_TYPES
from contracts.topics import CATALOGUE, DEADLETTER, Topic

ROOT = Path(__file__).parent
SCHEMA_DIR = ROOT / "schemas"
ASYNCAPI_FILE = ROOT / "asyncapi.yaml"
SCHEMA_ID = "https://nrm-exchange.example/schemas/{name}.json"


@dataclass(frozen=True, slots=True)
class Operation:
    """A service sending, or one of its consumer groups receiving, these types on a topic."""

    service: str
    action: Literal["send", "receive"]
    topic: Topic
    types: tuple[str, ...]
    group: str | None = None
    summary: str | None = None

    @property
    def id(self) -> str:
        who = (self.group or self.service).replace(".", "-")
        return f"{who}-{self.action}-{_channel_id(self.topic.name)}"


BODY_MODELS: dict[str, type[BaseModel]] = {
    "VictimReferralIn": referrals.VictimReferralIn,
    "TipIn": referrals.TipIn,
    "Consent": referrals.Consent,
    "RoutingFacts": referrals.RoutingFacts,
    "Agency": referrals.Agency,
    "CloudEvent": CloudEvent,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name (without .json) → JSON Schema, for every body model and event payload."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in BODY_MODELS.items():
        out[name] = model.model_json_schema()
    out["ReferralIn"] = TypeAdapter(referrals.ReferralIn).json_schema()
    for event_type, model in EVENT_TYPES.items():
        out[event_type] = model.model_json_schema()
    for name, schema in out.items():
        schema["$id"] = SCHEMA_ID.format(name=name)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return out


def _headers_schema() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "type": "object",
        "required": ["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "content-type"],
        "properties": {
            "ce_id": {**string, "description": "UUIDv7"},
            "ce_source": {
                **string,
                "format": "uri",
                "description": "Producing service: an absolute URI naming the deployment, "
                "`urn:nrm:<deployment>:<service>` (`NRM_EVENT_SOURCE`)",
            },
            "ce_type": {**string, "description": "Event type"},
            "ce_specversion": {"const": "1.0"},
            "ce_time": {**string, "format": "date-time"},
            "ce_subject": {**string, "description": "Referral id"},
            "ce_agency": {**string, "description": "Acting agency"},
            "ce_actor": {
                **string,
                "description": "Who acted: a person's username, or a client id",
            },
            "ce_sequence": {
                **string,
                "pattern": "^[1-9][0-9]*$",
                "description": (
                    "CloudEvents sequence extension: the source's event number, gap-free in "
                    "commit order (decimal)"
                ),
            },
            "content-type": {"const": "application/json"},
            "traceparent": {**string, "description": "W3C trace context"},
        },
    }


def _channel_id(address: str) -> str:
    return address.replace(".", "-")


def asyncapi_document(operations: Iterable[Operation]) -> dict[str, Any]:
    """AsyncAPI 3.0 document for every topic, generated from the same models, with the
    services' `operations`."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (model, "validation") for model in EVENT_TYPES.values()
    ]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {"CloudEventHeaders": _headers_schema(), **defs["$defs"]}
    schemas["DeadLetterHeaders"] = {
        "type": "object",
        "description": "The original record's headers, plus where it came from and why it failed",
        "properties": {
            "dlq_error": {"type": "string"},
            "dlq_topic": {"type": "string"},
            "dlq_partition": {"type": "string"},
            "dlq_offset": {"type": "string"},
            "dlq_consumer": {"type": "string"},
        },
    }
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_TYPES.items():
        messages[event_type] = {
            "name": event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "Referral id"}}},
        }
    messages["deadletter"] = {
        "name": "deadletter",
        "title": "Dead letter",
        "summary": "A record a consumer could not process, unchanged, with error headers",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {},
    }
    channels: dict[str, Any] = {}
    for topic in CATALOGUE:
        names = list(topic.types) if topic is not DEADLETTER else ["deadletter"]
        channels[_channel_id(topic.name)] = {
            "address": topic.name,
            "description": topic.description,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
    ops: dict[str, Any] = {}
    for op in sorted(operations, key=_operation_order):
        cid = _channel_id(op.topic.name)
        names = list(op.types) if op.topic is not DEADLETTER else ["deadletter"]
        entry: dict[str, Any] = {
            "action": op.action,
            "channel": {"$ref": f"#/channels/{cid}"},
        }
        if op.summary:
            entry["summary"] = op.summary
        if op.action == "send":
            entry["description"] = f"`{op.service}` publishes these messages."
        else:
            entry["description"] = f"`{op.service}`, consumer group `{op.group}`: handles these"
            if len(op.types) < len(op.topic.types):
                entry["description"] += "; the channel's other messages are skipped unread"
            entry["description"] += "."
        if op.group is not None:
            entry["bindings"] = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [op.group]},
                    "bindingVersion": "0.5.0",
                }
            }
        entry["messages"] = [{"$ref": f"#/channels/{cid}/messages/{n}"} for n in names]
        if op.id in ops:
            raise ValueError(f"two operations named {op.id}")
        ops[op.id] = entry
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "NRM Exchange events",
            "version": "1.0.0",
            "description": (
                "Case-referral events exchanged between NRM Exchange services over Kafka. "
                "CloudEvents 1.0 in binary mode; key = referral id. "
                "Generated by `nrm contracts export`; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": ops,
        "components": {"schemas": schemas, "messages": messages},
    }


def _operation_order(op: Operation) -> tuple[int, int, str]:
    """Topic by topic in catalogue order, senders first, then receivers by name."""
    return (CATALOGUE.index(op.topic), op.action != "send", op.id)


def rendered(operations: Iterable[Operation]) -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {
        SCHEMA_DIR / f"{name}.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }
    files[ASYNCAPI_FILE] = yaml.safe_dump(
        asyncapi_document(operations), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def stale(operations: Iterable[Operation]) -> list[Path]:
    """Generated files that are missing, differ from the models, or are no longer generated."""
    files = rendered(operations)
    out = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    out += [path for path in SCHEMA_DIR.glob("*.json") if path not in files]
    return sorted(out)


def write(operations: Iterable[Operation]) -> list[Path]:
    """Regenerate; returns the files that changed."""
    operations = list(operations)
    changed = stale(operations)
    SCHEMA_DIR.mkdir(exist_ok=True)
    for path in SCHEMA_DIR.glob("*.json"):
        path.unlink()
    for path, text in rendered(operations).items():
        path.write_text(text)
    return changed
