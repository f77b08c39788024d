from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.configured_agency_id import ConfiguredAgencyId
from ..models.submit_v1_referrals_post_victim_referral_in_exploitation import SubmitV1ReferralsPostVictimReferralInExploitation
from ..models.submit_v1_referrals_post_victim_referral_in_urgency import SubmitV1ReferralsPostVictimReferralInUrgency
from ..types import UNSET, Unset
from typing import cast
from typing import Literal, cast

if TYPE_CHECKING:
  from ..models.submit_v1_referrals_post_victim_referral_in_consent import SubmitV1ReferralsPostVictimReferralInConsent
  from ..models.submit_v1_referrals_post_victim_referral_in_victim import SubmitV1ReferralsPostVictimReferralInVictim





T = TypeVar("T", bound="SubmitV1ReferralsPostVictimReferralIn")



@_attrs_define
class SubmitV1ReferralsPostVictimReferralIn:
    """ A person believed to be a victim, referred for assistance and/or investigation.

        Attributes:
            region (str): ISO 3166-2 subdivision code
            exploitation (list[SubmitV1ReferralsPostVictimReferralInExploitation]):
            kind (Literal['victim_referral']):
            victim (SubmitV1ReferralsPostVictimReferralInVictim):
            consent (SubmitV1ReferralsPostVictimReferralInConsent):
            external_ref (None | str | Unset): The submitting agency's own reference
            urgency (SubmitV1ReferralsPostVictimReferralInUrgency | Unset):
            destination_countries (list[str] | Unset):
            official_involvement (bool | Unset):  Default: False.
            implicated (list[ConfiguredAgencyId] | Unset): Agencies suspected of involvement: left out of routing entirely,
                and never shown that they were named
            narrative (None | str | Unset):
     """

    region: str
    exploitation: list[SubmitV1ReferralsPostVictimReferralInExploitation]
    kind: Literal['victim_referral']
    victim: SubmitV1ReferralsPostVictimReferralInVictim
    consent: SubmitV1ReferralsPostVictimReferralInConsent
    external_ref: None | str | Unset = UNSET
    urgency: SubmitV1ReferralsPostVictimReferralInUrgency | Unset = UNSET
    destination_countries: list[str] | Unset = UNSET
    official_involvement: bool | Unset = False
    implicated: list[ConfiguredAgencyId] | Unset = UNSET
    narrative: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.submit_v1_referrals_post_victim_referral_in_consent import SubmitV1ReferralsPostVictimReferralInConsent # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim import SubmitV1ReferralsPostVictimReferralInVictim # noqa: PLC0415
        region = self.region

        exploitation = []
        for exploitation_item_data in self.exploitation:
            exploitation_item = exploitation_item_data.value
            exploitation.append(exploitation_item)



        kind = self.kind

        victim = self.victim.to_dict()

        consent = self.consent.to_dict()

        external_ref: None | str | Unset
        if isinstance(self.external_ref, Unset):
            external_ref = UNSET
        else:
            external_ref = self.external_ref

        urgency: str | Unset = UNSET
        if not isinstance(self.urgency, Unset):
            urgency = self.urgency.value


        destination_countries: list[str] | Unset = UNSET
        if not isinstance(self.destination_countries, Unset):
            destination_countries = self.destination_countries



        official_involvement = self.official_involvement

        implicated: list[str] | Unset = UNSET
        if not isinstance(self.implicated, Unset):
            implicated = []
            for implicated_item_data in self.implicated:
                implicated_item = implicated_item_data.value
                implicated.append(implicated_item)



        narrative: None | str | Unset
        if isinstance(self.narrative, Unset):
            narrative = UNSET
        else:
            narrative = self.narrative


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "region": region,
            "exploitation": exploitation,
            "kind": kind,
            "victim": victim,
            "consent": consent,
        })
        if external_ref is not UNSET:
            field_dict["external_ref"] = external_ref
        if urgency is not UNSET:
            field_dict["urgency"] = urgency
        if destination_countries is not UNSET:
            field_dict["destination_countries"] = destination_countries
        if official_involvement is not UNSET:
            field_dict["official_involvement"] = official_involvement
        if implicated is not UNSET:
            field_dict["implicated"] = implicated
        if narrative is not UNSET:
            field_dict["narrative"] = narrative

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.submit_v1_referrals_post_victim_referral_in_consent import SubmitV1ReferralsPostVictimReferralInConsent # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim import SubmitV1ReferralsPostVictimReferralInVictim # noqa: PLC0415
        d = dict(src_dict)
        region = d.pop("region")

        exploitation = []
        _exploitation = d.pop("exploitation")
        for exploitation_item_data in (_exploitation):
            exploitation_item = SubmitV1ReferralsPostVictimReferralInExploitation(exploitation_item_data)



            exploitation.append(exploitation_item)


        kind = cast(Literal['victim_referral'] , d.pop("kind"))
        if kind != 'victim_referral':
            raise ValueError(f"kind must match const 'victim_referral', got '{kind}'")

        victim = SubmitV1ReferralsPostVictimReferralInVictim.from_dict(d.pop("victim"))




        consent = SubmitV1ReferralsPostVictimReferralInConsent.from_dict(d.pop("consent"))




        def _parse_external_ref(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        external_ref = _parse_external_ref(d.pop("external_ref", UNSET))


        _urgency = d.pop("urgency", UNSET)
        urgency: SubmitV1ReferralsPostVictimReferralInUrgency | Unset
        if isinstance(_urgency,  Unset):
            urgency = UNSET
        else:
            urgency = SubmitV1ReferralsPostVictimReferralInUrgency(_urgency)




        destination_countries = cast(list[str], d.pop("destination_countries", UNSET))


        official_involvement = d.pop("official_involvement", UNSET)

        _implicated = d.pop("implicated", UNSET)
        implicated: list[ConfiguredAgencyId] | Unset = UNSET
        if _implicated is not UNSET:
            implicated = []
            for implicated_item_data in _implicated:
                implicated_item = ConfiguredAgencyId(implicated_item_data)



                implicated.append(implicated_item)


        def _parse_narrative(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        narrative = _parse_narrative(d.pop("narrative", UNSET))


        submit_v1_referrals_post_victim_referral_in = cls(
            region=region,
            exploitation=exploitation,
            kind=kind,
            victim=victim,
            consent=consent,
            external_ref=external_ref,
            urgency=urgency,
            destination_countries=destination_countries,
            official_involvement=official_involvement,
            implicated=implicated,
            narrative=narrative,
        )

        return submit_v1_referrals_post_victim_referral_in

