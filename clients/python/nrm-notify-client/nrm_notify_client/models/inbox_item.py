from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.delivery_status import DeliveryStatus
from ..models.urgency import Urgency
from typing import cast
import datetime






T = TypeVar("T", bound="InboxItem")



@_attrs_define
class InboxItem:
    """ 
        Attributes:
            delivery_id (str):
            referral_id (str):
            reference (str):
            agency (str):
            status (DeliveryStatus):
            disclosure (str):
            deadline (datetime.datetime | None):
            rule (str):
            urgency (Urgency):
            exploitation (list[str]):
            region (str):
            kind (str):
            minor (bool):
            decline_reason (None | str):
            updated_at (datetime.datetime):
     """

    delivery_id: str
    referral_id: str
    reference: str
    agency: str
    status: DeliveryStatus
    disclosure: str
    deadline: datetime.datetime | None
    rule: str
    urgency: Urgency
    exploitation: list[str]
    region: str
    kind: str
    minor: bool
    decline_reason: None | str
    updated_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        delivery_id = self.delivery_id

        referral_id = self.referral_id

        reference = self.reference

        agency = self.agency

        status = self.status.value

        disclosure = self.disclosure

        deadline: None | str
        if isinstance(self.deadline, datetime.datetime):
            deadline = self.deadline.isoformat()
        else:
            deadline = self.deadline

        rule = self.rule

        urgency = self.urgency.value

        exploitation = self.exploitation



        region = self.region

        kind = self.kind

        minor = self.minor

        decline_reason: None | str
        decline_reason = self.decline_reason

        updated_at = self.updated_at.isoformat()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "delivery_id": delivery_id,
            "referral_id": referral_id,
            "reference": reference,
            "agency": agency,
            "status": status,
            "disclosure": disclosure,
            "deadline": deadline,
            "rule": rule,
            "urgency": urgency,
            "exploitation": exploitation,
            "region": region,
            "kind": kind,
            "minor": minor,
            "decline_reason": decline_reason,
            "updated_at": updated_at,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        delivery_id = d.pop("delivery_id")

        referral_id = d.pop("referral_id")

        reference = d.pop("reference")

        agency = d.pop("agency")

        status = DeliveryStatus(d.pop("status"))




        disclosure = d.pop("disclosure")

        def _parse_deadline(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                deadline_type_0 = datetime.datetime.fromisoformat(data)



                return deadline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        deadline = _parse_deadline(d.pop("deadline"))


        rule = d.pop("rule")

        urgency = Urgency(d.pop("urgency"))




        exploitation = cast(list[str], d.pop("exploitation"))


        region = d.pop("region")

        kind = d.pop("kind")

        minor = d.pop("minor")

        def _parse_decline_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        decline_reason = _parse_decline_reason(d.pop("decline_reason"))


        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        inbox_item = cls(
            delivery_id=delivery_id,
            referral_id=referral_id,
            reference=reference,
            agency=agency,
            status=status,
            disclosure=disclosure,
            deadline=deadline,
            rule=rule,
            urgency=urgency,
            exploitation=exploitation,
            region=region,
            kind=kind,
            minor=minor,
            decline_reason=decline_reason,
            updated_at=updated_at,
        )


        inbox_item.additional_properties = d
        return inbox_item

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
