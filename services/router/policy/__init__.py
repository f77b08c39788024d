"""The routing policy, by idea: `schema` (the YAML file's models), `load` (reading it, with
every problem named by its line) and `engine` (evaluating it on routing facts)."""

from services.router.policy.engine import (
    DISABLED,
    IMPLICATED,
    LEVEL_RANK,
    Evaluation,
    Pick,
    Policy,
    RuleTrace,
    absent,
    basis_of,
)
from services.router.policy.load import PolicyError, Problem
from services.router.policy.schema import (
    DEFAULT_RULE,
    ESCALATION_RULE,
    OVERDUE_RULE,
    ConsentScope,
    PolicyFile,
)

__all__ = [
    "DEFAULT_RULE",
    "DISABLED",
    "ESCALATION_RULE",
    "IMPLICATED",
    "LEVEL_RANK",
    "OVERDUE_RULE",
    "ConsentScope",
    "Evaluation",
    "Pick",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "Problem",
    "RuleTrace",
    "absent",
    "basis_of",
]
