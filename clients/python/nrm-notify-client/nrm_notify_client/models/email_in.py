from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="EmailIn")



@_attrs_define
class EmailIn:
    """ 
        Attributes:
            addresses (list[str]):
            language (str | Unset): ISO 639-1 language code
     """

    addresses: list[str]
    language: str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        addresses = self.addresses



        language = self.language


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "addresses": addresses,
        })
        if language is not UNSET:
            field_dict["language"] = language

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        addresses = cast(list[str], d.pop("addresses"))


        language = d.pop("language", UNSET)

        email_in = cls(
            addresses=addresses,
            language=language,
        )

        return email_in

