from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="ReferralSummary")



@_attrs_define
class ReferralSummary:
    """ 
        Attributes:
            id (str):
            reference (str):
            kind (str):
            status (str):
            urgency (str):
            region (str):
            exploitation (list[str]):
            submitted_by (str):
            submitted_at (datetime.datetime):
     """

    id: str
    reference: str
    kind: str
    status: str
    urgency: str
    region: str
    exploitation: list[str]
    submitted_by: str
    submitted_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        id = self.id

        reference = self.reference

        kind = self.kind

        status = self.status

        urgency = self.urgency

        region = self.region

        exploitation = self.exploitation



        submitted_by = self.submitted_by

        submitted_at = self.submitted_at.isoformat()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "reference": reference,
            "kind": kind,
            "status": status,
            "urgency": urgency,
            "region": region,
            "exploitation": exploitation,
            "submitted_by": submitted_by,
            "submitted_at": submitted_at,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        reference = d.pop("reference")

        kind = d.pop("kind")

        status = d.pop("status")

        urgency = d.pop("urgency")

        region = d.pop("region")

        exploitation = cast(list[str], d.pop("exploitation"))


        submitted_by = d.pop("submitted_by")

        submitted_at = datetime.datetime.fromisoformat(d.pop("submitted_at"))




        referral_summary = cls(
            id=id,
            reference=reference,
            kind=kind,
            status=status,
            urgency=urgency,
            region=region,
            exploitation=exploitation,
            submitted_by=submitted_by,
            submitted_at=submitted_at,
        )


        referral_summary.additional_properties = d
        return referral_summary

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
