"""Issue 25: a referral's W3C trace, from the submitting request to every Kafka record it
causes, every service's log lines about it, and its audit timeline (real broker, intake,
router, notify and audit each with a database of its own)."""

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.broker import EmbeddedBroker
from services.common.logs import JsonFormatter
from tests.integration.test_flow import stack
from tests.support import Database, read_topic, wait_for
from tests.tokens import TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
TOPICS = ("nrm.referrals.v1", "nrm.routing.v1", "nrm.case-events.v1", "nrm.access.v1")
# What one submission causes, topic by topic (two recipients: the shelter and the police).
CAUSED = {
    ("nrm.referrals.v1", "referral.submitted"),
    ("nrm.routing.v1", "referral.routed"),
    ("nrm.case-events.v1", "delivery.notified"),
}
# The consumers that handle those events (notify.referrals and router.case-events take other
# types only, and skip these unread).
HANDLERS = {
    "intake.routing",
    "intake.case-events",
    "router.referrals",
    "notify.routing",
    "audit",
}
TRACEPARENT_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


class Lines(logging.Handler):
    """The JSON log lines, as the stack writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def captured_logs() -> Iterator[Lines]:
    lines = Lines()
    logger = logging.getLogger("services")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


def trace_of(headers: Any) -> str:
    value = dict(headers)["traceparent"].decode()
    match = TRACEPARENT_FORMAT.match(value)
    assert match, value
    return match.group(1)


async def submit(c: dict[str, httpx.AsyncClient], mint: TokenMint, extra: dict[str, str]) -> str:
    r = await c["intake"].post(
        "/v1/referrals",
        content=REFERRAL_EXAMPLE,
        headers={
            "content-type": "application/json",
            **mint.headers("labour-insp", "referrer"),
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def read_to_end(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic` now there, from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # the metadata, with the topic's partitions
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [p for p, end in ends.items() if await consumer.position(p) < end]:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def records_of(bootstrap: str, rid: str) -> list[tuple[str, str, str]]:
    """(topic, type, trace id) of every record about `rid` on every topic, once both deliveries
    are out (the last thing a submission causes)."""

    def about(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == rid.encode()]

    def notified(records: list[Any]) -> bool:
        types = [dict(r.headers)["ce_type"] for r in about(records)]
        return types.count(b"delivery.notified") == 2

    await read_topic(bootstrap, "nrm.case-events.v1", until=notified, timeout=60)
    found = []
    for topic in TOPICS:
        found += [
            (topic, dict(r.headers)["ce_type"].decode(), trace_of(r.headers))
            for r in about(await read_to_end(bootstrap, topic))
        ]
    return found


async def test_a_referrals_trace_reaches_every_record_log_line_and_audit_step(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    auditor = mint.headers("audit-office", "auditor")
    with captured_logs() as logs:
        async with stack(db.kind, own_broker, tmp_path, mint) as c:
            given = await submit(c, mint, {"traceparent": TRACEPARENT})
            started = await submit(c, mint, {})
            records = {rid: await records_of(own_broker.bootstrap, rid) for rid in (given, started)}

            async def timeline(rid: str) -> list[dict[str, Any]]:
                r = await c["audit"].get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
                return list(r.json()["events"])

            async def audited() -> bool:
                for rid in (given, started):
                    if len(await timeline(rid)) != len(records[rid]):
                        return False
                return True

            await wait_for(audited, timeout=60)
            steps = {rid: await timeline(rid) for rid in (given, started)}

            def about(rid: str) -> list[dict[str, Any]]:
                return [line for line in logs.lines if line.get("subject") == rid]

            async def handled() -> bool:
                return all({x["consumer"] for x in about(rid)} == HANDLERS for rid in steps)

            await wait_for(handled, timeout=60)

    # Every record the submission caused, on every topic, carries the request's trace.
    assert {(topic, kind) for topic, kind, _ in records[given]} == CAUSED
    assert [trace for *_, trace in records[given]] == [TRACE] * 4
    # Without a traceparent, the request started a trace, carried the same way.
    new = records[started][0][2]
    assert new != TRACE and new != "0" * 32
    assert {(topic, kind) for topic, kind, _ in records[started]} == CAUSED
    assert [trace for *_, trace in records[started]] == [new] * 4

    # Every service's log lines about the referral carry its trace id.
    for rid, trace in ((given, TRACE), (started, new)):
        assert {line["trace_id"] for line in about(rid)} == {trace}
        # The audit timeline: every step with the trace id.
        assert {step["trace_id"] for step in steps[rid]} == {trace}
        assert {step["type"] for step in steps[rid]} == {kind for _, kind in CAUSED}
