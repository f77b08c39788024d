from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="InvestigationStatus")



@_attrs_define
class InvestigationStatus:
    """ 
        Attributes:
            opened (bool):
            date (datetime.date):
            agency (str):
     """

    opened: bool
    date: datetime.date
    agency: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        opened = self.opened

        date = self.date.isoformat()

        agency = self.agency


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "opened": opened,
            "date": date,
            "agency": agency,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        opened = d.pop("opened")

        date = datetime.date.fromisoformat(d.pop("date"))




        agency = d.pop("agency")

        investigation_status = cls(
            opened=opened,
            date=date,
            agency=agency,
        )


        investigation_status.additional_properties = d
        return investigation_status

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
