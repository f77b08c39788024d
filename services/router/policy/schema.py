"""The routing policy file's schema: what each section may say, as pydantic models. The file
format is described in `deploy/config/routing.yaml`."""

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contracts.referrals import Agency, RoutingFacts
from contracts.vocabulary import (
    AgencyId,
    AgencyType,
    CountryCode,
    Disclosure,
    Exploitation,
    Need,
    ReferralKind,
    RegionCode,
    RiskLevel,
    Urgency,
    VictimStatus,
)
from services.common.retention import Retention

ConsentScope = Literal["services", "law_enforcement", "statistics"]
# Legal bases for disclosing above `anonymous` without the victim's consent, and the condition
# each needs in the same `when` (so a basis cannot be stretched to cases it does not cover).
LegalBasis = Literal["child_protection", "no_victim"]
BASIS_NEEDS: dict[str, str] = {
    "child_protection": "`minor: true` (best interests of the child)",
    "no_victim": "`kind: tip` (a tip identifies no victim)",
}
# Rule ids the engine gives its own picks; a rule of the file may not take them.
DEFAULT_RULE = "default"
ESCALATION_RULE = "escalation"
OVERDUE_RULE = "identification-overdue"


def _listify(value: Any) -> Any:
    """A scalar where a list is expected means a list of one: `kind: tip`."""
    return value if isinstance(value, list) else [value]


def duration(value: Any) -> timedelta:
    """A duration as the file writes it (`4h`, `30d`), or a number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(value))
    if not match or int(match[1]) == 0:
        raise ValueError("a duration is a positive number with s, m, h or d, like 4h")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def given_scopes(facts: RoutingFacts) -> set[str]:
    consent = facts.consent
    if consent is None:
        return set()
    return {name for name, given in consent.model_dump().items() if given}


AnyOf = BeforeValidator(_listify)
Duration = Annotated[timedelta, BeforeValidator(duration)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(Strict):
    """All must hold; a list means any of its values (for `consent`: all of the scopes)."""

    kind: Annotated[list[ReferralKind], AnyOf] | None = None
    exploitation: Annotated[list[Exploitation], AnyOf] | None = None
    region: Annotated[list[RegionCode], AnyOf] | None = None
    urgency: Annotated[list[Urgency], AnyOf] | None = None
    minor: bool | None = None
    consent: Annotated[list[ConsentScope], AnyOf] | None = None
    needs: Annotated[list[Need], AnyOf] | None = None
    victim_status: Annotated[list[VictimStatus], AnyOf] | None = None
    official_involvement: bool | None = None
    destination_countries: Annotated[list[CountryCode], AnyOf] | None = None
    risk_level: Annotated[list[RiskLevel], AnyOf] | None = None
    foreign_citizen: bool | None = None

    def unmet(self, facts: RoutingFacts) -> list[str]:
        """The conditions `facts` fail, as readable phrases; empty when all hold."""
        misses: list[str] = []

        def any_of(name: str, wanted: list[Any] | None, have: Iterable[Any]) -> None:
            if wanted is not None and not set(wanted) & set(have):
                misses.append(f"{name} is not any of {', '.join(map(str, wanted)) or '(none)'}")

        def equals(name: str, wanted: bool | None, have: bool) -> None:
            if wanted is not None and wanted != have:
                misses.append(f"{name} is not {str(wanted).lower()}")

        any_of("kind", self.kind, [facts.kind])
        any_of("exploitation", self.exploitation, facts.exploitation)
        any_of("region", self.region, [facts.region])
        any_of("urgency", self.urgency, [facts.urgency])
        equals("minor", self.minor, facts.minor)
        if self.consent is not None:
            given = given_scopes(facts)
            missing = [s for s in self.consent if s not in given]
            if missing:
                misses.append(f"no consent to {', '.join(missing)}")
        any_of("needs", self.needs, facts.needs)
        any_of(
            "victim status",
            self.victim_status,
            [facts.victim_status] if facts.victim_status else [],
        )
        equals("official involvement", self.official_involvement, facts.official_involvement)
        any_of("destination", self.destination_countries, facts.destination_countries)
        any_of("risk level", self.risk_level, [facts.risk_level] if facts.risk_level else [])
        if self.foreign_citizen is not None and self.foreign_citizen != facts.foreign_citizen:
            misses.append(f"foreign citizen is not {str(self.foreign_citizen).lower()}")
        return misses

    def supports(self, basis: str) -> bool:
        """Whether these conditions confine a legal basis to the cases it covers."""
        if basis == "child_protection":
            return self.minor is True
        if basis == "no_victim":
            return self.kind == [ReferralKind.TIP]
        return False

    def never_holds(self) -> str | None:
        """Why no referral can satisfy these conditions, if that is so."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list) and not value and name != "consent":
                return f"`{name}` is an empty list, which nothing matches"
        victim_only = [
            name
            for name, value in (
                ("minor: true", self.minor is True),
                ("consent", bool(self.consent)),
                ("needs", self.needs is not None),
                ("victim_status", self.victim_status is not None),
                ("risk_level", self.risk_level is not None),
                ("foreign_citizen", self.foreign_citizen is not None),
            )
            if value
        ]
        if self.kind == [ReferralKind.TIP] and victim_only:
            return f"tips carry no victim, so `kind: tip` with {', '.join(victim_only)} never holds"
        return None

    @property
    def unconditional(self) -> bool:
        return not self.model_fields_set


class Target(Strict):
    """`agency: <id>`, or `type: <agency type>` (those covering the region) with a fallback."""

    agency: AgencyId | None = None
    type: AgencyType | None = None
    fallback: AgencyId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Target":
        if (self.agency is None) == (self.type is None):
            raise ValueError("give exactly one of `agency` or `type`")
        if self.fallback is not None and self.type is None:
            raise ValueError("`fallback` applies only to `type` targets")
        return self


class Rule(Strict):
    id: RuleId
    description: str | None = None
    when: Conditions = Conditions()
    to: Annotated[list[Target], Field(min_length=1)]
    disclosure: str = Field(description="A level, or the name of a `disclosure` case list")
    basis: LegalBasis | None = Field(
        default=None,
        description="The legal basis for a level above `anonymous` when `when` names no consent",
    )
    stop: bool = False


class DisclosureCase(Strict):
    when: Conditions = Conditions()
    level: Disclosure
    basis: LegalBasis | None = None


class Escalation(Strict):
    to: AgencyId
    disclosure: str


class Default(Strict):
    to: Annotated[list[AgencyId], AnyOf, Field(min_length=1)]
    disclosure: str


class Identification(Strict):
    """Who decides a victim's status, the clocks, and what a decision sets off."""

    authority: AgencyId
    reasonable_grounds_due: Duration = Field(description="From submission")
    reflection_period: Duration = Field(description="From a reasonable-grounds decision")
    reflection_minimum: Duration = Field(description="The period may never be shorter")
    overdue: Escalation = Field(description="Where an overdue reasonable-grounds decision goes")
    follow_up: list[Rule] = Field(
        default=[], description="Rules evaluated on each decision, on the facts it leaves"
    )


IDENTIFICATION_CLOCKS = ("reasonable_grounds_due", "reflection_period", "reflection_minimum")


class PolicyFile(Strict):
    agencies: str | list[Agency]
    deadlines: dict[Urgency, Duration]
    disclosure: dict[RuleId, Annotated[list[DisclosureCase], Field(min_length=1)]] = {}
    rules: list[Rule]
    escalation: Escalation
    default: Default
    identification: Identification | None = None
    # Read by intake (its retention sweep); validated here so a bad file is refused on load.
    retention: Retention | None = None
