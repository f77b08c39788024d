from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.consent_out_consent import ConsentOutConsent





T = TypeVar("T", bound="ConsentOut")



@_attrs_define
class ConsentOut:
    """ 
        Attributes:
            id (str):
            consent (ConsentOutConsent):
     """

    id: str
    consent: ConsentOutConsent
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.consent_out_consent import ConsentOutConsent # noqa: PLC0415
        id = self.id

        consent = self.consent.to_dict()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "consent": consent,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.consent_out_consent import ConsentOutConsent # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        consent = ConsentOutConsent.from_dict(d.pop("consent"))




        consent_out = cls(
            id=id,
            consent=consent,
        )


        consent_out.additional_properties = d
        return consent_out

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
