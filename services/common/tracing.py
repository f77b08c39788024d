"""W3C trace context (OpenTelemetry) from the HTTP request to every event it causes.

A request's `traceparent` is continued (or a trace started) by `TraceMiddleware`; the outbox
stamps the current context on every event staged without one; `ConsumerRunner` continues the
event's context while its handler runs (`event_span`), so what a handler stages carries the same
trace id; the JSON log formatter adds `trace_id`/`span_id`; audit keeps the trace id per record.

Spans are made by the OpenTelemetry SDK (sampling per `OTEL_TRACES_SAMPLER`), exported only when
`OTEL_TRACES_EXPORTER` names an exporter or `OTEL_EXPORTER_OTLP_ENDPOINT` is set: by default
nothing is exported and a span costs a few microseconds.
"""

import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.cloudevents import CloudEvent

log = logging.getLogger(__name__)

PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_exporting = False  # set by provider(): whether any span processor receives spans
_ids = RandomIdGenerator()


def exporter_names() -> list[str]:
    """The span exporters `OTEL_*` asks for: none unless set (OTel's own default is `otlp`;
    here exporting is opt-in, so an unconfigured deployment sends nothing anywhere)."""
    names = os.environ.get("OTEL_TRACES_EXPORTER")
    if names is None:
        return ["otlp"] if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else []
    return [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]


def provider() -> TracerProvider:
    """The process's tracer provider, made once (the embedded stack runs every service in one
    process). Its sampler comes from `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`."""
    global _provider
    if _provider is None:
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "nrm")})
        made = TracerProvider(resource=resource)
        found = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
        for name in exporter_names():
            if name not in found:
                log.warning(
                    "span exporter not installed, spans not exported", extra={"exporter": name}
                )
                continue
            made.add_span_processor(BatchSpanProcessor(found[name].load()()))
            global _exporting
            _exporting = True
        _provider = made
    return _provider


_tracers: dict[str, trace.Tracer] = {}


def tracer(name: str) -> trace.Tracer:
    """The provider's tracer of that name, made once: `get_tracer` costs several microseconds
    and consumers ask for one per event."""
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = provider().get_tracer(name)
    return found


def current_traceparent() -> str | None:
    """The current context as a W3C `traceparent`, or None outside any trace."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside any trace."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return None
    return format(span.trace_id, "032x"), format(span.span_id, "016x")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent`, else None."""
    if not traceparent:
        return None
    span = trace.get_current_span(PROPAGATOR.extract({"traceparent": traceparent}))
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def event_span(event: CloudEvent, consumer: str) -> Iterator[None]:
    """A consumer span, child of the event's `traceparent` (a new trace if it has none), made
    current while the handler runs."""
    parent = PROPAGATOR.extract({"traceparent": event.traceparent} if event.traceparent else {})
    spans = tracer("nrm.bus")
    up = trace.get_current_span(parent).get_span_context()
    if not _exporting and up.is_valid:
        # Nothing receives spans: only the ids matter (logs, the events the handler stages).
        # The SDK's span would cost ~4% of the stack's CPU at 100 referrals/s (issue 24).
        # (Without a parent the SDK starts the trace: its sampler decides, as configured.)
        token = context.attach(trace.set_span_in_context(_unrecorded_child(up), parent))
        try:
            yield
        finally:
            context.detach(token)
        return
    with spans.start_as_current_span(
        event.type,
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.consumer.group.name": consumer, "messaging.message.id": event.id},
    ):
        yield


def _unrecorded_child(up: SpanContext) -> NonRecordingSpan:
    """A span id of its own in the parent's trace, with the parent's flags and trace state."""
    span_id = _ids.generate_span_id()
    return NonRecordingSpan(
        SpanContext(
            up.trace_id,
            span_id,
            is_remote=False,
            trace_flags=up.trace_flags,
            trace_state=up.trace_state,
        )
    )


@contextmanager
def continued(traceparent: str | None, scope: str, name: str) -> Iterator[None]:
    """A span continuing `traceparent` (a new trace without one), for work done later than the
    request or event that asked for it (a queued webhook or e-mail)."""
    parent = PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
    with tracer(scope).start_as_current_span(name, context=parent):
        yield


class TraceMiddleware:
    """Continues the request's `traceparent` (or starts a trace) for the whole request.

    Plain ASGI rather than opentelemetry-instrumentation-fastapi: one extract and one span per
    request, no per-request provider lookups or extra dependency (issue 24 counts CPU)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.tracer = tracer(f"nrm.{service}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier: MutableMapping[str, Any] = {}
        for key, value in scope["headers"]:
            if key == b"traceparent" or key == b"tracestate":
                carrier[key.decode()] = value.decode("latin-1")
        parent = PROPAGATOR.extract(carrier) if carrier else context.Context()
        with self.tracer.start_as_current_span(
            scope["method"], context=parent, kind=SpanKind.SERVER
        ):
            await self.app(scope, receive, send)
