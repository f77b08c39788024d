from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="RunningClock")



@_attrs_define
class RunningClock:
    """ 
        Attributes:
            status (str):
            reasonable_grounds_due (datetime.datetime):
            reflection_ends (datetime.datetime | None):
            decided_at (datetime.datetime | None):
            authority (str):
            overdue (bool): No reasonable-grounds decision by its due time yet
            referral_id (str):
            reference (str):
            basis (None | str | Unset):
     """

    status: str
    reasonable_grounds_due: datetime.datetime
    reflection_ends: datetime.datetime | None
    decided_at: datetime.datetime | None
    authority: str
    overdue: bool
    referral_id: str
    reference: str
    basis: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        status = self.status

        reasonable_grounds_due = self.reasonable_grounds_due.isoformat()

        reflection_ends: None | str
        if isinstance(self.reflection_ends, datetime.datetime):
            reflection_ends = self.reflection_ends.isoformat()
        else:
            reflection_ends = self.reflection_ends

        decided_at: None | str
        if isinstance(self.decided_at, datetime.datetime):
            decided_at = self.decided_at.isoformat()
        else:
            decided_at = self.decided_at

        authority = self.authority

        overdue = self.overdue

        referral_id = self.referral_id

        reference = self.reference

        basis: None | str | Unset
        if isinstance(self.basis, Unset):
            basis = UNSET
        else:
            basis = self.basis


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "status": status,
            "reasonable_grounds_due": reasonable_grounds_due,
            "reflection_ends": reflection_ends,
            "decided_at": decided_at,
            "authority": authority,
            "overdue": overdue,
            "referral_id": referral_id,
            "reference": reference,
        })
        if basis is not UNSET:
            field_dict["basis"] = basis

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = d.pop("status")

        reasonable_grounds_due = datetime.datetime.fromisoformat(d.pop("reasonable_grounds_due"))




        def _parse_reflection_ends(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                reflection_ends_type_0 = datetime.datetime.fromisoformat(data)



                return reflection_ends_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        reflection_ends = _parse_reflection_ends(d.pop("reflection_ends"))


        def _parse_decided_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                decided_at_type_0 = datetime.datetime.fromisoformat(data)



                return decided_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        decided_at = _parse_decided_at(d.pop("decided_at"))


        authority = d.pop("authority")

        overdue = d.pop("overdue")

        referral_id = d.pop("referral_id")

        reference = d.pop("reference")

        def _parse_basis(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        basis = _parse_basis(d.pop("basis", UNSET))


        running_clock = cls(
            status=status,
            reasonable_grounds_due=reasonable_grounds_due,
            reflection_ends=reflection_ends,
            decided_at=decided_at,
            authority=authority,
            overdue=overdue,
            referral_id=referral_id,
            reference=reference,
            basis=basis,
        )


        running_clock.additional_properties = d
        return running_clock

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
