"""The routing policy: loading and validating the YAML file, and evaluating it on routing facts.

Evaluation is a pure function of (policy, facts, submitter, time), so `explain` and the engine
give the same answer. The file format is described in `deploy/config/routing.yaml`.
"""

import hashlib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from contracts.events import IdentificationTerms
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
from services.common.errors import UnprocessableContent
from services.common.retention import Retention

ConsentScope = Literal["services", "law_enforcement", "statistics"]
# Legal bases for disclosing above `anonymous` without the victim's consent, and the condition
# each needs in the same `when` (so a basis cannot be stretched to cases it does not cover).
LegalBasis = Literal["child_protection", "no_victim"]
BASIS_NEEDS: dict[str, str] = {
    "child_protection": "`minor: true` (best interests of the child)",
    "no_victim": "`kind: tip` (a tip identifies no victim)",
}
LEVEL_RANK = {Disclosure.ANONYMOUS: 0, Disclosure.SUPPORT: 1, Disclosure.FULL: 2}
DEFAULT_RULE = "default"
ESCALATION_RULE = "escalation"
OVERDUE_RULE = "identification-overdue"

# Policy file models


def _listify(value: Any) -> Any:
    """A scalar where a list is expected means a list of one: `kind: tip`."""
    return value if isinstance(value, list) else [value]


def _duration(value: Any) -> timedelta:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(value))
    if not match or int(match[1]) == 0:
        raise ValueError("a duration is a positive number with s, m, h or d, like 4h")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


AnyOf = BeforeValidator(_listify)
Duration = Annotated[timedelta, BeforeValidator(_duration)]
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


# Errors that name the line


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {self.where}: {self.message}" if self.where else f"{at}: {self.message}"


class PolicyError(UnprocessableContent):
    """The policy file is not acceptable; `problems` name the file, line and the problem.
    `in_force` is the version that stays in force (a reload keeps the old policy)."""

    def __init__(self, problems: Sequence[Problem], *, in_force: str | None = None) -> None:
        self.problems = list(problems)
        kept = f"; version {in_force} stays in force" if in_force else ""
        super().__init__(
            "\n".join(map(str, self.problems)),
            detail=f"The policy file was not loaded{kept}.",
            errors=[
                {"path": p.where or "/", "line": p.line, "type": "policy", "message": str(p)}
                for p in self.problems
            ],
        )


Path_ = tuple[str | int, ...]


class _Source:
    """A YAML document with the line of every node, so problems can point at their line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.lines: dict[Path_, int] = {}
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError([Problem(self.name, None, "", f"cannot read: {exc}")]) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise PolicyError(
                [Problem(self.name, line, "", f"not valid YAML: {problem}")]
            ) from None
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, at: Path_) -> None:
        self.lines[at] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*at, key.value)] = key.start_mark.line + 1
                self._index(value, (*at, key.value))
                self.lines[(*at, key.value)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*at, i))

    def problem(self, at: Path_, message: str) -> Problem:
        for n in range(len(at), -1, -1):
            if at[:n] in self.lines:
                return Problem(self.name, self.lines[at[:n]], _dotted(at), message)
        return Problem(self.name, None, _dotted(at), message)

    def validation_problems(self, exc: ValidationError, prefix: Path_ = ()) -> list[Problem]:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            # Drop pydantic's union/validator tags so the path is the file's own.
            at = tuple(
                p
                for p in error["loc"]
                if isinstance(p, int)
                or not (p.startswith("function-") or p in {"str", "list[Agency]"})
            )
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(self.problem((*prefix, *at), message))
        return problems


def _dotted(at: Path_) -> str:
    out = ""
    for p in at:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# The loaded policy


@dataclass(frozen=True)
class Pick:
    """One recipient of a decision, with the rule that chose it."""

    agency: str
    disclosure: Disclosure
    rule: str
    deadline: datetime | None
    requires_consent: tuple[ConsentScope, ...] = ()
    basis: str = "consent"  # what the level rests on: `consent`, or a legal basis


def basis_of(pick: Pick) -> str:
    """What a recipient's level rests on, in words: `consent: law_enforcement`, a legal basis,
    or `none needed` for `anonymous`."""
    if pick.disclosure == Disclosure.ANONYMOUS:
        return "none needed (anonymous)"
    if pick.basis != "consent":
        return pick.basis
    return "consent: " + ", ".join(pick.requires_consent)


@dataclass
class RuleTrace:
    """What one rule did for a referral, for `explain`."""

    rule: str
    matched: bool
    unmet: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    recipients: list[Pick]
    trace: list[RuleTrace]
    excluded: dict[str, str] = field(default_factory=dict)  # agency -> why (implicated, disabled)


IMPLICATED = "implicated"
DISABLED = "disabled"


def absent(facts: RoutingFacts, unavailable: Collection[str]) -> dict[str, str]:
    """Agencies routing must leave out, and why: named as implicated, or disabled. The one
    exclusion every rule, fallback, default, escalation and re-decision goes through."""
    out = {a: DISABLED for a in unavailable}
    out.update({a: IMPLICATED for a in facts.implicated})
    return out


@dataclass(frozen=True)
class Policy:
    file: PolicyFile
    agencies: dict[str, Agency]
    version: str
    source: str

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        deadlines: dict[Urgency, str] | None = None,
        identification: dict[str, str] | None = None,
    ) -> "Policy":
        """Read and validate `path`; raises `PolicyError` naming every problem and its line.

        `deadlines` replaces the file's acknowledgement deadlines (e.g. `{"high": "30s"}` for a
        demonstration), `identification` its identification clocks (`reflection_period`, ...);
        they are part of the version like everything else, and checked like the file."""
        source = _Source(path)
        if not isinstance(source.data, dict):
            raise PolicyError([source.problem((), "the policy must be a mapping")])
        try:
            parsed = PolicyFile.model_validate(source.data)
        except ValidationError as exc:
            raise PolicyError(source.validation_problems(exc)) from None
        if deadlines:
            try:
                changed = {u: _duration(d) for u, d in deadlines.items()}
            except ValueError as exc:
                raise PolicyError([Problem("NRM_ROUTER_DEADLINES", None, "", str(exc))]) from None
            parsed = parsed.model_copy(update={"deadlines": {**parsed.deadlines, **changed}})
        if identification and parsed.identification is not None:
            where = "NRM_ROUTER_IDENTIFICATION"
            unknown = sorted(set(identification) - set(IDENTIFICATION_CLOCKS))
            if unknown:
                message = f"unknown clock {unknown[0]!r}: one of {', '.join(IDENTIFICATION_CLOCKS)}"
                raise PolicyError([Problem(where, None, "", message)])
            try:
                clocks = {k: _duration(v) for k, v in identification.items()}
            except ValueError as exc:
                raise PolicyError([Problem(where, None, "", str(exc))]) from None
            parsed = parsed.model_copy(
                update={"identification": parsed.identification.model_copy(update=clocks)}
            )
        agencies = _load_agencies(parsed.agencies, source)
        _check(parsed, agencies, source)
        canonical = orjson.dumps(
            {
                "policy": parsed.model_dump(mode="json", exclude={"agencies"}),
                "agencies": [a.model_dump(mode="json") for a in agencies.values()],
            },
            option=orjson.OPT_SORT_KEYS,
        )
        version = "sha256:" + hashlib.sha256(canonical).hexdigest()[:16]
        return cls(file=parsed, agencies=agencies, version=version, source=str(path))

    def deadline(self, urgency: Urgency, now: datetime) -> datetime:
        return now + self.file.deadlines[urgency]

    def level(
        self,
        disclosure: str,
        facts: RoutingFacts,
        *,
        requires: Iterable[ConsentScope] = (),
        basis: str | None = None,
    ) -> tuple[Disclosure, tuple[ConsentScope, ...], str]:
        """The level a disclosure spec gives, the consent scopes it rests on, and its basis
        (`consent` or a legal basis). The validator makes sure one of them is there."""
        rests_on = list(requires)
        if disclosure in Disclosure.__members__.values():
            level = Disclosure(disclosure)
        else:
            case = next(c for c in self.file.disclosure[disclosure] if not c.when.unmet(facts))
            level = case.level
            rests_on += case.when.consent or []
            basis = case.basis or (None if case.when.consent else basis)
        if level == Disclosure.ANONYMOUS:
            return level, (), "consent"
        return level, tuple(dict.fromkeys(rests_on)), basis or "consent"

    def covering(self, agency_type: AgencyType, region: str) -> list[str]:
        """Agencies of a type whose regions include `region` (national ones cover all)."""
        return [
            a.id
            for a in self.agencies.values()
            if a.type == agency_type and (not a.regions or region in a.regions)
        ]

    def evaluate(
        self, facts: RoutingFacts, *, now: datetime, unavailable: Collection[str] = frozenset()
    ) -> Evaluation:
        """Who receives a referral with these facts, at which level, and why. `unavailable`
        agencies (disabled) and those named `implicated` are treated as absent: fallbacks and
        the default apply."""
        submitter = facts.submitted_by
        deadline = self.deadline(facts.urgency, now)
        excluded = absent(facts, unavailable)
        chosen, trace = self._apply(self.file.rules, facts, deadline, excluded)
        if not chosen:
            default = self.file.default
            # Never an implicated agency, not even when nobody else is left.
            candidates = [a for a in default.to if a != submitter and excluded.get(a) != IMPLICATED]
            # Nobody available at all: still the first, so the referral waits rather than drops.
            agency = next((a for a in candidates if a not in excluded), None) or next(
                iter(candidates), None
            )
            step = RuleTrace(rule=DEFAULT_RULE, matched=True, notes=["no rule chose a recipient"])
            step.notes += [_excluded(a, excluded) for a in default.to if a in excluded]
            trace.append(step)
            if agency is not None:
                level, requires, basis = self.level(default.disclosure, facts)
                chosen[agency] = Pick(agency, level, DEFAULT_RULE, deadline, requires, basis)
                step.selected.append(agency)
        return Evaluation(recipients=list(chosen.values()), trace=trace, excluded=excluded)

    def follow_up(
        self, facts: RoutingFacts, *, now: datetime, unavailable: Collection[str] = frozenset()
    ) -> Evaluation:
        """Who an identification decision brings in (`identification.follow_up` rules on the
        facts the decision left); no default: nobody when nothing matches."""
        spec = self.file.identification
        rules = spec.follow_up if spec is not None else []
        excluded = absent(facts, unavailable)
        chosen, trace = self._apply(rules, facts, self.deadline(facts.urgency, now), excluded)
        return Evaluation(recipients=list(chosen.values()), trace=trace, excluded=excluded)

    def identification_terms(
        self, facts: RoutingFacts, *, submitted_at: datetime
    ) -> IdentificationTerms | None:
        """The clocks a victim referral gets (None for a tip, or without the section)."""
        spec = self.file.identification
        if spec is None or facts.kind != ReferralKind.VICTIM_REFERRAL:
            return None
        return IdentificationTerms(
            authority=spec.authority,
            reasonable_grounds_due=submitted_at + spec.reasonable_grounds_due,
            reflection_period=max(spec.reflection_period, spec.reflection_minimum),
        )

    def identification_overdue(
        self, facts: RoutingFacts, *, now: datetime, unavailable: Collection[str] = frozenset()
    ) -> Pick | None:
        """Who an overdue reasonable-grounds decision goes to (never the authority itself, the
        submitter or an implicated agency: then the first default recipient that is not)."""
        spec = self.file.identification
        if spec is None:
            return None
        found = self.escalation(
            facts, now=now, skip=[spec.authority], unavailable=unavailable, spec=spec.overdue
        )
        if found is None:
            return None
        return Pick(
            found.agency,
            found.disclosure,
            OVERDUE_RULE,
            found.deadline,
            found.requires_consent,
            found.basis,
        )

    def _apply(
        self,
        rules: Sequence[Rule],
        facts: RoutingFacts,
        deadline: datetime,
        excluded: dict[str, str],
    ) -> tuple[dict[str, Pick], list[RuleTrace]]:
        """Every rule whose `when` holds, in order, until one that stops."""
        submitter = facts.submitted_by
        chosen: dict[str, Pick] = {}
        trace: list[RuleTrace] = []
        for rule in rules:
            unmet = rule.when.unmet(facts)
            step = RuleTrace(rule=rule.id, matched=not unmet, unmet=unmet)
            trace.append(step)
            if unmet:
                continue
            level, requires, basis = self.level(
                rule.disclosure, facts, requires=rule.when.consent or [], basis=rule.basis
            )
            for target in rule.to:
                for agency, note in self._resolve(target, facts.region, submitter, excluded):
                    if note:
                        step.notes.append(note)
                    if agency is None:
                        continue
                    step.selected.append(agency)
                    pick = Pick(agency, level, rule.id, deadline, requires, basis)
                    earlier = chosen.get(agency)
                    if earlier is None or LEVEL_RANK[level] > LEVEL_RANK[earlier.disclosure]:
                        chosen[agency] = pick
            if rule.stop:
                step.notes.append("stop: later rules were not evaluated")
                break
        return chosen, trace

    def escalation(
        self,
        facts: RoutingFacts,
        *,
        now: datetime,
        skip: Collection[str] = (),
        unavailable: Collection[str] = frozenset(),
        spec: Escalation | None = None,
    ) -> Pick | None:
        """Who a declined or overdue delivery goes to, at the level consent allows: the
        escalation target (`spec`, default the policy's `escalation`), or (when it is
        implicated, the submitter or in `skip`) the first of the default recipients that is
        not. None when nobody is left."""
        spec = spec or self.file.escalation
        excluded = absent(facts, unavailable)
        out = {facts.submitted_by, *skip}
        candidates = [spec.to, *self.file.default.to]
        target = next(
            (a for a in candidates if a not in out and excluded.get(a) != IMPLICATED), None
        )
        if target is None:
            return None
        level, requires, basis = self.level(spec.disclosure, facts)
        return Pick(
            target, level, ESCALATION_RULE, self.deadline(facts.urgency, now), requires, basis
        )

    def _resolve(
        self, target: Target, region: str, submitter: str, excluded: dict[str, str]
    ) -> list[tuple[str | None, str | None]]:
        if target.agency is not None:
            if target.agency == submitter:
                return [(None, f"{target.agency} is the submitter, never its own recipient")]
            if target.agency in excluded:
                return [(None, _excluded(target.agency, excluded))]
            return [(target.agency, None)]
        assert target.type is not None
        covering = self.covering(target.type, region)
        others = [a for a in covering if a != submitter and a not in excluded]
        if others:
            return [(a, None) for a in others]
        if not covering:
            why = f"no {target.type} covers {region}"
        elif covering == [submitter]:
            why = f"the only {target.type} covering {region} is the submitter"
        else:
            gone = ", ".join(f"{a} {excluded[a]}" for a in covering if a in excluded)
            why = f"the {target.type} covering {region} is not available ({gone})"
        if target.fallback is None or target.fallback == submitter:
            return [(None, why + "; no fallback")]
        if target.fallback in excluded:
            return [(None, why + f"; fallback {_excluded(target.fallback, excluded)}")]
        return [(target.fallback, why + f"; fallback {target.fallback}")]

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "agencies": [a.model_dump(mode="json") for a in self.agencies.values()],
            **self.file.model_dump(mode="json", exclude={"agencies"}),
            "deadlines": {u.value: int(d.total_seconds()) for u, d in self.file.deadlines.items()},
            "identification": self.describe_identification(),
        }

    def describe_identification(self) -> dict[str, Any] | None:
        """The identification section, clocks in seconds (like `deadlines`)."""
        spec = self.file.identification
        if spec is None:
            return None
        out = spec.model_dump(mode="json")
        for clock in IDENTIFICATION_CLOCKS:
            out[clock] = getattr(spec, clock).total_seconds()
        return out


def _human(span: timedelta) -> str:
    """A duration as the policy file writes it: 30d, 4h, 90s."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _excluded(agency: str, excluded: dict[str, str]) -> str:
    if excluded[agency] == DISABLED:
        return f"{agency} is disabled"
    return f"{agency} excluded: {excluded[agency]}"


def _load_agencies(spec: str | list[Agency], source: _Source) -> dict[str, Agency]:
    if isinstance(spec, str):
        other = _Source(source.path.parent / spec)
        raw = other.data.get("agencies") if isinstance(other.data, dict) else other.data
        if not isinstance(raw, list):
            raise PolicyError([other.problem((), "expected a list of agencies under `agencies`")])
        prefix: Path_ = ("agencies",) if isinstance(other.data, dict) else ()
        problems: list[Problem] = []
        agencies: list[Agency] = []
        for i, item in enumerate(raw):
            try:
                agencies.append(Agency.model_validate(item))
            except ValidationError as exc:
                problems += other.validation_problems(exc, (*prefix, i))
        if problems:
            raise PolicyError(problems)
        found = agencies
    else:
        found = spec
    by_id: dict[str, Agency] = {}
    for i, agency in enumerate(found):
        if agency.id in by_id:
            raise PolicyError([source.problem(("agencies", i), f"agency {agency.id} twice")])
        by_id[agency.id] = agency
    return by_id


def _check(policy: PolicyFile, agencies: dict[str, Agency], source: _Source) -> None:
    """What the schema cannot say: references resolve, every rule can fire, nothing is missing."""
    problems: list[Problem] = []
    levels = {d.value for d in Disclosure}

    def agency(at: Path_, agency_id: str) -> None:
        if agency_id not in agencies:
            problems.append(source.problem(at, f"unknown agency {agency_id!r}"))

    def disclosure(at: Path_, name: str) -> None:
        if name not in levels and name not in policy.disclosure:
            problems.append(
                source.problem(at, f"{name!r} is neither a level nor a `disclosure` case list")
            )

    def based(at: Path_, level: Disclosure, when: Conditions, basis: str | None) -> None:
        """Consent caps disclosure: above `anonymous`, a level needs consent scopes in its
        `when` or a legal basis whose condition that `when` states."""
        if level == Disclosure.ANONYMOUS:
            return
        if basis is not None:
            if not when.supports(basis):
                needs = BASIS_NEEDS[basis]
                problems.append(source.problem(at, f"basis {basis} applies only with {needs}"))
            return
        if not when.consent:
            problems.append(
                source.problem(
                    at,
                    f"level {level.value} rests on nothing: state the consent scopes it needs "
                    "(`when: {consent: [...]}`) or a legal basis (`basis: child_protection`)",
                )
            )

    for urgency in Urgency:
        if urgency not in policy.deadlines:
            problems.append(source.problem(("deadlines",), f"no deadline for {urgency.value}"))
    for name, cases in policy.disclosure.items():
        if name in levels:
            problems.append(source.problem(("disclosure", name), "a level name cannot be a list"))
        for i, case in enumerate(cases):
            based(("disclosure", name, i), case.level, case.when, case.basis)
            why = case.when.never_holds()
            if why:
                problems.append(source.problem(("disclosure", name, i), f"unreachable case: {why}"))
            if i and cases[i - 1].when.unconditional:
                problems.append(
                    source.problem(
                        ("disclosure", name, i), "unreachable case: the case before always applies"
                    )
                )
        if not cases[-1].when.unconditional:
            problems.append(
                source.problem(
                    ("disclosure", name, len(cases) - 1),
                    "the last case needs no `when`, so the list always gives a level",
                )
            )
    seen: dict[str, int] = {}

    def check_rules(section: Path_, rules: list[Rule]) -> None:
        stopped_at: str | None = None
        for i, rule in enumerate(rules):
            at: Path_ = (*section, i)
            if rule.id in seen or rule.id in {DEFAULT_RULE, ESCALATION_RULE, OVERDUE_RULE}:
                problems.append(source.problem((*at, "id"), f"rule id {rule.id!r} is already used"))
            seen[rule.id] = i
            if stopped_at is not None:
                problems.append(
                    source.problem(at, f"unreachable rule: {stopped_at!r} always matches and stops")
                )
            why = rule.when.never_holds()
            if why:
                problems.append(source.problem((*at, "when"), f"unreachable rule: {why}"))
            if rule.stop and rule.when.unconditional and stopped_at is None:
                stopped_at = rule.id
            disclosure((*at, "disclosure"), rule.disclosure)
            if rule.disclosure in levels:
                based((*at, "disclosure"), Disclosure(rule.disclosure), rule.when, rule.basis)
            elif rule.basis is not None:
                problems.append(
                    source.problem(
                        (*at, "basis"),
                        "a case list states its own bases; `basis` goes on its cases",
                    )
                )
            for j, target in enumerate(rule.to):
                if target.agency is not None:
                    agency((*at, "to", j, "agency"), target.agency)
                if target.fallback is not None:
                    agency((*at, "to", j, "fallback"), target.fallback)
                if target.type is not None and not any(
                    a.type == target.type for a in agencies.values()
                ):
                    problems.append(
                        source.problem((*at, "to", j, "type"), f"no agency has type {target.type}")
                    )

    check_rules(("rules",), policy.rules)
    ident = policy.identification
    if ident is not None:
        agency(("identification", "authority"), ident.authority)
        agency(("identification", "overdue", "to"), ident.overdue.to)
        disclosure(("identification", "overdue", "disclosure"), ident.overdue.disclosure)
        if ident.overdue.disclosure in levels:
            level = Disclosure(ident.overdue.disclosure)
            based(("identification", "overdue", "disclosure"), level, Conditions(), None)
        if ident.reflection_period < ident.reflection_minimum:
            problems.append(
                source.problem(
                    ("identification", "reflection_period"),
                    f"the reflection period ({_human(ident.reflection_period)}) is shorter than "
                    f"`reflection_minimum` ({_human(ident.reflection_minimum)})",
                )
            )
        check_rules(("identification", "follow_up"), ident.follow_up)
    agency(("escalation", "to"), policy.escalation.to)
    disclosure(("escalation", "disclosure"), policy.escalation.disclosure)
    for key, spec in (("escalation", policy.escalation.disclosure), ("default", None)):
        value = spec if spec is not None else policy.default.disclosure
        if value in levels:
            based((key, "disclosure"), Disclosure(value), Conditions(), None)
    for j, agency_id in enumerate(policy.default.to):
        agency(("default", "to", j), agency_id)
    if len(set(policy.default.to)) < 2:
        problems.append(
            source.problem(
                ("default", "to"),
                "name at least two agencies, so a referral from the first still has a recipient",
            )
        )
    disclosure(("default", "disclosure"), policy.default.disclosure)
    if problems:
        raise PolicyError(problems)


def given_scopes(facts: RoutingFacts) -> set[str]:
    consent = facts.consent
    if consent is None:
        return set()
    return {name for name, given in consent.model_dump().items() if given}
