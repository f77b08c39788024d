"""The example routing policy (DESIGN.md rules 1-8), its invariants, and its validation errors."""

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts.referrals import ReferralIn, RoutingFacts, TipIn, VictimReferralIn
from contracts.vocabulary import Exploitation, Need, Urgency
from services.router.policy import Policy, PolicyError, basis_of
from services.router.settings import EXAMPLE_POLICY
from tests.unit.test_contracts import REFERRAL_EXAMPLE, TIP_EXAMPLE

POLICY = Policy.load(EXAMPLE_POLICY)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
_referral: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)

NO_CONSENT = {"services": False, "law_enforcement": False, "statistics": False}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def victim(**changes: Any) -> str:
    """The DESIGN.md victim referral (KZ-79, sexual exploitation, all consent given), changed;
    nested dicts change only the keys they name. A changed age drops the date of birth."""
    body = merged(json.loads(REFERRAL_EXAMPLE), changes)
    if "age" in changes.get("victim", {}):
        del body["victim"]["identity"]["date_of_birth"]
    return json.dumps(body)


def tip(**changes: Any) -> str:
    """The DESIGN.md tip (KZ-39, high urgency, officials involved), changed."""
    return json.dumps(merged(json.loads(TIP_EXAMPLE), changes))


@dataclass
class Case:
    id: str
    body: str
    submitter: str
    expected: dict[str, tuple[str, str]]  # agency -> (disclosure, rule)
    deadline: timedelta = timedelta(hours=24)
    notes: list[str] = field(default_factory=list)


HIGH_RISK = {
    "risk_level": "high",
    "assessed_by": "ngo-south caseworker",
    "assessed_at": "2026-11-20T10:00:00Z",
}

CASES = [
    Case(
        "rule1-shelter-covering-region",
        victim(),
        "labour-insp",
        {"ngo-south": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "rule1-no-shelter-covers-region-goes-to-coordinator",
        victim(region="KZ-15"),
        "labour-insp",
        {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "rule1-submitter-is-the-only-shelter",
        victim(),
        "ngo-south",
        {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "rule2-no-law-enforcement-consent-is-anonymous",
        victim(consent={"law_enforcement": False}),
        "ngo-south",
        {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("anonymous", "police")},
    ),
    Case(
        "rule2-tip-is-full",
        tip(official_involvement=False, exploitation=["forced_begging"]),
        "ngo-north",
        {"mvd-ctu": ("full", "police")},
        deadline=timedelta(hours=4),
    ),
    Case(
        "rule3-labour-without-any-consent",
        victim(exploitation=["labour"], consent=NO_CONSENT),
        "ngo-south",
        {"mvd-ctu": ("anonymous", "police"), "labour-insp": ("anonymous", "labour")},
    ),
    Case(
        "rule3-labour-submitted-by-the-inspectorate",
        victim(exploitation=["labour"], region="KZ-39"),
        "labour-insp",
        {"ngo-north": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "rule4-minor-without-consent",
        victim(victim={"age": 16}, consent=NO_CONSENT, urgency="immediate"),
        "mvd-ctu",
        {"child-rights": ("full", "minor")},
        deadline=timedelta(hours=1),
    ),
    Case(
        "rule4-minor-police-full-without-consent",
        victim(victim={"age": 16}, consent=NO_CONSENT),
        "ngo-south",
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "rule5-official-involvement-tip",
        tip(),
        "labour-insp",
        {
            "mvd-ctu": ("full", "police"),
            "gp": ("full", "official-involvement"),
            "anti-corruption": ("full", "official-involvement"),
        },
        deadline=timedelta(hours=4),
    ),
    Case(
        "rule5-official-involvement-victim-without-law-enforcement-consent",
        victim(official_involvement=True, consent={"law_enforcement": False}),
        "labour-insp",
        {
            "ngo-south": ("support", "services-shelter"),
            "mvd-ctu": ("anonymous", "police"),
            "gp": ("anonymous", "official-involvement"),
            "anti-corruption": ("anonymous", "official-involvement"),
        },
    ),
    Case(
        "rule8-nothing-matched-goes-to-coordinator",
        tip(official_involvement=False, urgency="routine"),
        "mvd-ctu",
        {"nrm-coordinator": ("full", "default")},
    ),
    Case(
        "presumed-minor-no-age-appears-minor-child-protection-full",
        victim(
            victim={"age": None, "appears_minor": True, "age_basis": "unknown"},
            consent=NO_CONSENT,
        ),
        "ngo-south",
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "appears-minor-but-documented-adult-is-an-adult",
        victim(victim={"appears_minor": True, "age_basis": "documented"}, consent=NO_CONSENT),
        "ngo-south",
        {"mvd-ctu": ("anonymous", "police")},
    ),
    Case(
        "appears-minor-estimated-adult-is-presumed-a-minor",
        victim(
            victim={"age": 19, "appears_minor": True, "age_basis": "estimated"},
            consent=NO_CONSENT,
        ),
        "ngo-south",
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "tip-naming-the-police-implicated",
        tip(implicated=["mvd-ctu"]),
        "ngo-north",
        {
            "gp": ("full", "official-involvement"),
            "anti-corruption": ("full", "official-involvement"),
        },
        deadline=timedelta(hours=4),
    ),
    Case(
        "implicated-shelter-falls-back-to-the-coordinator",
        victim(implicated=["ngo-south"]),
        "labour-insp",
        {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    Case(
        "implicated-coordinator-default-goes-to-the-next",
        tip(official_involvement=False, urgency="routine", implicated=["nrm-coordinator"]),
        "labour-insp",
        {"mvd-ctu": ("full", "police")},
    ),
    Case(
        "high-risk-is-immediate-and-adds-the-coordinator-within-consent",
        victim(
            victim={"safety": HIGH_RISK},
            consent={"services": False, "law_enforcement": True},
        ),
        "ngo-south",
        {"mvd-ctu": ("full", "police"), "nrm-coordinator": ("anonymous", "high-risk")},
        deadline=timedelta(hours=1),
    ),
    Case(
        "rule8-nothing-matched-victim-without-consent",
        victim(consent=NO_CONSENT),
        "mvd-ctu",
        {"nrm-coordinator": ("anonymous", "default")},
    ),
]


def facts_of(body: str, submitter: str) -> RoutingFacts:
    return RoutingFacts.from_referral(_referral.validate_json(body), submitted_by=submitter)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_example_policy(case: Case) -> None:
    evaluation = POLICY.evaluate(facts_of(case.body, case.submitter), now=NOW)
    got = {p.agency: (p.disclosure.value, p.rule) for p in evaluation.recipients}
    assert got == case.expected
    # Rule 6: the acknowledgement deadline follows the urgency.
    assert {p.deadline for p in evaluation.recipients} == {NOW + case.deadline}


def test_consent_a_level_rests_on_is_recorded() -> None:
    evaluation = POLICY.evaluate(facts_of(victim(), "labour-insp"), now=NOW)
    rests_on = {p.agency: p.requires_consent for p in evaluation.recipients}
    assert rests_on == {"ngo-south": ("services",), "mvd-ctu": ("law_enforcement",)}
    minor = POLICY.evaluate(facts_of(victim(victim={"age": 15}), "labour-insp"), now=NOW)
    # Child protection's `full` rests on no consent; the police's on none either, for a minor
    # whose law-enforcement consent is given: the first case that applies decides.
    assert {p.agency: p.requires_consent for p in minor.recipients}["child-rights"] == ()


def test_rule7_escalation_goes_to_the_coordinator_at_support() -> None:
    pick = POLICY.escalation(facts_of(victim(urgency="high"), "labour-insp"), now=NOW)
    assert pick is not None
    assert (pick.agency, pick.disclosure.value, pick.rule) == (
        "nrm-coordinator",
        "support",
        "escalation",
    )
    assert pick.deadline == NOW + timedelta(hours=4)
    assert basis_of(pick) == "consent: services"


def test_escalation_is_capped_by_consent() -> None:
    """The adult who refused both: the coordinator gets `anonymous` after the police decline;
    a minor goes at `full` on child protection."""
    refused = facts_of(victim(consent=NO_CONSENT), "ngo-south")
    pick = POLICY.escalation(refused, now=NOW, skip=["mvd-ctu"])
    assert pick is not None
    assert (pick.agency, pick.disclosure.value, pick.requires_consent) == (
        "nrm-coordinator",
        "anonymous",
        (),
    )
    assert basis_of(pick) == "none needed (anonymous)"
    minor = POLICY.escalation(
        facts_of(victim(victim={"age": 12}, consent=NO_CONSENT), "ngo-south"), now=NOW
    )
    assert minor is not None and (minor.disclosure.value, basis_of(minor)) == (
        "full",
        "child_protection",
    )


def test_escalation_never_goes_to_an_implicated_agency() -> None:
    facts = facts_of(tip(implicated=["nrm-coordinator"]), "ngo-north")
    pick = POLICY.escalation(facts, now=NOW, skip=["gp"])
    assert pick is not None and pick.agency == "mvd-ctu"  # the next default recipient
    both = facts_of(tip(implicated=["nrm-coordinator", "mvd-ctu"]), "ngo-north")
    assert POLICY.escalation(both, now=NOW, skip=["gp"]) is None


def test_explain_says_implicated_agencies_are_excluded() -> None:
    evaluation = POLICY.evaluate(facts_of(tip(implicated=["mvd-ctu"]), "ngo-north"), now=NOW)
    by_rule = {t.rule: t for t in evaluation.trace}
    assert by_rule["police"].notes == ["mvd-ctu excluded: implicated"]
    assert by_rule["police"].selected == []
    assert evaluation.excluded == {"mvd-ctu": "implicated"}
    # Disabled and implicated share the one exclusion: both absent, each with its reason.
    both = POLICY.evaluate(
        facts_of(tip(implicated=["mvd-ctu"]), "ngo-north"), now=NOW, unavailable=["gp"]
    )
    assert {p.agency for p in both.recipients} == {"anti-corruption"}
    assert both.excluded == {"mvd-ctu": "implicated", "gp": "disabled"}


def test_every_level_states_its_basis() -> None:
    evaluation = POLICY.evaluate(
        facts_of(victim(victim={"age": 15}, consent={"law_enforcement": False}), "labour-insp"),
        now=NOW,
    )
    assert {p.agency: basis_of(p) for p in evaluation.recipients} == {
        "ngo-south": "consent: services",
        "mvd-ctu": "child_protection",
        "child-rights": "child_protection",
    }
    tip_eval = POLICY.evaluate(facts_of(tip(), "labour-insp"), now=NOW)
    assert {basis_of(p) for p in tip_eval.recipients} == {"no_victim"}


def test_trace_explains_every_rule() -> None:
    evaluation = POLICY.evaluate(facts_of(victim(region="KZ-15"), "labour-insp"), now=NOW)
    by_rule = {t.rule: t for t in evaluation.trace}
    assert list(by_rule) == [
        "services-shelter",
        "police",
        "labour",
        "minor",
        "official-involvement",
        "high-risk",
    ]
    assert by_rule["services-shelter"].notes == [
        "no shelter covers KZ-15; fallback nrm-coordinator"
    ]
    assert by_rule["labour"].unmet == ["exploitation is not any of labour"]
    assert by_rule["police"].selected == ["mvd-ctu"]


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    copy = tmp_path / "routing.yaml"
    shutil.copy(EXAMPLE_POLICY.parent / "agencies.yaml", tmp_path / "agencies.yaml")
    text = EXAMPLE_POLICY.read_text()
    copy.write_text(text + "\n# a comment changes nothing\n")
    assert Policy.load(copy).version == POLICY.version
    copy.write_text(text.replace("high: 4h", "high: 3h"))
    assert Policy.load(copy).version != POLICY.version
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", POLICY.version)


# Property: any valid referral reaches someone, never its submitter, and a minor reaches
# child protection (unless child protection submitted it).

AGENCIES = sorted(POLICY.agencies)
REGIONS = sorted({r for a in POLICY.agencies.values() for r in a.regions} | {"KZ-15", "KZ-47"})


@st.composite
def referrals(draw: st.DrawFn) -> tuple[str, str]:
    common = {
        "region": draw(st.sampled_from(REGIONS)),
        "urgency": draw(st.sampled_from([u.value for u in Urgency])),
        "exploitation": draw(
            st.lists(st.sampled_from([e.value for e in Exploitation]), min_size=1, unique=True)
        ),
        "official_involvement": draw(st.booleans()),
        "destination_countries": draw(
            st.lists(st.sampled_from(["BH", "AE", "RU", "TR"]), unique=True)
        ),
    }
    if draw(st.booleans()):
        body: dict[str, Any] = {"kind": "tip", "source": "hotline", **common}
    else:
        body = {
            "kind": "victim_referral",
            **common,
            "victim": {
                "age": draw(st.none() | st.integers(min_value=0, max_value=120)),
                "needs": draw(st.lists(st.sampled_from([n.value for n in Need]), unique=True)),
            },
            "consent": {
                "services": draw(st.booleans()),
                "law_enforcement": draw(st.booleans()),
                "statistics": draw(st.booleans()),
                "given_by": "self",
                "recorded_at": "2026-11-20T10:00:00Z",
            },
        }
    return json.dumps(body), draw(st.sampled_from(AGENCIES))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(referrals())
def test_every_referral_reaches_someone_never_its_submitter(referral: tuple[str, str]) -> None:
    body, submitter = referral
    facts = facts_of(body, submitter)
    recipients = {p.agency for p in POLICY.evaluate(facts, now=NOW).recipients}
    assert recipients
    assert submitter not in recipients
    assert recipients <= set(AGENCIES)
    if facts.minor and submitter != "child-rights":
        assert "child-rights" in recipients


# Invalid policy files: each problem names the file and line.


def write_policy(tmp_path: Path, text: str, agencies: str | None = None) -> Path:
    (tmp_path / "agencies.yaml").write_text(
        agencies if agencies is not None else (EXAMPLE_POLICY.parent / "agencies.yaml").read_text()
    )
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth - 1]


EXAMPLE = EXAMPLE_POLICY.read_text()


def replaced(old: str, new: str) -> str:
    assert old in EXAMPLE
    return EXAMPLE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("kind", "text", "needle", "message"),
    [
        (
            "unknown-agency",
            replaced("- {agency: labour-insp}", "- {agency: labour-inspx}"),
            "labour-inspx",
            "unknown agency 'labour-inspx'",
        ),
        (
            "unknown-fallback-agency",
            replaced("fallback: nrm-coordinator}", "fallback: nobody}"),
            "fallback: nobody",
            "unknown agency 'nobody'",
        ),
        (
            "unknown-field",
            replaced("    disclosure: support\n", "    disclosure: support\n    priority: 3\n"),
            "priority: 3",
            "unknown field",
        ),
        (
            "bad-region-code",
            replaced(
                "when: {exploitation: [labour]}", "when: {exploitation: [labour], region: [KZ-99]}"
            ),
            "KZ-99",
            "'KZ-99' is not an ISO 3166-2 subdivision code",
        ),
        (
            "bad-enum-value",
            replaced("when: {exploitation: [labour]}", "when: {exploitation: [labor]}"),
            "[labor]",
            "Input should be",
        ),
        (
            "unreachable-rule-tip-with-consent",
            replaced(
                "when: {kind: victim_referral, consent: [services]}",
                "when: {kind: tip, consent: [services]}",
            ),
            "kind: tip, consent",
            "unreachable rule: tips carry no victim",
        ),
        (
            "unreachable-rule-after-stop",
            replaced(
                "    disclosure: law-enforcement\n",
                "    disclosure: law-enforcement\n    stop: true\n",
            ),
            "id: labour",
            "unreachable rule: 'police' always matches and stops",
        ),
        (
            "unreachable-disclosure-case",
            replaced(
                "    - when: {minor: true}\n      level: full\n",
                "    - level: support\n    - when: {minor: true}\n      level: full\n",
            ),
            "when: {minor: true}",
            "unreachable case",
        ),
        (
            "unknown-disclosure-name",
            replaced("disclosure: law-enforcement", "disclosure: police-level"),
            "police-level",
            "'police-level' is neither a level nor a `disclosure` case list",
        ),
        (
            "missing-deadline",
            replaced("  high: 4h\n", ""),
            "deadlines:",
            "no deadline for high",
        ),
        (
            "bad-duration",
            replaced("high: 4h", "high: four hours"),
            "four hours",
            "a duration is a positive number",
        ),
        (
            "duplicate-rule-id",
            replaced("id: labour", "id: police"),
            "id: police",
            "rule id 'police' is already used",
        ),
        (
            "agency-type-nobody-has",
            replaced("{type: shelter, fallback", "{type: other, fallback"),
            "type: other",
            "no agency has type other",
        ),
        (
            "default-needs-two-agencies",
            replaced("to: [nrm-coordinator, mvd-ctu]", "to: [nrm-coordinator]"),
            "to: [nrm-coordinator]",
            "name at least two agencies",
        ),
        (
            "level-above-anonymous-without-consent-or-basis",
            replaced(
                "when: {kind: victim_referral, consent: [services]}",
                "when: {kind: victim_referral}",
            ),
            "disclosure: support",
            "level support rests on nothing",
        ),
        (
            "case-without-consent-or-basis",
            replaced("      level: full\n      basis: child_protection\n", "      level: full\n"),
            "- when: {minor: true}",
            "level full rests on nothing",
        ),
        (
            "basis-without-its-condition",
            replaced(
                "    when: {minor: true}\n    to:\n      - {agency: child-rights}",
                "    when: {exploitation: [child_exploitation]}\n    to:\n"
                "      - {agency: child-rights}",
            ),
            "    disclosure: full",
            "basis child_protection applies only with `minor: true`",
        ),
        (
            "escalation-at-a-level-consent-does-not-cap",
            replaced("  disclosure: coordinator # support with", "  disclosure: support # with"),
            "disclosure: support # with",
            "level support rests on nothing",
        ),
        (
            "identification-unknown-authority",
            replaced("  authority: mvd-ctu", "  authority: mvd-ctux"),
            "authority: mvd-ctux",
            "unknown agency 'mvd-ctux'",
        ),
        (
            "identification-reflection-below-minimum",
            replaced("  reflection_period: 30d", "  reflection_period: 20d"),
            "reflection_period: 20d",
            "the reflection period (20d) is shorter than `reflection_minimum` (30d)",
        ),
        (
            "identification-bad-duration",
            replaced("  reasonable_grounds_due: 5d", "  reasonable_grounds_due: five days"),
            "reasonable_grounds_due: five",
            "a duration is a positive number",
        ),
        (
            "identification-overdue-unknown-agency",
            replaced("    to: nrm-coordinator # the authority", "    to: nobody # the authority"),
            "to: nobody # the authority",
            "unknown agency 'nobody'",
        ),
        (
            "identification-follow-up-rests-on-nothing",
            replaced(
                "      disclosure: coordinator # support with consent to services",
                "      disclosure: support",
            ),
            "      disclosure: support",
            "level support rests on nothing",
        ),
        (
            "identification-follow-up-id-taken",
            replaced("    - id: repatriation", "    - id: police"),
            "- id: police",
            "rule id 'police' is already used",
        ),
        (
            "not-yaml",
            replaced("  high: 4h\n", "  high: [4h\n"),
            "routine: 24h",
            "not valid YAML",
        ),
    ],
)
def test_invalid_policy_names_the_line(
    tmp_path: Path, kind: str, text: str, needle: str, message: str
) -> None:
    found = problems(write_policy(tmp_path, text))
    nth = 2 if kind in {"duplicate-rule-id", "identification-follow-up-id-taken"} else 1
    expected_line = line_of(text, needle, nth)
    assert any(p.startswith(f"routing.yaml:{expected_line}:") and message in p for p in found), (
        kind,
        found,
    )


def test_invalid_agencies_file_names_its_line(tmp_path: Path) -> None:
    agencies = (
        (EXAMPLE_POLICY.parent / "agencies.yaml")
        .read_text()
        .replace("regions: [KZ-75,", "regions: [KZ-7,")
    )
    found = problems(write_policy(tmp_path, EXAMPLE, agencies))
    line = line_of(agencies, "KZ-7,")
    assert any(p.startswith(f"agencies.yaml:{line}:") and "KZ-7" in p for p in found), found


def test_missing_agencies_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(EXAMPLE)
    (found,) = problems(path)
    assert found.startswith("agencies.yaml: cannot read")


def test_identification_clocks_follow_ups_and_overdue() -> None:
    """The example's identification section: 5 days to decide reasonable grounds, a 30-day
    reflection period; a confirmed foreign victim who needs repatriation goes to the
    coordinator (at `support`: consent to services); an overdue decision too."""
    body = _referral.validate_json(
        victim(victim={"citizenship": "UZ", "needs": ["shelter", "repatriation"]})
    )
    facts = RoutingFacts.from_referral(body, submitted_by="labour-insp")
    assert facts.foreign_citizen is True
    terms = POLICY.identification_terms(facts, submitted_at=NOW)
    assert terms is not None
    assert (terms.authority, terms.reasonable_grounds_due, terms.reflection_period) == (
        "mvd-ctu",
        datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        timedelta(days=30),
    )
    tip_facts = RoutingFacts.from_referral(_referral.validate_json(tip()), submitted_by="gp")
    assert POLICY.identification_terms(tip_facts, submitted_at=NOW) is None
    assert POLICY.follow_up(facts, now=NOW).recipients == []  # still potential
    confirmed = facts.model_copy(update={"victim_status": "confirmed"})
    (pick,) = POLICY.follow_up(confirmed, now=NOW).recipients
    assert (pick.agency, pick.disclosure.value, pick.rule) == (
        "nrm-coordinator",
        "support",
        "repatriation",
    )
    home = confirmed.model_copy(update={"foreign_citizen": False})
    assert POLICY.follow_up(home, now=NOW).recipients == []
    overdue = POLICY.identification_overdue(facts, now=NOW)
    assert overdue is not None
    assert (overdue.agency, overdue.disclosure.value, overdue.rule) == (
        "nrm-coordinator",
        "support",
        "identification-overdue",
    )
    # The coordinator submitted it: the overdue decision goes to the next default recipient
    # that is not the authority itself (none is left in the example: nobody).
    own = facts.model_copy(update={"submitted_by": "nrm-coordinator"})
    assert POLICY.identification_overdue(own, now=NOW) is None


def test_identification_clock_overrides_are_checked() -> None:
    short = Policy.load(
        EXAMPLE_POLICY,
        identification={"reflection_period": "2s", "reflection_minimum": "1s"},
    )
    assert short.describe_identification() == {
        "authority": "mvd-ctu",
        "reasonable_grounds_due": 432000.0,
        "reflection_period": 2.0,
        "reflection_minimum": 1.0,
        "overdue": {"to": "nrm-coordinator", "disclosure": "coordinator"},
        "follow_up": short.describe_identification()["follow_up"],  # type: ignore[index]
    }
    assert short.version != POLICY.version
    with pytest.raises(PolicyError, match=r"reflection period \(2s\) is shorter"):
        Policy.load(EXAMPLE_POLICY, identification={"reflection_period": "2s"})
    with pytest.raises(PolicyError, match="NRM_ROUTER_IDENTIFICATION: unknown clock 'period'"):
        Policy.load(EXAMPLE_POLICY, identification={"period": "2s"})
