from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="PostInvestigationV1ReferralsReferralIdInvestigationPostInvestigationIn")



@_attrs_define
class PostInvestigationV1ReferralsReferralIdInvestigationPostInvestigationIn:
    """ 
        Attributes:
            opened (bool):
            date (datetime.date):
            number (None | str | Unset): The investigation's number (sealed; shown at `full` only)
     """

    opened: bool
    date: datetime.date
    number: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        opened = self.opened

        date = self.date.isoformat()

        number: None | str | Unset
        if isinstance(self.number, Unset):
            number = UNSET
        else:
            number = self.number


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "opened": opened,
            "date": date,
        })
        if number is not UNSET:
            field_dict["number"] = number

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        opened = d.pop("opened")

        date = datetime.date.fromisoformat(d.pop("date"))




        def _parse_number(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        number = _parse_number(d.pop("number", UNSET))


        post_investigation_v1_referrals_referral_id_investigation_post_investigation_in = cls(
            opened=opened,
            date=date,
            number=number,
        )

        return post_investigation_v1_referrals_referral_id_investigation_post_investigation_in

