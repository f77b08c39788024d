"""The declarative consumer registry: dispatch by event type, types without a handler left
unread, declarations checked when they are made, and the services' declarations as the AsyncAPI
document and the replay bookkeeping see them."""

import re
from typing import Any, cast

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import (
    Payload,
    ReferralErased,
    ReferralHoldChanged,
    ReferralRouted,
    ReferralWithdrawn,
)
from contracts.topics import ACCESS, CASE_EVENTS, REFERRALS
from services import asyncapi
from services.common.bus import CONSUMER_GROUPS
from services.common.consumers import Consumer

SESSION = cast(AsyncSession, object())  # the handlers under test never touch it


def withdrawn_event() -> CloudEvent:
    payload = ReferralWithdrawn(referral_id="r-1", reference="NRM-2026-000001", withdrawn_by="gp")
    return CloudEvent.new(source="intake", payload=payload, subject="r-1")


def erased_event() -> CloudEvent:
    payload = ReferralErased(referral_id="r-1", basis="victim_request")
    return CloudEvent.new(source="intake", payload=payload, subject="r-1")


def submitted_event() -> CloudEvent:
    """A type no test consumer below handles (its payload is not even valid: never parsed)."""
    event = withdrawn_event()
    return event.model_copy(update={"type": "referral.submitted", "data": {"no": "fields"}})


def declared() -> tuple[Consumer[list[Any]], list[Any]]:
    consumer = Consumer[list[Any]](
        "test.referrals", service="test", topics=[REFERRALS], summary="for tests"
    )
    seen: list[Any] = []

    @consumer.handles(ReferralWithdrawn)
    async def withdrawn(
        log: list[Any], session: AsyncSession, event: CloudEvent, payload: ReferralWithdrawn
    ) -> None:
        log.append(("withdrawn", payload.withdrawn_by, event.subject))

    @consumer.handles(ReferralErased)
    async def erased(
        log: list[Any], session: AsyncSession, event: CloudEvent, payload: ReferralErased
    ) -> None:
        log.append(("erased", payload.basis, event.subject))

    return consumer, seen


async def test_dispatch_calls_the_handler_of_the_event_type_with_the_bound_context() -> None:
    consumer, seen = declared()
    handle = consumer.bind(seen)
    await handle(SESSION, withdrawn_event())
    await handle(SESSION, erased_event())
    assert seen == [("withdrawn", "gp", "r-1"), ("erased", "victim_request", "r-1")]


async def test_a_type_without_a_handler_is_not_read() -> None:
    consumer, seen = declared()
    # The runner lets through only these `ce_type`s (by header, before decoding)...
    assert consumer.types == ("referral.withdrawn", "referral.erased")
    # ...and one that reaches the dispatcher anyway is left alone, its payload not parsed.
    await consumer.bind(seen)(SESSION, submitted_event())
    assert seen == []


def test_a_second_handler_for_a_type_is_refused_at_declaration() -> None:
    consumer, _ = declared()
    with pytest.raises(ValueError, match=re.escape("'referral.erased' is already handled by")):

        @consumer.handles(ReferralErased)
        async def again(
            log: list[Any], session: AsyncSession, event: CloudEvent, payload: ReferralErased
        ) -> None:
            pass


def test_a_type_the_groups_topics_do_not_carry_is_refused() -> None:
    consumer, _ = declared()
    with pytest.raises(
        ValueError, match=re.escape("no topic of this group carries 'referral.routed'")
    ):
        consumer.handles(ReferralRouted)


def test_a_handler_whose_payload_annotation_does_not_admit_the_model_is_refused() -> None:
    consumer, _ = declared()
    with pytest.raises(TypeError, match="does not admit ReferralHoldChanged"):

        @consumer.handles(ReferralHoldChanged)
        async def held(
            log: list[Any], session: AsyncSession, event: CloudEvent, payload: ReferralErased
        ) -> None:
            pass


async def test_a_handler_for_every_type_reads_everything_and_yields_to_specific_ones() -> None:
    consumer = Consumer[list[str]](
        "test.all", service="test", topics=[REFERRALS, ACCESS], summary="for tests"
    )

    @consumer.handles(ReferralErased)
    async def erased(
        log: list[str], session: AsyncSession, event: CloudEvent, payload: ReferralErased
    ) -> None:
        log.append("erased")

    @consumer.handles_every()
    async def every(
        log: list[str], session: AsyncSession, event: CloudEvent, payload: Payload
    ) -> None:
        log.append(f"every {type(payload).__name__}")

    seen: list[str] = []
    handle = consumer.bind(seen)
    await handle(SESSION, erased_event())
    await handle(SESSION, withdrawn_event())
    assert consumer.types is None
    assert seen == ["erased", "every ReferralWithdrawn"]


def test_the_services_declare_the_consumer_groups_replay_waits_for() -> None:
    assert asyncapi.groups_by_topic() == {
        topic: set(groups) for topic, groups in CONSUMER_GROUPS.items()
    }


def test_each_group_reads_only_the_types_it_handles() -> None:
    types = {c.group: c.types for c in asyncapi.consumers()}
    access = ("access.revoked", "access.restored")
    assert types == {
        "identity.access": access,
        "intake.access": access,
        "intake.routing": ("referral.routed",),
        "intake.case-events": (
            "delivery.notified",
            "referral.acknowledged",
            "referral.accepted",
            "referral.declined",
            "referral.completed",
        ),
        "router.access": access,
        "router.referrals": (
            "referral.submitted",
            "referral.consent_changed",
            "referral.risk_changed",
            "referral.implicated_changed",
            "referral.withdrawn",
            "referral.identification_decided",
            "referral.identification_overdue",
            "referral.erased",
        ),
        "router.case-events": ("referral.declined", "referral.deadline_missed"),
        "notify.access": (*access, "admin.changed"),
        "notify.routing": ("referral.routed",),
        "notify.referrals": (
            "referral.erased",
            "referral.identification_decided",
            "referral.reflection_started",
            "referral.reflection_ended",
            "referral.identification_overdue",
            "referral.investigation_recorded",
        ),
        "audit.access": access,
        "audit": None,
        "insights.access": access,
        "insights": (
            "referral.erased",
            "referral.submitted",
            "referral.consent_changed",
            "referral.withdrawn",
            "referral.identification_decided",
            "referral.investigation_recorded",
            "referral.routed",
            "referral.acknowledged",
            "referral.accepted",
            "referral.declined",
        ),
    }


def test_the_asyncapi_operations_say_who_sends_and_which_group_receives_what() -> None:
    ops = {op.id: op for op in asyncapi.operations()}
    receive = ops["router-case-events-receive-nrm-case-events-v1"]
    assert (receive.action, receive.group, receive.topic) == (
        "receive",
        "router.case-events",
        CASE_EVENTS,
    )
    assert receive.types == ("referral.declined", "referral.deadline_missed")
    send = ops["identity-send-nrm-access-v1"]
    assert send.types == (
        "access.granted",
        "access.denied",
        "auth.failed",
        "admin.changed",
        "access.revoked",
        "access.restored",
    )
    assert "identity-send-nrm-deadletter-v1" in ops  # its access group dead-letters too
    assert ops["audit-receive-nrm-access-v1"].types == ACCESS.types
