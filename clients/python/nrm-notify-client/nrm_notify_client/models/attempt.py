from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="Attempt")



@_attrs_define
class Attempt:
    """ 
        Attributes:
            dispatch_id (str):
            attempted_at (datetime.datetime):
            ok (bool):
            status_code (int | None):
            error (None | str):
            duration_ms (int):
     """

    dispatch_id: str
    attempted_at: datetime.datetime
    ok: bool
    status_code: int | None
    error: None | str
    duration_ms: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        dispatch_id = self.dispatch_id

        attempted_at = self.attempted_at.isoformat()

        ok = self.ok

        status_code: int | None
        status_code = self.status_code

        error: None | str
        error = self.error

        duration_ms = self.duration_ms


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "dispatch_id": dispatch_id,
            "attempted_at": attempted_at,
            "ok": ok,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        dispatch_id = d.pop("dispatch_id")

        attempted_at = datetime.datetime.fromisoformat(d.pop("attempted_at"))




        ok = d.pop("ok")

        def _parse_status_code(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        status_code = _parse_status_code(d.pop("status_code"))


        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))


        duration_ms = d.pop("duration_ms")

        attempt = cls(
            dispatch_id=dispatch_id,
            attempted_at=attempted_at,
            ok=ok,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )


        attempt.additional_properties = d
        return attempt

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
