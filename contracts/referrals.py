"""Bodies agencies post to `POST /v1/referrals`, and the routing facts derived from them.

Identity, contact and narrative live only in these request bodies and in intake's encrypted store;
`RoutingFacts` is what may travel on the bus (DESIGN.md principle 1).
"""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.vocabulary import (
    EMAIL_PATTERN,
    PLAIN_LINE,
    PLAIN_TEXT,
    AgeBand,
    AgeBasis,
    AgencyId,
    AgencyType,
    ConfiguredAgencyId,
    ConsentForm,
    ConsentGivenBy,
    CountryCode,
    Exploitation,
    LanguageCode,
    LanguageTag,
    Need,
    NotFuture,
    ReferralKind,
    RegionCode,
    RiskLevel,
    SafeChannel,
    Sex,
    TipSource,
    Urgency,
    VictimStatus,
)

MINOR_AGE = 18


class Strict(BaseModel):
    """Unknown fields are errors: an integrator's typo must not silently drop data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class VictimIdentity(Strict):
    full_name: Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_LINE)] | None = None
    date_of_birth: date | None = None
    document_number: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN_LINE)] | None
    ) = None


class VictimContact(Strict):
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{5,20}$")] | None = None
    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    address: Annotated[str, Field(max_length=500, pattern=PLAIN_TEXT)] | None = Field(
        default=None,
        description="Shown to the submitter only, unless shared with the agencies named in "
        "`address_shared_with`",
    )
    address_shared_with: Annotated[list[AgencyId], Field(max_length=20)] = Field(
        default=[], description="Recipients that may see the address (none by default)"
    )
    safe_to_contact: bool = False


class Safety(Strict):
    """The victim's safety as assessed by the submitting (or a later) caseworker."""

    # The rule of `_assessed`, stated for readers of the JSON Schema.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["risk_level"], "properties": {"risk_level": {"type": "string"}}},
            "then": {
                "required": ["assessed_by", "assessed_at"],
                "properties": {
                    "assessed_by": {"type": "string"},
                    "assessed_at": {"type": "string"},
                },
            },
        }
    )

    do_not_contact: bool = Field(
        default=False, description="Nobody contacts the victim directly: phone and e-mail hidden"
    )
    safe_channels: Annotated[list[SafeChannel], Field(max_length=len(SafeChannel))] = []
    safe_times: Annotated[str, Field(max_length=200, pattern=PLAIN_LINE)] | None = Field(
        default=None, description="When contacting is safe, e.g. `weekdays 10:00-12:00`"
    )
    trafficker_nearby: bool = False
    family_involved: bool = Field(
        default=False, description="Family members are involved: do not contact through them"
    )
    risk_level: RiskLevel | None = None
    assessed_by: Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_LINE)] | None = (
        None
    )
    assessed_at: Annotated[AwareDatetime, NotFuture] | None = None

    @model_validator(mode="after")
    def _assessed(self) -> "Safety":
        if self.risk_level is not None and (self.assessed_by is None or self.assessed_at is None):
            raise ValueError("a `risk_level` needs `assessed_by` and `assessed_at`")
        return self


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class Victim(Strict):
    status: Literal[VictimStatus.POTENTIAL] = Field(
        default=VictimStatus.POTENTIAL,
        description="Every referral starts as a potential victim: only the competent authority "
        "decides more, with `POST /v1/referrals/{id}/identification`",
    )
    age: Annotated[int, Field(ge=0, le=120)] | None = Field(
        default=None,
        description="Age when the referral was recorded; follows from `identity.date_of_birth` "
        "when that is given (an age that disagrees with it is refused)",
    )
    age_basis: AgeBasis | None = Field(
        default=None, description="How the age is known; only `documented` rebuts `appears_minor`"
    )
    appears_minor: bool = Field(
        default=False,
        description="There are reasons to believe the victim is a child: presumed a minor unless "
        "documented to be 18 or over (CoE Convention art. 10(3))",
    )
    sex: Sex = Sex.UNKNOWN
    citizenship: CountryCode | None = None
    languages: Annotated[list[LanguageTag], Field(max_length=10)] = []
    needs: Annotated[list[Need], Field(max_length=len(Need))] = []
    identity: VictimIdentity | None = None
    contact: VictimContact | None = None
    safety: Safety | None = None

    @property
    def born(self) -> date | None:
        return self.identity.date_of_birth if self.identity else None

    def age_now(self, today: date | None = None) -> int | None:
        """The age today: from the date of birth when known, else the stated age."""
        if self.born is not None:
            return age_on(self.born, today or date.today())
        return self.age

    def is_minor(self, today: date | None = None) -> bool:
        """Under 18, or appearing to be a child without documents proving 18 or over."""
        age = self.age_now(today)
        if age is not None and age < MINOR_AGE:
            return True
        documented_adult = self.age_basis == AgeBasis.DOCUMENTED and age is not None
        return self.appears_minor and not documented_adult

    @property
    def minor(self) -> bool:
        return self.is_minor()

    @property
    def presumed_minor(self) -> bool:
        """A minor by presumption rather than by a known age under 18."""
        age = self.age_now()
        return self.minor and not (age is not None and age < MINOR_AGE)

    @property
    def contactable(self) -> bool:
        """Whether a recipient may be given the means to contact the victim."""
        safe = self.contact is not None and self.contact.safe_to_contact
        return safe and not (self.safety is not None and self.safety.do_not_contact)


class ConsentScopes(Strict):
    """What the victim agreed to; drives disclosure per recipient."""

    services: bool = Field(description="Referral to assistance services (shelter, medical, ...)")
    law_enforcement: bool = Field(description="Identity may be shared with law enforcement")
    statistics: bool = Field(description="Anonymised data may be used for statistics")


class Consent(ConsentScopes):
    given_by: ConsentGivenBy
    recorded_at: Annotated[AwareDatetime, NotFuture]
    guardian_appointment: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_LINE)] | None
    ) = Field(
        default=None,
        description="The act appointing the guardian (authority, number, date); required when "
        "`given_by` is `guardian`",
    )
    language: LanguageTag | None = Field(
        default=None, description="Language the consent was explained and given in (BCP 47)"
    )
    interpreter: bool | None = Field(default=None, description="An interpreter was present")
    form: ConsentForm | None = Field(default=None, description="`oral` or `written`")

    # The rule of `_guardian`, stated for readers of the JSON Schema.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["given_by"], "properties": {"given_by": {"const": "guardian"}}},
            "then": {
                "required": ["guardian_appointment"],
                "properties": {"guardian_appointment": {"type": "string"}},
            },
        }
    )

    @model_validator(mode="after")
    def _guardian(self) -> "Consent":
        if self.given_by == ConsentGivenBy.GUARDIAN and self.guardian_appointment is None:
            raise ValueError("a guardian's consent must name the `guardian_appointment`")
        return self


class ReferralBase(Strict):
    external_ref: Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN_LINE)] | None = (
        Field(default=None, description="The submitting agency's own reference")
    )
    region: RegionCode
    urgency: Urgency = Urgency.ROUTINE
    exploitation: Annotated[list[Exploitation], Field(min_length=1, max_length=len(Exploitation))]
    destination_countries: Annotated[list[CountryCode], Field(max_length=20)] = []
    official_involvement: bool = False
    implicated: Annotated[list[ConfiguredAgencyId], Field(max_length=20)] = Field(
        default=[],
        description="Agencies suspected of involvement: left out of routing entirely, and "
        "never shown that they were named",
    )
    narrative: Annotated[str, Field(max_length=20_000, pattern=PLAIN_TEXT)] | None = None


class VictimReferralIn(ReferralBase):
    """A person believed to be a victim, referred for assistance and/or investigation."""

    kind: Literal[ReferralKind.VICTIM_REFERRAL]
    victim: Victim
    consent: Consent

    @model_validator(mode="after")
    def _age_follows_birth(self) -> "VictimReferralIn":
        born, age = self.victim.born, self.victim.age
        # Compared on the day the referral was recorded, so a body stays valid as time passes.
        if (
            born is not None
            and age is not None
            and age != age_on(born, self.consent.recorded_at.date())
        ):
            raise ValueError(
                "`victim.age` disagrees with `victim.identity.date_of_birth` "
                "(on the day consent was recorded)"
            )
        return self


class TipIn(ReferralBase):
    """Information about suspected trafficking without a referred person."""

    kind: Literal[ReferralKind.TIP]
    source: TipSource = TipSource.OTHER


ReferralIn = Annotated[VictimReferralIn | TipIn, Field(discriminator="kind")]


class RoutingFacts(BaseModel):
    """Everything the routing policy may look at, and nothing that identifies a person."""

    model_config = ConfigDict(extra="forbid")

    kind: ReferralKind
    submitted_by: AgencyId
    region: RegionCode
    urgency: Urgency
    exploitation: list[Exploitation]
    destination_countries: list[CountryCode] = []
    official_involvement: bool = False
    minor: bool = False
    needs: list[Need] = []
    consent: ConsentScopes | None = None
    victim_status: VictimStatus | None = None
    implicated: list[AgencyId] = Field(
        default=[], description="Agencies left out of every rule, fallback and escalation"
    )
    risk_level: RiskLevel | None = None
    foreign_citizen: bool | None = Field(
        default=None,
        description="The victim's citizenship is not the country of the referral's region "
        "(null: not stated). The citizenship itself does not travel",
    )

    @classmethod
    def from_referral(cls, body: VictimReferralIn | TipIn, *, submitted_by: str) -> "RoutingFacts":
        extra: dict[str, Any] = {}
        urgency = body.urgency
        if isinstance(body, VictimReferralIn):
            risk = body.victim.safety.risk_level if body.victim.safety else None
            if risk == RiskLevel.HIGH:
                urgency = Urgency.IMMEDIATE
            extra = {
                "risk_level": risk,
                "minor": body.victim.minor,
                "needs": body.victim.needs,
                "victim_status": body.victim.status,
                "foreign_citizen": (
                    None
                    if body.victim.citizenship is None
                    else body.victim.citizenship != body.region.split("-")[0]
                ),
                "consent": ConsentScopes(
                    services=body.consent.services,
                    law_enforcement=body.consent.law_enforcement,
                    statistics=body.consent.statistics,
                ),
            }
        return cls(
            kind=body.kind,
            submitted_by=submitted_by,
            region=body.region,
            urgency=urgency,
            exploitation=body.exploitation,
            destination_countries=body.destination_countries,
            official_involvement=body.official_involvement,
            implicated=list(dict.fromkeys(body.implicated)),
            **extra,
        )


class VictimStatistics(BaseModel):
    """Coarse victim attributes for aggregate statistics (the insights service). On the bus only
    where the victim consented to statistics; never an exact age, a name or a date."""

    model_config = ConfigDict(extra="forbid")

    age_band: AgeBand
    sex: Sex = Sex.UNKNOWN
    citizenship: CountryCode | None = None

    @classmethod
    def consented(
        cls, profile: Mapping[str, Any], consent: ConsentScopes | None
    ) -> "VictimStatistics | None":
        """From intake's stored victim profile, or None without consent to statistics."""
        if consent is None or not consent.statistics:
            return None
        return cls(
            age_band=AgeBand.of(profile.get("age")),
            sex=profile.get("sex") or Sex.UNKNOWN,
            citizenship=profile.get("citizenship"),
        )


class Agency(BaseModel):
    """An agency taking part in the exchange (example configuration in deploy/config/)."""

    model_config = ConfigDict(extra="forbid")

    id: AgencyId
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_LINE)]
    type: AgencyType
    regions: list[RegionCode] = Field(
        default=[], description="ISO 3166-2 regions covered; empty means national"
    )
    language: LanguageCode = "en"
    created_at: datetime | None = None
