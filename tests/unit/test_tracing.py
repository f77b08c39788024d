"""W3C trace context: the request middleware, the consumer span, the log formatter and which
exporters the `OTEL_*` variables ask for."""

import json
import logging
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from contracts.cloudevents import CloudEvent
from services.common.logs import JsonFormatter
from services.common.tracing import (
    TraceMiddleware,
    current_traceparent,
    event_span,
    exporter_names,
    trace_id_of,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def app() -> FastAPI:
    made = FastAPI()

    @made.get("/")
    async def echo() -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    made.add_middleware(TraceMiddleware, service="test")
    return made


async def get(headers: dict[str, str]) -> str:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        value = (await client.get("/", headers=headers)).json()["traceparent"]
    assert isinstance(value, str)
    return value


async def test_a_request_continues_its_traceparent_in_a_span_of_its_own() -> None:
    version, trace, span, flags = (await get({"traceparent": TRACEPARENT})).split("-")
    assert (version, trace, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span != "00f067aa0ba902b7" and len(span) == 16


@pytest.mark.parametrize("headers", [{}, {"traceparent": "00-not-a-trace-01"}])
async def test_a_request_without_a_valid_traceparent_starts_a_trace(
    headers: dict[str, str],
) -> None:
    trace = (await get(headers)).split("-")[1]
    assert len(trace) == 32 and int(trace, 16) != 0
    assert trace != (await get(headers)).split("-")[1]  # a new one each time


def test_outside_any_trace_there_is_no_traceparent() -> None:
    assert current_traceparent() is None


def event(traceparent: str | None) -> CloudEvent:
    return CloudEvent(
        id="01900000-0000-7000-8000-000000000001",
        source="urn:nrm:local:test",
        type="referral.withdrawn",
        time=datetime(2026, 11, 29, tzinfo=UTC),
        traceparent=traceparent,
        data={},
    )


def test_a_handler_runs_in_the_events_trace_and_the_log_line_says_so() -> None:
    record = logging.makeLogRecord({"msg": "handling event", "levelname": "DEBUG"})
    with event_span(event(TRACEPARENT), "router.referrals"):
        inside = json.loads(JsonFormatter().format(record))
        assert trace_id_of(current_traceparent()) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len(inside["span_id"]) == 16 and inside["span_id"] != "00f067aa0ba902b7"
    outside = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in outside and "span_id" not in outside


def test_an_event_without_traceparent_gets_a_trace_of_its_own() -> None:
    with event_span(event(None), "audit"):
        traceparent = current_traceparent()
    assert trace_id_of(traceparent) is not None


def test_trace_id_of() -> None:
    assert trace_id_of(TRACEPARENT) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01") is None
    assert trace_id_of("garbage") is None
    assert trace_id_of(None) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp"]),
    ],
)
def test_spans_are_exported_only_when_otel_variables_ask(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: list[str]
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exporter_names() == expected
