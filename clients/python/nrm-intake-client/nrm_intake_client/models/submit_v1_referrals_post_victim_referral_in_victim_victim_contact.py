from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="SubmitV1ReferralsPostVictimReferralInVictimVictimContact")



@_attrs_define
class SubmitV1ReferralsPostVictimReferralInVictimVictimContact:
    """ 
        Attributes:
            phone (None | str | Unset):
            email (None | str | Unset):
            address (None | str | Unset): Shown to the submitter only, unless shared with the agencies named in
                `address_shared_with`
            address_shared_with (list[str] | Unset): Recipients that may see the address (none by default)
            safe_to_contact (bool | Unset):  Default: False.
     """

    phone: None | str | Unset = UNSET
    email: None | str | Unset = UNSET
    address: None | str | Unset = UNSET
    address_shared_with: list[str] | Unset = UNSET
    safe_to_contact: bool | Unset = False





    def to_dict(self) -> dict[str, Any]:
        phone: None | str | Unset
        if isinstance(self.phone, Unset):
            phone = UNSET
        else:
            phone = self.phone

        email: None | str | Unset
        if isinstance(self.email, Unset):
            email = UNSET
        else:
            email = self.email

        address: None | str | Unset
        if isinstance(self.address, Unset):
            address = UNSET
        else:
            address = self.address

        address_shared_with: list[str] | Unset = UNSET
        if not isinstance(self.address_shared_with, Unset):
            address_shared_with = self.address_shared_with



        safe_to_contact = self.safe_to_contact


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if phone is not UNSET:
            field_dict["phone"] = phone
        if email is not UNSET:
            field_dict["email"] = email
        if address is not UNSET:
            field_dict["address"] = address
        if address_shared_with is not UNSET:
            field_dict["address_shared_with"] = address_shared_with
        if safe_to_contact is not UNSET:
            field_dict["safe_to_contact"] = safe_to_contact

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_phone(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        phone = _parse_phone(d.pop("phone", UNSET))


        def _parse_email(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        email = _parse_email(d.pop("email", UNSET))


        def _parse_address(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        address = _parse_address(d.pop("address", UNSET))


        address_shared_with = cast(list[str], d.pop("address_shared_with", UNSET))


        safe_to_contact = d.pop("safe_to_contact", UNSET)

        submit_v1_referrals_post_victim_referral_in_victim_victim_contact = cls(
            phone=phone,
            email=email,
            address=address,
            address_shared_with=address_shared_with,
            safe_to_contact=safe_to_contact,
        )

        return submit_v1_referrals_post_victim_referral_in_victim_victim_contact

