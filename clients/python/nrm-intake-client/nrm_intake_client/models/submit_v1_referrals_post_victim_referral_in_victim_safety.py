from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.submit_v1_referrals_post_victim_referral_in_victim_safety_risk_level import SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel
from ..models.submit_v1_referrals_post_victim_referral_in_victim_safety_safe_channel import SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel
from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="SubmitV1ReferralsPostVictimReferralInVictimSafety")



@_attrs_define
class SubmitV1ReferralsPostVictimReferralInVictimSafety:
    """ The victim's safety as assessed by the submitting (or a later) caseworker.

        Attributes:
            do_not_contact (bool | Unset): Nobody contacts the victim directly: phone and e-mail hidden Default: False.
            safe_channels (list[SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel] | Unset):
            safe_times (None | str | Unset): When contacting is safe, e.g. `weekdays 10:00-12:00`
            trafficker_nearby (bool | Unset):  Default: False.
            family_involved (bool | Unset): Family members are involved: do not contact through them Default: False.
            risk_level (None | SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel | Unset):
            assessed_by (None | str | Unset):
            assessed_at (datetime.datetime | None | Unset):
     """

    do_not_contact: bool | Unset = False
    safe_channels: list[SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel] | Unset = UNSET
    safe_times: None | str | Unset = UNSET
    trafficker_nearby: bool | Unset = False
    family_involved: bool | Unset = False
    risk_level: None | SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel | Unset = UNSET
    assessed_by: None | str | Unset = UNSET
    assessed_at: datetime.datetime | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        do_not_contact = self.do_not_contact

        safe_channels: list[str] | Unset = UNSET
        if not isinstance(self.safe_channels, Unset):
            safe_channels = []
            for safe_channels_item_data in self.safe_channels:
                safe_channels_item = safe_channels_item_data.value
                safe_channels.append(safe_channels_item)



        safe_times: None | str | Unset
        if isinstance(self.safe_times, Unset):
            safe_times = UNSET
        else:
            safe_times = self.safe_times

        trafficker_nearby = self.trafficker_nearby

        family_involved = self.family_involved

        risk_level: None | str | Unset
        if isinstance(self.risk_level, Unset):
            risk_level = UNSET
        elif isinstance(self.risk_level, SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel):
            risk_level = self.risk_level.value
        else:
            risk_level = self.risk_level

        assessed_by: None | str | Unset
        if isinstance(self.assessed_by, Unset):
            assessed_by = UNSET
        else:
            assessed_by = self.assessed_by

        assessed_at: None | str | Unset
        if isinstance(self.assessed_at, Unset):
            assessed_at = UNSET
        elif isinstance(self.assessed_at, datetime.datetime):
            assessed_at = self.assessed_at.isoformat()
        else:
            assessed_at = self.assessed_at


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if do_not_contact is not UNSET:
            field_dict["do_not_contact"] = do_not_contact
        if safe_channels is not UNSET:
            field_dict["safe_channels"] = safe_channels
        if safe_times is not UNSET:
            field_dict["safe_times"] = safe_times
        if trafficker_nearby is not UNSET:
            field_dict["trafficker_nearby"] = trafficker_nearby
        if family_involved is not UNSET:
            field_dict["family_involved"] = family_involved
        if risk_level is not UNSET:
            field_dict["risk_level"] = risk_level
        if assessed_by is not UNSET:
            field_dict["assessed_by"] = assessed_by
        if assessed_at is not UNSET:
            field_dict["assessed_at"] = assessed_at

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        do_not_contact = d.pop("do_not_contact", UNSET)

        _safe_channels = d.pop("safe_channels", UNSET)
        safe_channels: list[SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel] | Unset = UNSET
        if _safe_channels is not UNSET:
            safe_channels = []
            for safe_channels_item_data in _safe_channels:
                safe_channels_item = SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel(safe_channels_item_data)



                safe_channels.append(safe_channels_item)


        def _parse_safe_times(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        safe_times = _parse_safe_times(d.pop("safe_times", UNSET))


        trafficker_nearby = d.pop("trafficker_nearby", UNSET)

        family_involved = d.pop("family_involved", UNSET)

        def _parse_risk_level(data: object) -> None | SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                risk_level_risk_level = SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel(data)



                return risk_level_risk_level
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel | Unset, data)

        risk_level = _parse_risk_level(d.pop("risk_level", UNSET))


        def _parse_assessed_by(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        assessed_by = _parse_assessed_by(d.pop("assessed_by", UNSET))


        def _parse_assessed_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                assessed_at_type_0 = datetime.datetime.fromisoformat(data)



                return assessed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        assessed_at = _parse_assessed_at(d.pop("assessed_at", UNSET))


        submit_v1_referrals_post_victim_referral_in_victim_safety = cls(
            do_not_contact=do_not_contact,
            safe_channels=safe_channels,
            safe_times=safe_times,
            trafficker_nearby=trafficker_nearby,
            family_involved=family_involved,
            risk_level=risk_level,
            assessed_by=assessed_by,
            assessed_at=assessed_at,
        )

        return submit_v1_referrals_post_victim_referral_in_victim_safety

