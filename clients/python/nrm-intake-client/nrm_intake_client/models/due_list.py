from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.due_item import DueItem





T = TypeVar("T", bound="DueList")



@_attrs_define
class DueList:
    """ 
        Attributes:
            now (datetime.datetime): The retention clock (moved by its configured offset)
            until (datetime.datetime):
            items (list[DueItem]):
     """

    now: datetime.datetime
    until: datetime.datetime
    items: list[DueItem]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.due_item import DueItem # noqa: PLC0415
        now = self.now.isoformat()

        until = self.until.isoformat()

        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "now": now,
            "until": until,
            "items": items,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.due_item import DueItem # noqa: PLC0415
        d = dict(src_dict)
        now = datetime.datetime.fromisoformat(d.pop("now"))




        until = datetime.datetime.fromisoformat(d.pop("until"))




        items = []
        _items = d.pop("items")
        for items_item_data in (_items):
            items_item = DueItem.from_dict(items_item_data)



            items.append(items_item)


        due_list = cls(
            now=now,
            until=until,
            items=items,
        )


        due_list.additional_properties = d
        return due_list

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
