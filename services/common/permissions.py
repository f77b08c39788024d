"""The one permission table: which role may do what (DESIGN.md, Roles and access).

Endpoints declare the action they need; resource checks (is this agency the submitter or a
recipient?) live in each service's service layer.
"""

import functools
from enum import StrEnum

from contracts.vocabulary import Role


class Action(StrEnum):
    REFERRAL_SUBMIT = "referral.submit"
    REFERRAL_READ_OWN = "referral.read_own"  # what the caller's agency submitted
    REFERRAL_READ_ROUTED = "referral.read_routed"  # what was routed to the caller's agency
    REFERRAL_CONSENT = "referral.consent"  # consent and safety, by whoever is with the victim
    REFERRAL_IMPLICATE = "referral.implicate"  # name agencies implicated in a case
    REFERRAL_WITHDRAW = "referral.withdraw"
    IDENTIFICATION_DECIDE = "identification.decide"  # the competent authority's (service checks)
    INVESTIGATION_RECORD = "investigation.record"  # a law-enforcement recipient (service checks)
    INBOX_READ = "inbox.read"
    DELIVERY_ACT = "delivery.act"
    AGENCY_VIEW = "agency.view"  # agency-wide views (supervisor)
    WEBHOOK_MANAGE_OWN = "webhook.manage_own"  # the caller's own agency's webhook
    AUDIT_READ = "audit.read"
    POLICY_READ = "policy.read"
    POLICY_EXPLAIN = "policy.explain"  # dry-run the routing policy on a referral body
    POLICY_ADMIN = "policy.admin"
    AGENCY_ADMIN = "agency.admin"
    CLIENT_ADMIN = "client.admin"
    PERSON_ADMIN = "person.admin"  # people: all (admin) or the caller's agency's (supervisor)
    KEY_ADMIN = "key.admin"
    WEBHOOK_ADMIN = "webhook.admin"
    STATISTICS_READ = "statistics.read"  # aggregates; supervisors only at the coordinator
    STATISTICS_RELEASE = "statistics.release"  # spend privacy budget on an open-data release
    LEGAL_HOLD = "referral.hold"  # a law-enforcement or prosecutor recipient (service checks)
    ERASURE_REQUEST = "erasure.request"  # the national coordinator's supervisor (service checks)
    ERASURE_APPROVE = "erasure.approve"  # the second person of the two-person rule
    SUBJECT_ACCESS = "subject_access.read"  # everything held on one referral, for its subject


_CASEWORKER = frozenset(
    {
        Action.INBOX_READ,
        Action.REFERRAL_READ_ROUTED,
        Action.DELIVERY_ACT,
        Action.POLICY_EXPLAIN,
        Action.REFERRAL_CONSENT,  # a recipient at `support` or above (checked in the service)
        Action.REFERRAL_IMPLICATE,  # a prosecutor or coordinator recipient (checked there too)
        Action.INVESTIGATION_RECORD,
        Action.LEGAL_HOLD,  # a law-enforcement or prosecutor recipient (checked there too)
    }
)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.REFERRER: frozenset(
        {
            Action.REFERRAL_SUBMIT,
            Action.REFERRAL_READ_OWN,
            Action.REFERRAL_CONSENT,
            Action.REFERRAL_IMPLICATE,
            Action.REFERRAL_WITHDRAW,
            Action.POLICY_EXPLAIN,
        }
    ),
    Role.CASEWORKER: _CASEWORKER,
    # Statistics: the insights service narrows supervisors to the coordinator's.
    Role.SUPERVISOR: _CASEWORKER
    | {
        Action.AGENCY_VIEW,
        Action.IDENTIFICATION_DECIDE,
        Action.WEBHOOK_MANAGE_OWN,
        Action.PERSON_ADMIN,
        Action.STATISTICS_READ,
        Action.ERASURE_REQUEST,
    },
    # Auditors see the audit trail and the policy, never case data.
    Role.AUDITOR: frozenset({Action.AUDIT_READ, Action.POLICY_READ, Action.POLICY_EXPLAIN}),
    # Analysts see aggregate statistics only, never case data.
    Role.ANALYST: frozenset({Action.STATISTICS_READ, Action.STATISTICS_RELEASE}),
    # The data protection officer approves erasure and answers subject access; no case work.
    Role.DPO: frozenset({Action.ERASURE_APPROVE, Action.SUBJECT_ACCESS}),
    Role.ADMIN: frozenset(
        {
            Action.AGENCY_ADMIN,
            Action.CLIENT_ADMIN,
            Action.PERSON_ADMIN,
            Action.KEY_ADMIN,
            Action.POLICY_READ,
            Action.POLICY_ADMIN,
            Action.POLICY_EXPLAIN,
            Action.WEBHOOK_ADMIN,
        }
    ),
}


@functools.cache  # every request asks; few distinct role sets exist
def permitted(roles: frozenset[Role], action: Action) -> bool:
    return any(action in PERMISSIONS.get(role, frozenset()) for role in roles)
