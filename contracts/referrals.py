"""Bodies agencies post to `POST /v1/referrals`, and the routing facts derived from them.

Identity, contact and narrative live only in these request bodies and in intake's encrypted store;
`RoutingFacts` is what may travel on the bus (DESIGN.md principle 1).
"""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.vocabulary import (
    AgeBand,
    AgencyId,
    AgencyType,
    ConsentGivenBy,
    CountryCode,
    Exploitation,
    LanguageCode,
    Need,
    ReferralKind,
    RegionCode,
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
    full_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    date_of_birth: date | None = None
    document_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class VictimContact(Strict):
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{5,20}$")] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    safe_to_contact: bool = False


class Victim(Strict):
    status: VictimStatus = VictimStatus.POTENTIAL
    age: Annotated[int, Field(ge=0, le=120)] | None = None
    sex: Sex = Sex.UNKNOWN
    citizenship: CountryCode | None = None
    languages: Annotated[list[LanguageCode], Field(max_length=10)] = []
    needs: Annotated[list[Need], Field(max_length=len(Need))] = []
    identity: VictimIdentity | None = None
    contact: VictimContact | None = None

    @property
    def minor(self) -> bool:
        return self.age is not None and self.age < MINOR_AGE


class ConsentScopes(Strict):
    """What the victim agreed to; drives disclosure per recipient."""

    services: bool = Field(description="Referral to assistance services (shelter, medical, ...)")
    law_enforcement: bool = Field(description="Identity may be shared with law enforcement")
    statistics: bool = Field(description="Anonymised data may be used for statistics")


class Consent(ConsentScopes):
    given_by: ConsentGivenBy
    recorded_at: AwareDatetime


class ReferralBase(Strict):
    external_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="The submitting agency's own reference"
    )
    region: RegionCode
    urgency: Urgency = Urgency.ROUTINE
    exploitation: Annotated[list[Exploitation], Field(min_length=1, max_length=len(Exploitation))]
    destination_countries: Annotated[list[CountryCode], Field(max_length=20)] = []
    official_involvement: bool = False
    narrative: Annotated[str, Field(max_length=20_000)] | None = None


class VictimReferralIn(ReferralBase):
    """A person believed to be a victim, referred for assistance and/or investigation."""

    kind: Literal[ReferralKind.VICTIM_REFERRAL]
    victim: Victim
    consent: Consent


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

    @classmethod
    def from_referral(cls, body: VictimReferralIn | TipIn, *, submitted_by: str) -> "RoutingFacts":
        extra: dict[str, Any] = {}
        if isinstance(body, VictimReferralIn):
            extra = {
                "minor": body.victim.minor,
                "needs": body.victim.needs,
                "victim_status": body.victim.status,
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
            urgency=body.urgency,
            exploitation=body.exploitation,
            destination_countries=body.destination_countries,
            official_involvement=body.official_involvement,
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
    name: Annotated[str, Field(min_length=1, max_length=200)]
    type: AgencyType
    regions: list[RegionCode] = Field(
        default=[], description="ISO 3166-2 regions covered; empty means national"
    )
    language: LanguageCode = "en"
    created_at: datetime | None = None
