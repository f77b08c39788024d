"""Controlled vocabularies (after the Human Trafficking Case Data Standard) and code types."""

import functools
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field


class ReferralKind(StrEnum):
    VICTIM_REFERRAL = "victim_referral"
    TIP = "tip"


class Exploitation(StrEnum):
    SEXUAL = "sexual"
    LABOUR = "labour"
    FORCED_CRIMINALITY = "forced_criminality"
    FORCED_BEGGING = "forced_begging"
    ORGAN_REMOVAL = "organ_removal"
    FORCED_MARRIAGE = "forced_marriage"
    SERVITUDE = "servitude"
    CHILD_EXPLOITATION = "child_exploitation"
    OTHER = "other"


class VictimStatus(StrEnum):
    """`potential` -> `reasonable_grounds` | `no_reasonable_grounds`, then `reasonable_grounds`
    -> `confirmed` | `not_confirmed` (the competent authority's identification decisions)."""

    POTENTIAL = "potential"
    REASONABLE_GROUNDS = "reasonable_grounds"
    NO_REASONABLE_GROUNDS = "no_reasonable_grounds"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class IdentificationDecision(StrEnum):
    """A decision of the competent authority: the first two end `potential`, the last two
    (conclusive) follow `reasonable_grounds`."""

    REASONABLE_GROUNDS = "reasonable_grounds"
    NO_REASONABLE_GROUNDS = "no_reasonable_grounds"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class IdentificationBasis(StrEnum):
    """What an identification decision rests on (OSCE/ODIHR NRM handbook: indicators,
    interviews, documents, information from other agencies, a multi-agency assessment)."""

    INDICATORS = "indicators"
    INTERVIEW = "interview"
    DOCUMENTS = "documents"
    AGENCY_INFORMATION = "agency_information"
    INVESTIGATION = "investigation"
    MULTI_AGENCY_ASSESSMENT = "multi_agency_assessment"
    OTHER = "other"


class ErasureBasis(StrEnum):
    """Why a referral's data is erased (the legal-basis code `referral.erased` carries)."""

    RETENTION_EXPIRED = "retention_expired"
    VICTIM_REQUEST = "victim_request"
    UNLAWFUL_PROCESSING = "unlawful_processing"
    COURT_ORDER = "court_order"


class Need(StrEnum):
    SHELTER = "shelter"
    MEDICAL = "medical"
    PSYCHOLOGICAL = "psychological"
    LEGAL = "legal"
    INTERPRETATION = "interpretation"
    REPATRIATION = "repatriation"
    FINANCIAL = "financial"
    EDUCATION = "education"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AgeBand(StrEnum):
    """Broad age groups of the Counter Trafficking Data Collaborative's `ageBroad` (HTCDS)."""

    AGE_0_8 = "0-8"
    AGE_9_17 = "9-17"
    AGE_18_20 = "18-20"
    AGE_21_23 = "21-23"
    AGE_24_26 = "24-26"
    AGE_27_29 = "27-29"
    AGE_30_38 = "30-38"
    AGE_39_47 = "39-47"
    AGE_48_PLUS = "48+"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, age: int | None) -> "AgeBand":
        if age is None:
            return cls.UNKNOWN
        for band in cls:
            low, _, high = band.value.rstrip("+").partition("-")
            if band is not cls.UNKNOWN and int(low) <= age and (not high or age <= int(high)):
                return band
        return cls.UNKNOWN


class Urgency(StrEnum):
    IMMEDIATE = "immediate"
    HIGH = "high"
    ROUTINE = "routine"


class ConsentGivenBy(StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"
    LEGAL_REPRESENTATIVE = "legal_representative"


class AgeBasis(StrEnum):
    """How the victim's age is known (CoE Convention art. 10(3): presume a child when unsure)."""

    DOCUMENTED = "documented"
    ESTIMATED = "estimated"
    DISPUTED = "disputed"
    UNKNOWN = "unknown"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class SafeChannel(StrEnum):
    """Ways of reaching the victim that the assessor judged safe."""

    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    MESSENGER = "messenger"
    IN_PERSON = "in_person"
    THROUGH_AGENCY = "through_agency"


class ConsentForm(StrEnum):
    ORAL = "oral"
    WRITTEN = "written"


class TipSource(StrEnum):
    HOTLINE = "hotline"
    PUBLIC = "public"
    AGENCY = "agency"
    NGO = "ngo"
    MEDIA = "media"
    ONLINE = "online"
    OTHER = "other"


class Disclosure(StrEnum):
    """How much of a referral a recipient may see, from most to least."""

    FULL = "full"  # everything, narrative included
    SUPPORT = "support"  # identity, contact, needs, languages; no narrative
    ANONYMOUS = "anonymous"  # routing facts only


class AgencyType(StrEnum):
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    LABOUR_INSPECTORATE = "labour_inspectorate"
    CHILD_PROTECTION = "child_protection"
    ANTI_CORRUPTION = "anti_corruption"
    SHELTER = "shelter"
    COORDINATOR = "coordinator"
    OTHER = "other"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    ESCALATED = "escalated"
    WITHDRAWN = "withdrawn"  # the submitter withdrew the referral
    ERASED = "erased"  # the referral's data was erased; routing facts only are left


class Role(StrEnum):
    REFERRER = "referrer"
    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ANALYST = "analyst"
    DPO = "dpo"
    ADMIN = "admin"


@functools.cache
def _codes() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(countries, subdivisions, languages) as sets: pycountry's own `get` costs ~50 µs a call,
    which is a third of validating a referral."""
    return (
        frozenset(c.alpha_2 for c in pycountry.countries),
        frozenset(s.code for s in pycountry.subdivisions),
        frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")),
    )


@functools.cache
def _primary_languages() -> dict[str, str | None]:
    """BCP 47 primary language subtags: ISO 639-1 where a language has one, else ISO 639-3.
    Maps each ISO 639-3 code that has a two-letter code to it (for the error message)."""
    tags: dict[str, str | None] = {}
    for lang in pycountry.languages:
        two = getattr(lang, "alpha_2", None)
        if two:
            tags[two] = None
            tags[lang.alpha_3] = two
        else:
            tags[lang.alpha_3] = None
    return tags


def load_code_lists() -> None:
    """Load the code lists now rather than on the first request (about a second)."""
    _codes()
    _primary_languages()


@functools.cache
def code_list_pattern(name: str) -> str:
    """A regular expression matching exactly the codes of a list the types below check, by its
    `x-code-list` name (for documents that state it: services.common.openapi). A pattern rather
    than an enumeration: API testers enumerate every value of an enumeration (5,000 regions)."""
    countries, subdivisions, languages = _codes()
    lists = {"iso3166-1": countries, "iso3166-2": subdivisions, "iso639-1": languages}
    codes = lists[name]
    # Grouped by the part before the hyphen (`KZ-(?:10|11|...)`) to keep it short.
    groups: dict[str, list[str]] = {}
    for code in sorted(codes):
        head, _, tail = code.partition("-")
        groups.setdefault(head, []).append(tail)
    parts = [
        f"{head}-(?:{'|'.join(tails)})" if tails != [""] else head for head, tails in groups.items()
    ]
    return "^(?:" + "|".join(parts) + ")$"


@functools.cache
def language_tag_pattern() -> str:
    """The regular expression `LanguageTag` checks, its primary subtag spelled out: exactly the
    tags it accepts."""
    primaries = sorted(t for t, shorter in _primary_languages().items() if shorter is None)
    return _BCP47.pattern.replace("(?P<primary>[a-z]{2,3})", "(?:" + "|".join(primaries) + ")", 1)


def _country(code: str) -> str:
    if code not in _codes()[0]:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _region(code: str) -> str:
    if code not in _codes()[1]:
        raise ValueError(f"{code!r} is not an ISO 3166-2 subdivision code")
    return code


def _language(code: str) -> str:
    if code not in _codes()[2]:
        raise ValueError(f"{code!r} is not an ISO 639-1 language code")
    return code


_BCP47 = re.compile(
    r"^(?P<primary>[a-z]{2,3})(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|[0-9]{3}))?(-[a-z0-9]{5,8})*$"
)


@functools.lru_cache(maxsize=4096)  # few distinct tags; a hit skips the regex
def _language_tag(tag: str) -> str:
    match = _BCP47.fullmatch(tag)
    if match is None:
        raise ValueError(
            f"{tag!r} is not a BCP 47 language tag (language[-Script][-REGION]: kaa, kk-Cyrl)"
        )
    primary = match["primary"]
    tags = _primary_languages()
    if primary not in tags:
        raise ValueError(f"{primary!r} is not an ISO 639-1 or ISO 639-3 language code")
    shorter = tags[primary]
    if shorter is not None:
        raise ValueError(f"{primary!r} has a two-letter code: BCP 47 writes it {shorter!r}")
    return tag


CountryCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country code",
        examples=["KZ"],
        json_schema_extra={"x-code-list": "iso3166-1"},
    ),
    AfterValidator(_country),
]
RegionCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$",
        description="ISO 3166-2 subdivision code",
        examples=["KZ-79"],
        json_schema_extra={"x-code-list": "iso3166-2"},
    ),
    AfterValidator(_region),
]
LanguageCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2}$",
        description="ISO 639-1 language code",
        examples=["kk"],
        json_schema_extra={"x-code-list": "iso639-1"},
    ),
    AfterValidator(_language),
]
LanguageTag = Annotated[
    str,
    Field(
        max_length=35,
        description="BCP 47 language tag: an ISO 639-1 or ISO 639-3 language (kk, ru, kaa, dng, "
        "rom), optionally with script and region (kk-Cyrl-KZ)",
        examples=["kaa"],
        json_schema_extra={"x-code-list": "bcp47"},
    ),
    AfterValidator(_language_tag),
]
AgencyId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Agency identifier (lowercase slug)",
        examples=["mvd-ctu"],
    ),
]
ConfiguredAgencyId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Agency identifier (lowercase slug) of an agency of the configuration "
        "(`agencies.yaml`); a running exchange's OpenAPI documents list them",
        examples=["mvd-ctu"],
        json_schema_extra={"x-code-list": "agency"},
    ),
]


# White space (what Python's str.isspace calls so), written out: the `\s` of ECMA-262 (JSON
# Schema's patterns), of Python's re and of pydantic's regular expressions are three different
# sets, so a pattern using it would mean one thing to a client and another to the service.
SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
EMAIL_PATTERN = rf"^[^@{SPACE}]+@[^@{SPACE}]+$"

# Clocks of the agencies' systems differ a little; more than this ahead is a wrong date.
CLOCK_SKEW = timedelta(minutes=5)


def _not_future(moment: datetime) -> datetime:
    if moment > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("lies in the future")
    return moment


# When something was recorded or assessed: not later than now (a rule no schema can state).
NotFuture = AfterValidator(_not_future)

# C0 and C1 control characters, and Unicode's bidirectional embeddings, overrides and isolates:
# they can hide text or make a name read as another on a caseworker's screen ("Trojan Source",
# CVE-2021-42574). Multi-line text keeps tab, line feed and carriage return. Patterns rather than
# validators, so that the documents state the rule too.
_BIDI = r"\u202a-\u202e\u2066-\u2069"
CONTROLS = rf"\x00-\x1f\x7f-\x9f{_BIDI}"
_TEXT_CONTROLS = rf"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}"
# A name, number or reference: one line, not only spaces, no control or bidi characters.
PLAIN_LINE = rf"^[^{CONTROLS}]*[^{SPACE}{CONTROLS}][^{CONTROLS}]*$"
# Free text (a narrative, an address, a reason): line breaks allowed, other controls not.
PLAIN_TEXT = rf"^[^{_TEXT_CONTROLS}]*$"
PLAIN_TEXT_NOT_BLANK = rf"^[^{_TEXT_CONTROLS}]*[^{SPACE}{_TEXT_CONTROLS}][^{_TEXT_CONTROLS}]*$"
NOT_ONLY_SPACE = rf"[^{SPACE}]"
"""Some character that is not white space: a text that stripping cannot leave empty."""
"""An email address as far as the exchange checks one: something, `@`, something."""
