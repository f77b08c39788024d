"""The AsyncAPI document's operations, from what the services declare beside their handlers
(`consumer.py`: consumer groups and a publisher each), so the document cannot drift from the
code that consumes: `nrm contracts export` writes it, a test fails when it is stale."""

from itertools import chain
from pathlib import Path
from types import ModuleType

from contracts import export
from contracts.topics import DEADLETTER
from services.audit import consumer as audit
from services.common.consumers import Consumer, Publisher
from services.identity import consumer as identity
from services.insights import consumer as insights
from services.intake import consumer as intake
from services.notify import consumer as notify
from services.router import consumer as router

SERVICES: tuple[ModuleType, ...] = (identity, intake, router, notify, audit, insights)


def consumers() -> list[Consumer[object]]:
    return list(chain.from_iterable(m.CONSUMERS for m in SERVICES))


def publishers() -> list[Publisher]:
    return [m.PUBLISHER for m in SERVICES]


def operations() -> list[export.Operation]:
    """Every service's sends (its declared events; dead letters from any service that
    consumes) and every consumer group's receives."""
    ops = [op for p in publishers() for op in p.operations()]
    ops += [op for c in consumers() for op in c.operations()]
    for service in sorted({c.service for c in consumers()}):
        ops.append(export.Operation(service=service, action="send", topic=DEADLETTER, types=()))
    return ops


def groups_by_topic() -> dict[str, set[str]]:
    """Topic → the consumer groups declared on it (`bus.CONSUMER_GROUPS` must say the same)."""
    out: dict[str, set[str]] = {}
    for c in consumers():
        for name in c.topic_names:
            out.setdefault(name, set()).add(c.group)
    return out


def stale() -> list[Path]:
    return export.stale(operations())


def write() -> list[Path]:
    return export.write(operations())
