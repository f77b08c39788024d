from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.hold_out import HoldOut





T = TypeVar("T", bound="Holds")



@_attrs_define
class Holds:
    """ 
        Attributes:
            id (str):
            reference (str):
            holds (list[HoldOut]):
     """

    id: str
    reference: str
    holds: list[HoldOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.hold_out import HoldOut # noqa: PLC0415
        id = self.id

        reference = self.reference

        holds = []
        for holds_item_data in self.holds:
            holds_item = holds_item_data.to_dict()
            holds.append(holds_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "reference": reference,
            "holds": holds,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.hold_out import HoldOut # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        reference = d.pop("reference")

        holds = []
        _holds = d.pop("holds")
        for holds_item_data in (_holds):
            holds_item = HoldOut.from_dict(holds_item_data)



            holds.append(holds_item)


        holds = cls(
            id=id,
            reference=reference,
            holds=holds,
        )


        holds.additional_properties = d
        return holds

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
