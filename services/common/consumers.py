"""Declarative consumers, as FastStream does: a consumer group names its topics and declares a
handler per payload type; dispatch is one dict lookup by the event's `ce_type`, and only the types
handled are read (the runner skips the rest by header, unparsed). A service's `consumer.py`
declares its groups and what it publishes; the AsyncAPI document is generated from these
declarations (`services/asyncapi.py`).

A handler is `async def h(context, session, event, payload)`: the context is whatever the
service binds at start (the live routing policy, the erasure ledger, …; `None` if it needs
nothing), so handlers may be plain functions or methods of the context's class.
"""

import inspect
import types
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import EVENT_TYPES, Payload
from contracts.export import Operation
from contracts.topics import CATALOGUE, Topic
from services.common.bus import Handler, Prepare

C = TypeVar("C")
H = TypeVar("H", bound=Callable[..., Awaitable[None]])
TypedHandler = Callable[[Any, AsyncSession, CloudEvent, Any], Awaitable[None]]
TypedPrepare = Callable[[Any, AsyncSession, list[CloudEvent]], Awaitable[None]]

_TYPE_OF: dict[type[Payload], str] = {model: name for name, model in EVENT_TYPES.items()}


def event_type(model: type[Payload]) -> str:
    """The CloudEvents type a payload model is published as."""
    try:
        return _TYPE_OF[model]
    except KeyError:
        raise TypeError(f"{model.__name__} is not an event payload (contracts.events)") from None


def _accepted(annotation: object) -> tuple[type, ...] | None:
    """The classes a handler's `payload` annotation admits; None if it says nothing checkable."""
    if isinstance(annotation, type):
        return (annotation,)
    if get_origin(annotation) in (Union, types.UnionType):
        classes = tuple(a for a in get_args(annotation) if isinstance(a, type))
        return classes or None
    return None


class Consumer(Generic[C]):
    """One consumer group of one service: its topics and a handler per event type.

    Declared at import time; a type handled twice, a type none of the topics carries, or a
    handler whose `payload` annotation does not admit the model is refused there.

    `background`: nobody waits on this group's latency (it is not on the path from a submission
    to a recipient's inbox), so it fetches with the longer background wait: an idle fetch costs
    the broker and the process CPU, and most groups are idle most of the time."""

    def __init__(
        self,
        group: str,
        *,
        service: str,
        topics: Iterable[Topic],
        summary: str,
        background: bool = False,
    ) -> None:
        self.group = group
        self.service = service
        self.topics = tuple(topics)
        self.summary = summary
        self.background = background
        self._handlers: dict[str, TypedHandler] = {}
        self._every: TypedHandler | None = None
        self._prepare: TypedPrepare | None = None

    def __repr__(self) -> str:
        return f"Consumer({self.group!r}, types={self.types})"

    def handles(self, *models: type[Payload]) -> Callable[[H], H]:
        """Register the decorated function as the handler of events of these payload types."""
        if not models:
            raise TypeError("handles() needs at least one payload model")
        names = [event_type(m) for m in models]
        carried = {t for topic in self.topics for t in topic.types}
        for name in names:
            if name not in carried:
                raise ValueError(f"{self.group}: no topic of this group carries {name!r}")

        def register(handler: H) -> H:
            self._check_annotation(handler, models)
            for name in names:
                if name in self._handlers:
                    raise ValueError(
                        f"{self.group}: {name!r} is already handled by "
                        f"{self._handlers[name].__qualname__}"
                    )
            for name in names:
                self._handlers[name] = handler
            return handler

        return register

    def handles_every(self) -> Callable[[H], H]:
        """Register the decorated function for every type without a handler of its own (audit:
        every event joins the chain). The group then reads every record of its topics."""

        def register(handler: H) -> H:
            if self._every is not None:
                raise ValueError(f"{self.group}: already handled by {self._every.__qualname__}")
            self._every = handler
            return handler

        return register

    def prepares(self) -> Callable[[H], H]:
        """Register `async def p(context, session, events)`, called once per batch before its
        events are handled (`bus.Prepare`): a prefetch, which handlers must not depend on."""

        def register(prepare: H) -> H:
            if self._prepare is not None:
                raise ValueError(f"{self.group}: already prepared by {self._prepare.__qualname__}")
            self._prepare = prepare
            return prepare

        return register

    @property
    def types(self) -> tuple[str, ...] | None:
        """The `ce_type`s the runner lets through; None: all (a handler for every type)."""
        return None if self._every is not None else tuple(self._handlers)

    @property
    def topic_names(self) -> list[str]:
        return [t.name for t in self.topics]

    def bind(self, context: C) -> Handler:
        """The runner's handler: the event's payload validated, then its type's handler called
        with `context` (an event of no handled type is left alone)."""
        handlers = dict(self._handlers)
        every = self._every

        async def dispatch(session: AsyncSession, event: CloudEvent) -> None:
            handler = handlers.get(event.type, every)
            if handler is None:
                return
            # Validates: a payload that does not fit is dead-lettered by the runner.
            await handler(context, session, event, event.payload())

        return dispatch

    def bind_prepare(self, context: C) -> Prepare | None:
        """The runner's batch hook, with `context`; None when the group declares none."""
        prepare = self._prepare
        if prepare is None:
            return None

        async def prepared(session: AsyncSession, events: list[CloudEvent]) -> None:
            await prepare(context, session, events)

        return prepared

    def operations(self) -> list[Operation]:
        """What this group receives, per topic, for the AsyncAPI document."""
        handled = self.types
        return [
            Operation(
                service=self.service,
                action="receive",
                topic=topic,
                types=wanted,
                group=self.group,
                summary=self.summary,
            )
            for topic in self.topics
            if (wanted := tuple(t for t in topic.types if handled is None or t in handled))
        ]

    def _check_annotation(self, handler: Callable[..., object], models: tuple[type, ...]) -> None:
        params = list(inspect.signature(handler).parameters.values())
        if len(params) != 4:
            raise TypeError(
                f"{handler.__qualname__}: a handler takes (context, session, event, payload)"
            )
        accepted = _accepted(params[3].annotation)
        if accepted is None:
            return
        for model in models:
            if not issubclass(model, accepted):
                raise TypeError(
                    f"{handler.__qualname__}: its payload annotation does not admit "
                    f"{model.__name__}"
                )


@dataclass(frozen=True, slots=True)
class Publisher:
    """The event types a service publishes (through its outbox), declared beside its consumers
    for the AsyncAPI document."""

    service: str
    models: tuple[type[Payload], ...]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(event_type(m) for m in self.models)

    def operations(self) -> list[Operation]:
        """What this service sends, per topic, for the AsyncAPI document."""
        names = self.types
        return [
            Operation(service=self.service, action="send", topic=topic, types=sent)
            for topic in CATALOGUE
            if (sent := tuple(t for t in topic.types if t in names))
        ]
