from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.erasure_basis import ErasureBasis
from typing import cast
import datetime






T = TypeVar("T", bound="PendingErasure")



@_attrs_define
class PendingErasure:
    """ 
        Attributes:
            referral_id (str):
            reference (str):
            basis (ErasureBasis): Why a referral's data is erased (the legal-basis code `referral.erased` carries).
            requested_at (datetime.datetime):
            requested_by (str): The requesting agency
            requested_by_actor (str): Who asked: the person's username, or the client id of a system
            held (bool): A legal hold stands: the approval is refused until lifted
     """

    referral_id: str
    reference: str
    basis: ErasureBasis
    requested_at: datetime.datetime
    requested_by: str
    requested_by_actor: str
    held: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        referral_id = self.referral_id

        reference = self.reference

        basis = self.basis.value

        requested_at = self.requested_at.isoformat()

        requested_by = self.requested_by

        requested_by_actor = self.requested_by_actor

        held = self.held


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "referral_id": referral_id,
            "reference": reference,
            "basis": basis,
            "requested_at": requested_at,
            "requested_by": requested_by,
            "requested_by_actor": requested_by_actor,
            "held": held,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        referral_id = d.pop("referral_id")

        reference = d.pop("reference")

        basis = ErasureBasis(d.pop("basis"))




        requested_at = datetime.datetime.fromisoformat(d.pop("requested_at"))




        requested_by = d.pop("requested_by")

        requested_by_actor = d.pop("requested_by_actor")

        held = d.pop("held")

        pending_erasure = cls(
            referral_id=referral_id,
            reference=reference,
            basis=basis,
            requested_at=requested_at,
            requested_by=requested_by,
            requested_by_actor=requested_by_actor,
            held=held,
        )


        pending_erasure.additional_properties = d
        return pending_erasure

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
