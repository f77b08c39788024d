"""Reading a policy file: the YAML with the line of every node, the schema, then what the
schema cannot say (references resolve, every rule can fire); every problem names its line."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
import yaml
from pydantic import ValidationError

from contracts.referrals import Agency
from contracts.vocabulary import Disclosure, Urgency
from services.common.errors import UnprocessableContent
from services.router.policy.schema import (
    BASIS_NEEDS,
    DEFAULT_RULE,
    ESCALATION_RULE,
    IDENTIFICATION_CLOCKS,
    OVERDUE_RULE,
    Conditions,
    PolicyFile,
    Rule,
    duration,
)


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


def read(
    path: Path,
    *,
    deadlines: dict[Urgency, str] | None = None,
    identification: dict[str, str] | None = None,
) -> tuple[PolicyFile, dict[str, Agency], str]:
    """The file at `path`, validated, with its agencies and version (a hash of both); raises
    `PolicyError` naming every problem and its line. `deadlines` and `identification` replace
    the file's clocks, and are checked and hashed like the file."""
    source = _Source(path)
    if not isinstance(source.data, dict):
        raise PolicyError([source.problem((), "the policy must be a mapping")])
    try:
        parsed = PolicyFile.model_validate(source.data)
    except ValidationError as exc:
        raise PolicyError(source.validation_problems(exc)) from None
    if deadlines:
        try:
            changed = {u: duration(d) for u, d in deadlines.items()}
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
            clocks = {k: duration(v) for k, v in identification.items()}
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
    return parsed, agencies, version


def _human(span: timedelta) -> str:
    """A duration as the policy file writes it: 30d, 4h, 90s."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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
