from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="DueItem")



@_attrs_define
class DueItem:
    """ 
        Attributes:
            referral_id (str):
            reference (str):
            outcome (str): The outcome whose period decides the due date
            reached_at (datetime.datetime):
            due (datetime.datetime):
            held (bool): A legal hold stands: the sweep leaves it
            minor (bool):
     """

    referral_id: str
    reference: str
    outcome: str
    reached_at: datetime.datetime
    due: datetime.datetime
    held: bool
    minor: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        referral_id = self.referral_id

        reference = self.reference

        outcome = self.outcome

        reached_at = self.reached_at.isoformat()

        due = self.due.isoformat()

        held = self.held

        minor = self.minor


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "referral_id": referral_id,
            "reference": reference,
            "outcome": outcome,
            "reached_at": reached_at,
            "due": due,
            "held": held,
            "minor": minor,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        referral_id = d.pop("referral_id")

        reference = d.pop("reference")

        outcome = d.pop("outcome")

        reached_at = datetime.datetime.fromisoformat(d.pop("reached_at"))




        due = datetime.datetime.fromisoformat(d.pop("due"))




        held = d.pop("held")

        minor = d.pop("minor")

        due_item = cls(
            referral_id=referral_id,
            reference=reference,
            outcome=outcome,
            reached_at=reached_at,
            due=due,
            held=held,
            minor=minor,
        )


        due_item.additional_properties = d
        return due_item

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
