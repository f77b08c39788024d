from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.configured_agency_id import ConfiguredAgencyId
from typing import cast






T = TypeVar("T", bound="PutImplicatedV1ReferralsReferralIdImplicatedPutImplicatedIn")



@_attrs_define
class PutImplicatedV1ReferralsReferralIdImplicatedPutImplicatedIn:
    """ 
        Attributes:
            implicated (list[ConfiguredAgencyId]):
     """

    implicated: list[ConfiguredAgencyId]





    def to_dict(self) -> dict[str, Any]:
        implicated = []
        for implicated_item_data in self.implicated:
            implicated_item = implicated_item_data.value
            implicated.append(implicated_item)




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "implicated": implicated,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        implicated = []
        _implicated = d.pop("implicated")
        for implicated_item_data in (_implicated):
            implicated_item = ConfiguredAgencyId(implicated_item_data)



            implicated.append(implicated_item)


        put_implicated_v1_referrals_referral_id_implicated_put_implicated_in = cls(
            implicated=implicated,
        )

        return put_implicated_v1_referrals_referral_id_implicated_put_implicated_in

