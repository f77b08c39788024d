from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.recipient_status import RecipientStatus





T = TypeVar("T", bound="ReferralStatus")



@_attrs_define
class ReferralStatus:
    """ 
        Attributes:
            id (str):
            reference (str):
            recipients (list[RecipientStatus]):
     """

    id: str
    reference: str
    recipients: list[RecipientStatus]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.recipient_status import RecipientStatus # noqa: PLC0415
        id = self.id

        reference = self.reference

        recipients = []
        for recipients_item_data in self.recipients:
            recipients_item = recipients_item_data.to_dict()
            recipients.append(recipients_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "reference": reference,
            "recipients": recipients,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.recipient_status import RecipientStatus # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        reference = d.pop("reference")

        recipients = []
        _recipients = d.pop("recipients")
        for recipients_item_data in (_recipients):
            recipients_item = RecipientStatus.from_dict(recipients_item_data)



            recipients.append(recipients_item)


        referral_status = cls(
            id=id,
            reference=reference,
            recipients=recipients,
        )


        referral_status.additional_properties = d
        return referral_status

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
