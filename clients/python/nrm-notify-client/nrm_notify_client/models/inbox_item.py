from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.delivery_status import DeliveryStatus
from ..models.urgency import Urgency
from ..types import UNSET, Unset
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
            urgency (None | Urgency): null once the referral is erased
            exploitation (list[str]): empty once the referral is erased
            region (None | str): null once the referral is erased
            kind (None | str): null once the referral is erased
            minor (bool | None): null once the referral is erased
            decline_reason (None | str):
            updated_at (datetime.datetime):
            erased_at (datetime.datetime | None | Unset): When the referral was erased (status `erased`): the delivery keeps
                its routing facts only
            erasure_acknowledged_at (datetime.datetime | None | Unset): When the agency acknowledged the erasure notice;
                null on an erased delivery: it needs the agency's acknowledgement (`POST …/acknowledge`)
     """

    delivery_id: str
    referral_id: str
    reference: str
    agency: str
    status: DeliveryStatus
    disclosure: str
    deadline: datetime.datetime | None
    rule: str
    urgency: None | Urgency
    exploitation: list[str]
    region: None | str
    kind: None | str
    minor: bool | None
    decline_reason: None | str
    updated_at: datetime.datetime
    erased_at: datetime.datetime | None | Unset = UNSET
    erasure_acknowledged_at: datetime.datetime | None | Unset = UNSET
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

        urgency: None | str
        if isinstance(self.urgency, Urgency):
            urgency = self.urgency.value
        else:
            urgency = self.urgency

        exploitation = self.exploitation



        region: None | str
        region = self.region

        kind: None | str
        kind = self.kind

        minor: bool | None
        minor = self.minor

        decline_reason: None | str
        decline_reason = self.decline_reason

        updated_at = self.updated_at.isoformat()

        erased_at: None | str | Unset
        if isinstance(self.erased_at, Unset):
            erased_at = UNSET
        elif isinstance(self.erased_at, datetime.datetime):
            erased_at = self.erased_at.isoformat()
        else:
            erased_at = self.erased_at

        erasure_acknowledged_at: None | str | Unset
        if isinstance(self.erasure_acknowledged_at, Unset):
            erasure_acknowledged_at = UNSET
        elif isinstance(self.erasure_acknowledged_at, datetime.datetime):
            erasure_acknowledged_at = self.erasure_acknowledged_at.isoformat()
        else:
            erasure_acknowledged_at = self.erasure_acknowledged_at


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
        if erased_at is not UNSET:
            field_dict["erased_at"] = erased_at
        if erasure_acknowledged_at is not UNSET:
            field_dict["erasure_acknowledged_at"] = erasure_acknowledged_at

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

        def _parse_urgency(data: object) -> None | Urgency:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                urgency_type_0 = Urgency(data)



                return urgency_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Urgency, data)

        urgency = _parse_urgency(d.pop("urgency"))


        exploitation = cast(list[str], d.pop("exploitation"))


        def _parse_region(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        region = _parse_region(d.pop("region"))


        def _parse_kind(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        kind = _parse_kind(d.pop("kind"))


        def _parse_minor(data: object) -> bool | None:
            if data is None:
                return data
            return cast(bool | None, data)

        minor = _parse_minor(d.pop("minor"))


        def _parse_decline_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        decline_reason = _parse_decline_reason(d.pop("decline_reason"))


        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        def _parse_erased_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                erased_at_type_0 = datetime.datetime.fromisoformat(data)



                return erased_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        erased_at = _parse_erased_at(d.pop("erased_at", UNSET))


        def _parse_erasure_acknowledged_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                erasure_acknowledged_at_type_0 = datetime.datetime.fromisoformat(data)



                return erasure_acknowledged_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        erasure_acknowledged_at = _parse_erasure_acknowledged_at(d.pop("erasure_acknowledged_at", UNSET))


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
            erased_at=erased_at,
            erasure_acknowledged_at=erasure_acknowledged_at,
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
