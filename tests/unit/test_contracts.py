"""Contracts: DESIGN.md examples, invalid bodies with field paths, generated files current."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts import export
from contracts.cloudevents import CloudEvent, InvalidEvent
from contracts.events import EVENT_TYPES, ReferralSubmitted
from contracts.referrals import ReferralIn, RoutingFacts, TipIn, VictimReferralIn
from contracts.topics import CATALOGUE, topic_for_type
from services import asyncapi
from services.common.errors import field_errors

REFERRAL_EXAMPLE = """
{"kind": "victim_referral", "external_ref": "LI-2026-0042", "region": "KZ-79", "urgency": "routine",
 "exploitation": ["sexual"], "destination_countries": ["BH"], "official_involvement": false,
 "victim": {"status": "potential", "age": 24, "sex": "female", "citizenship": "KZ",
   "languages": ["kk", "ru"], "needs": ["shelter", "medical", "legal"],
   "identity": {"full_name": "Aigerim Example", "date_of_birth": "2002-03-14", "document_number": "N1234567"},
   "contact": {"phone": "+77010000000", "safe_to_contact": true}},
 "consent": {"services": true, "law_enforcement": true, "statistics": true, "given_by": "self",
   "recorded_at": "2026-11-20T10:00:00Z"},
 "narrative": "Recruited online with a promise of waitress work abroad; passport taken on arrival."}
"""
TIP_EXAMPLE = """{"kind": "tip", "region": "KZ-39", "urgency": "high", "exploitation": ["sexual"],
"official_involvement": true, "source": "hotline", "narrative": "Caller reports a brothel protected by officials."}"""

referral_in: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)


def test_design_examples_validate_as_they_are() -> None:
    referral = referral_in.validate_json(REFERRAL_EXAMPLE)
    tip = referral_in.validate_json(TIP_EXAMPLE)
    assert isinstance(referral, VictimReferralIn)
    assert referral.victim.identity is not None
    assert referral.victim.identity.document_number == "N1234567"
    assert isinstance(tip, TipIn)
    assert tip.official_involvement is True


def with_change(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted `path` set to `value` (`...` deletes it)."""
    body = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return body


INVALID = [
    ("kind", "smuggling", "kind"),
    ("exploitation", ["slavery"], "victim_referral/exploitation/0"),
    ("exploitation", [], "victim_referral/exploitation"),
    ("region", "KZ-99", "victim_referral/region"),
    ("region", "Kostanay", "victim_referral/region"),
    ("destination_countries", ["XX"], "victim_referral/destination_countries/0"),
    ("victim.age", 121, "victim_referral/victim/age"),
    ("victim.age", -1, "victim_referral/victim/age"),
    ("victim.citizenship", "kz", "victim_referral/victim/citizenship"),
    ("victim.languages", ["xx"], "victim_referral/victim/languages/0"),
    ("consent", ..., "victim_referral/consent"),
    ("consent.recorded_at", "2026-11-20T10:00:00", "victim_referral/consent/recorded_at"),
    ("surprise", 1, "victim_referral/surprise"),
    ("victim.identity.passport", "X", "victim_referral/victim/identity/passport"),
    ("urgency", "whenever", "victim_referral/urgency"),
    ("victim.languages", ["kaz"], "victim_referral/victim/languages/0"),  # BCP 47 says kk
    ("victim.languages", ["KAA"], "victim_referral/victim/languages/0"),
    ("victim.age", 30, "victim_referral"),  # disagrees with the date of birth
    ("consent.given_by", "guardian", "victim_referral/consent"),  # no guardian_appointment
    ("victim.safety", {"risk_level": "high"}, "victim_referral/victim/safety"),  # assessed by?
    ("victim.age_basis", "guessed", "victim_referral/victim/age_basis"),
    ("implicated", ["MVD"], "victim_referral/implicated/0"),
]


@pytest.mark.parametrize(("path", "value", "error_loc"), INVALID)
def test_invalid_bodies_fail_with_field_paths(path: str, value: Any, error_loc: str) -> None:
    body = with_change(json.loads(REFERRAL_EXAMPLE), path, value)
    with pytest.raises(ValidationError) as info:
        referral_in.validate_python(body)
    paths = {e["path"] for e in field_errors(info.value.errors())}
    assert error_loc in paths


def test_routing_facts_carry_no_identity() -> None:
    referral = referral_in.validate_json(REFERRAL_EXAMPLE)
    facts = RoutingFacts.from_referral(referral, submitted_by="labour-insp")
    text = facts.model_dump_json()
    for secret in ("Aigerim", "N1234567", "2002-03-14", "+7701", "passport taken"):
        assert secret not in text
    assert facts.consent is not None and facts.consent.law_enforcement is True
    assert facts.minor is False and facts.needs == ["shelter", "medical", "legal"]


def test_languages_are_bcp47_with_iso_639_3() -> None:
    body = json.loads(REFERRAL_EXAMPLE)
    body["victim"]["languages"] = ["kaa", "dng", "rom", "ru", "kk", "kk-Cyrl-KZ"]
    referral = referral_in.validate_python(body)
    assert isinstance(referral, VictimReferralIn)
    assert referral.victim.languages == ["kaa", "dng", "rom", "ru", "kk", "kk-Cyrl-KZ"]


@pytest.mark.parametrize(
    ("victim", "minor", "presumed"),
    [
        ({"age": 17}, True, False),
        ({"age": 24}, False, False),
        ({"appears_minor": True}, True, True),
        ({"appears_minor": True, "age_basis": "unknown"}, True, True),
        ({"age": 19, "appears_minor": True, "age_basis": "estimated"}, True, True),
        ({"age": 19, "appears_minor": True, "age_basis": "disputed"}, True, True),
        ({"age": 19, "appears_minor": True, "age_basis": "documented"}, False, False),
        ({"age": 16, "age_basis": "documented"}, True, False),
    ],
)
def test_presumption_of_minority(victim: dict[str, Any], minor: bool, presumed: bool) -> None:
    body = json.loads(REFERRAL_EXAMPLE)
    body["victim"] = {"languages": ["kaa"], **victim}
    referral = referral_in.validate_python(body)
    assert isinstance(referral, VictimReferralIn)
    assert (referral.victim.minor, referral.victim.presumed_minor) == (minor, presumed)
    facts = RoutingFacts.from_referral(referral, submitted_by="ngo-south")
    assert facts.minor is minor


def test_age_follows_the_date_of_birth_and_high_risk_is_immediate() -> None:
    body = json.loads(REFERRAL_EXAMPLE)
    del body["victim"]["age"]
    body["victim"]["safety"] = {
        "risk_level": "high",
        "assessed_by": "shelter caseworker",
        "assessed_at": "2026-11-20T10:00:00Z",
    }
    referral = referral_in.validate_python(body)
    assert isinstance(referral, VictimReferralIn)
    born = referral.victim.age_now(datetime(2026, 11, 29, tzinfo=UTC).date())
    assert born == 24  # 2002-03-14
    assert referral.victim.age_now(datetime(2020, 3, 13, tzinfo=UTC).date()) == 17
    facts = RoutingFacts.from_referral(referral, submitted_by="ngo-south")
    assert (facts.urgency, facts.risk_level) == ("immediate", "high")
    assert "assessed_by" not in facts.model_dump_json()


def test_no_event_schema_has_an_identity_field() -> None:
    forbidden = {"identity", "contact", "narrative", "full_name", "date_of_birth", "phone"}
    for event_type, model in EVENT_TYPES.items():
        text = json.dumps(model.model_json_schema())
        assert not any(f'"{name}"' in text for name in forbidden), event_type


def test_every_event_type_has_exactly_one_topic() -> None:
    for event_type in EVENT_TYPES:
        assert topic_for_type(event_type).name.startswith("nrm.")
    all_types = [t for topic in CATALOGUE for t in topic.types]
    assert sorted(all_types) == sorted(EVENT_TYPES)


def test_cloudevent_binary_mode_round_trip() -> None:
    referral = referral_in.validate_json(REFERRAL_EXAMPLE)
    payload = ReferralSubmitted(
        referral_id="r1",
        reference="NRM-2026-000001",
        submitted_at=datetime.now(UTC),
        facts=RoutingFacts.from_referral(referral, submitted_by="labour-insp"),
    )
    event = CloudEvent.new(
        source="intake",
        payload=payload,
        subject="r1",
        agency="labour-insp",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    record = event.to_kafka()
    headers = dict(record.headers)
    assert record.key == b"r1"
    assert headers["ce_type"] == b"referral.submitted"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"].startswith(b"00-")
    assert event.id[14] == "7"  # UUIDv7
    decoded = CloudEvent.from_kafka(headers=record.headers, value=record.value)
    assert decoded == event
    assert decoded.payload() == payload


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "missing CloudEvents headers"),
        (
            [
                ("ce_id", b"1"),
                ("ce_source", b"s"),
                ("ce_type", b"t"),
                ("ce_specversion", b"1.0"),
                ("ce_time", b"2026-01-01T00:00:00Z"),
            ],
            b"[1]",
            "not a JSON object",
        ),
        (
            [
                ("ce_id", b"1"),
                ("ce_source", b"s"),
                ("ce_type", b"t"),
                ("ce_specversion", b"1.0"),
                ("ce_time", b"2026-01-01T00:00:00Z"),
            ],
            b"\xff",
            "not JSON",
        ),
        (
            [
                ("ce_id", b"1"),
                ("ce_source", b"s"),
                ("ce_type", b"t"),
                ("ce_specversion", b"0.3"),
                ("ce_time", b"2026-01-01T00:00:00Z"),
            ],
            b"{}",
            "invalid CloudEvents attributes",
        ),
        ([("ce_id", b"\xff")], b"{}", "undecodable headers"),
    ],
)
def test_undecodable_records_are_rejected_with_a_reason(
    headers: list[tuple[str, bytes]], value: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        CloudEvent.from_kafka(headers=headers, value=value)


def test_json_schemas_and_asyncapi_are_current() -> None:
    stale = asyncapi.stale()
    assert not stale, f"run `nrm contracts export`; stale: {[str(p) for p in stale]}"


def test_asyncapi_document_references_resolve() -> None:
    doc = export.asyncapi_document(asyncapi.operations())
    assert doc["asyncapi"] == "3.0.0"
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in CATALOGUE}

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert target is not None, ref


def test_exported_schema_matches_model_validation() -> None:
    schema = export.json_schemas()["ReferralIn"]
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == {"victim_referral", "tip"}
