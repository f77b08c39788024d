from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.hold_out import HoldOut
  from ..models.identification_status import IdentificationStatus
  from ..models.investigation_status import InvestigationStatus
  from ..models.recipient_status import RecipientStatus





T = TypeVar("T", bound="ReferralStatus")



@_attrs_define
class ReferralStatus:
    """ 
        Attributes:
            id (str):
            reference (str):
            recipients (list[RecipientStatus]):
            identification (IdentificationStatus | None | Unset):
            investigation (InvestigationStatus | None | Unset):
            holds (list[HoldOut] | Unset): Legal holds standing: nothing is erased while there is one
     """

    id: str
    reference: str
    recipients: list[RecipientStatus]
    identification: IdentificationStatus | None | Unset = UNSET
    investigation: InvestigationStatus | None | Unset = UNSET
    holds: list[HoldOut] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.hold_out import HoldOut # noqa: PLC0415
        from ..models.identification_status import IdentificationStatus # noqa: PLC0415
        from ..models.investigation_status import InvestigationStatus # noqa: PLC0415
        from ..models.recipient_status import RecipientStatus # noqa: PLC0415
        id = self.id

        reference = self.reference

        recipients = []
        for recipients_item_data in self.recipients:
            recipients_item = recipients_item_data.to_dict()
            recipients.append(recipients_item)



        identification: dict[str, Any] | None | Unset
        if isinstance(self.identification, Unset):
            identification = UNSET
        elif isinstance(self.identification, IdentificationStatus):
            identification = self.identification.to_dict()
        else:
            identification = self.identification

        investigation: dict[str, Any] | None | Unset
        if isinstance(self.investigation, Unset):
            investigation = UNSET
        elif isinstance(self.investigation, InvestigationStatus):
            investigation = self.investigation.to_dict()
        else:
            investigation = self.investigation

        holds: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.holds, Unset):
            holds = []
            for holds_item_data in self.holds:
                holds_item = holds_item_data.to_dict()
                holds.append(holds_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "reference": reference,
            "recipients": recipients,
        })
        if identification is not UNSET:
            field_dict["identification"] = identification
        if investigation is not UNSET:
            field_dict["investigation"] = investigation
        if holds is not UNSET:
            field_dict["holds"] = holds

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.hold_out import HoldOut # noqa: PLC0415
        from ..models.identification_status import IdentificationStatus # noqa: PLC0415
        from ..models.investigation_status import InvestigationStatus # noqa: PLC0415
        from ..models.recipient_status import RecipientStatus # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        reference = d.pop("reference")

        recipients = []
        _recipients = d.pop("recipients")
        for recipients_item_data in (_recipients):
            recipients_item = RecipientStatus.from_dict(recipients_item_data)



            recipients.append(recipients_item)


        def _parse_identification(data: object) -> IdentificationStatus | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                identification_type_0 = IdentificationStatus.from_dict(data)



                return identification_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(IdentificationStatus | None | Unset, data)

        identification = _parse_identification(d.pop("identification", UNSET))


        def _parse_investigation(data: object) -> InvestigationStatus | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                investigation_type_0 = InvestigationStatus.from_dict(data)



                return investigation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(InvestigationStatus | None | Unset, data)

        investigation = _parse_investigation(d.pop("investigation", UNSET))


        _holds = d.pop("holds", UNSET)
        holds: list[HoldOut] | Unset = UNSET
        if _holds is not UNSET:
            holds = []
            for holds_item_data in _holds:
                holds_item = HoldOut.from_dict(holds_item_data)



                holds.append(holds_item)


        referral_status = cls(
            id=id,
            reference=reference,
            recipients=recipients,
            identification=identification,
            investigation=investigation,
            holds=holds,
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
