"""Evaluating the routing policy on routing facts: who receives a referral, at which level,
and why. Evaluation is a pure function of (policy, facts, submitter, time), so `explain` and the
engine give the same answer."""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contracts.events import IdentificationTerms
from contracts.referrals import Agency, RoutingFacts
from contracts.vocabulary import AgencyType, Disclosure, ReferralKind, Urgency
from services.router.policy import load
from services.router.policy.schema import (
    DEFAULT_RULE,
    ESCALATION_RULE,
    IDENTIFICATION_CLOCKS,
    OVERDUE_RULE,
    ConsentScope,
    Escalation,
    PolicyFile,
    Rule,
    Target,
)

LEVEL_RANK = {Disclosure.ANONYMOUS: 0, Disclosure.SUPPORT: 1, Disclosure.FULL: 2}


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
        """Read and validate `path` (`load.read`); raises `PolicyError` naming every problem
        and its line.

        `deadlines` replaces the file's acknowledgement deadlines (e.g. `{"high": "30s"}` for a
        demonstration), `identification` its identification clocks (`reflection_period`, ...);
        they are part of the version like everything else, and checked like the file."""
        parsed, agencies, version = load.read(
            path, deadlines=deadlines, identification=identification
        )
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


def _excluded(agency: str, excluded: dict[str, str]) -> str:
    if excluded[agency] == DISABLED:
        return f"{agency} is disabled"
    return f"{agency} excluded: {excluded[agency]}"
