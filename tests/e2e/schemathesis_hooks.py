"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through schemathesis.toml).

Every check runs on every operation. What is set aside here is one kind of failure only:
`positive_data_acceptance` (ST202, "schema-valid request rejected") where the service refused a
request by a rule that JSON Schema cannot state, because it relates two values of the request,
the request to the caller, or a value to something no schema can compute. Each rule below is
matched by the words of the service's own refusal, so any other refusal of schema-valid data
still fails the run. The rules are documented in the operations' descriptions and tested
directly in the integration tests named beside them.
"""

from typing import Any

import schemathesis

PASSWORD = (
    "The password is too common",
    "The password is too easy",
)
OAUTH_STATE = ("invalid_client", "invalid_grant", "unauthorized_client", "invalid_scope")
# Operation label -> words of a refusal (the problem's `detail` or an `errors[].message`) that
# name a rule the schema cannot state.
UNSTATABLE: dict[str, tuple[str, ...]] = {
    # `victim.age` must equal the age that `victim.identity.date_of_birth` gives on the day
    # `consent.recorded_at` (two fields compared: contracts.referrals.VictimReferralIn).
    # tests/integration/test_intake.py covers it. The router explains the same bodies.
    # Consent and risk assessments are not recorded in the future (a value against the clock:
    # contracts.vocabulary.NotFuture), and a region is one of the served country's
    # (configuration: services.intake.service.check_region). tests/integration/test_intake.py.
    "POST /v1/referrals": (
        "disagrees with `victim.identity.date_of_birth`",
        "lies in the future",
        "The region is not in the country this exchange serves.",
    ),
    "POST /v1/routing/explain": (
        "disagrees with `victim.identity.date_of_birth`",
        "lies in the future",
    ),
    "PUT /v1/referrals/{referral_id}/consent": ("lies in the future",),
    "PUT /v1/referrals/{referral_id}/safety": ("lies in the future",),
    # The caller's own agency cannot be named implicated (the request against the token).
    "PUT /v1/referrals/{referral_id}/implicated": (
        "cannot be named implicated in its own referral",
    ),
    # `from` and `to` each state their months (whole blocks: a pattern per deployment), but not
    # each other: the period must not end before it starts nor be longer than the maximum, and
    # `by` may not repeat a dimension or name one the chosen `measure` does not have.
    "GET /v1/statistics": (
        "the period ends before it starts",
        "a period covers at most",
        "at most two different dimensions",
        "is not one of",
    ),
    # A token request must carry the credentials of a registered client, and a code or refresh
    # token that client was issued (state, not a schema): RFC 6749 §5.2 errors otherwise.
    "POST /oauth/token": OAUTH_STATE,
    "POST /oauth/revoke": OAUTH_STATE,
    # A sign-in request must name a registered client and one of its redirect URIs (the
    # registry's state, not a schema): otherwise a page says it cannot be served.
    "GET /oauth/authorize": ("<title>This sign-in request cannot be served",),
    "POST /oauth/authorize": ("<title>This sign-in request cannot be served",),
    # A password must not be the username nor easy to guess (zxcvbn's estimate and a list of
    # 30,000 common passwords: services.identity.people.password_problem). How long it must be
    # (NRM_IDENTITY_PASSWORD_MIN_LENGTH) is stated in the document, as `minLength`.
    # A person, or a client with agency roles, needs an agency in the registry (its state).
    # The dpo role stands alone (two-person rule: a rule between the items of `roles`).
    "POST /v1/admin/people": (*PASSWORD, "No agency", "The dpo role cannot be combined"),
    "POST /v1/admin/people/{person_id}/reset": PASSWORD,
    "POST /v1/admin/clients": ("No agency", "The dpo role cannot be combined"),
}

# On every operation: a list's `cursor` must be one the service issued (`next_cursor`, opaque:
# services.common.pagination), which no pattern can state. tests/integration/test_pagination.py.
EVERYWHERE = ("is not a cursor this service issued",)


def _explained(response: Any, rules: tuple[str, ...]) -> bool:
    """Whether the refusal's detail names one of `rules`, or each of its field errors does."""
    if not rules:
        return False
    if response.headers.get("content-type", [""])[0].startswith("text/html"):
        return any(rule in response.text for rule in rules)
    try:
        problem = response.json()
    except ValueError:
        return False
    if not isinstance(problem, dict):
        return False
    # A problem's detail, or an RFC 6749 error's code.
    if any(rule in str(problem.get(key, "")) for rule in rules for key in ("detail", "error")):
        return True
    errors = problem.get("errors")
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(
            isinstance(e, dict) and any(rule in str(e.get("message", "")) for rule in rules)
            for e in errors
        )
    )


# Stateful links from a created referral to operations that only some agencies may use: the
# creating client (an NGO's labour inspector) is not the competent authority, not law
# enforcement, and cannot recuse a person it does not have; 404 is the answer the design gives
# (tests/integration/test_identification.py and test_victim_safety.py cover who may).
NOT_FOR_THE_CREATOR = {
    "POST /v1/referrals/{referral_id}/identification",
    "POST /v1/referrals/{referral_id}/investigation",
    "POST /v1/referrals/{referral_id}/recusal",
}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a 422 (400 for a sign-in page) for one of the rules above, and
    a 404 on an operation the creator of the referral may not use."""
    if failure.code == "ST302" and case.operation.label in NOT_FOR_THE_CREATOR:
        return bool(response.status_code != 404)
    if failure.code != "ST202" or response.status_code not in (400, 422):
        return True
    return not _explained(response, UNSTATABLE.get(case.operation.label, ()) + EVERYWHERE)
