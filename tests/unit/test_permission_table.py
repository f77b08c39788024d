"""The permission table pinned cell by cell: the expected answers are written out here, not
read from `services.common.permissions`, so a wrong grant or a missing one fails its own case."""

import pytest

from contracts.vocabulary import Role
from services.common.permissions import Action, permitted

ACTIONS = (
    "referral.submit",
    "referral.read_own",
    "referral.read_routed",
    "referral.consent",
    "referral.implicate",
    "referral.withdraw",
    "identification.decide",
    "investigation.record",
    "inbox.read",
    "delivery.act",
    "agency.view",
    "webhook.manage_own",
    "audit.read",
    "policy.read",
    "policy.explain",
    "policy.admin",
    "agency.admin",
    "client.admin",
    "person.admin",
    "key.admin",
    "webhook.admin",
    "statistics.read",
    "statistics.release",
    "referral.hold",
    "erasure.request",
    "erasure.approve",
    "subject_access.read",
)

CASEWORK = {
    "inbox.read",
    "referral.read_routed",
    "delivery.act",
    "policy.explain",
    "referral.consent",
    "referral.implicate",
    "investigation.record",
    "referral.hold",
}

ALLOWED: dict[str, set[str]] = {
    "referrer": {
        "referral.submit",
        "referral.read_own",
        "referral.consent",
        "referral.implicate",
        "referral.withdraw",
        "policy.explain",
    },
    "caseworker": CASEWORK,
    "supervisor": CASEWORK
    | {
        "agency.view",
        "identification.decide",
        "webhook.manage_own",
        "person.admin",
        "statistics.read",
        "erasure.request",
    },
    "auditor": {"audit.read", "policy.read", "policy.explain"},
    "analyst": {"statistics.read", "statistics.release"},
    "dpo": {"erasure.approve", "subject_access.read"},
    "admin": {
        "agency.admin",
        "client.admin",
        "person.admin",
        "key.admin",
        "policy.read",
        "policy.admin",
        "policy.explain",
        "webhook.admin",
    },
}

CELLS = [
    pytest.param(role, action, action in allowed, id=f"{role}-{action}")
    for role, allowed in ALLOWED.items()
    for action in ACTIONS
]


@pytest.mark.parametrize(("role", "action", "expected"), CELLS)
def test_permission_cell(role: str, action: str, expected: bool) -> None:
    assert permitted(frozenset({Role(role)}), Action(action)) is expected


def test_the_table_covers_every_role_and_action() -> None:
    """A new role or action must be added here, with its row or column decided on purpose."""
    assert sorted(r.value for r in Role) == sorted(ALLOWED)
    assert sorted(a.value for a in Action) == sorted(ACTIONS)


def test_roles_combine_as_a_union() -> None:
    both = frozenset({Role("auditor"), Role("analyst")})
    assert permitted(both, Action("audit.read")) is True
    assert permitted(both, Action("statistics.release")) is True
    assert permitted(both, Action("referral.submit")) is False
    assert permitted(frozenset(), Action("policy.explain")) is False
