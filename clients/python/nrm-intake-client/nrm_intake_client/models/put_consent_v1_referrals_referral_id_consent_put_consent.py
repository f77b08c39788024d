from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.put_consent_v1_referrals_referral_id_consent_put_consent_consent_form import PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm
from ..models.put_consent_v1_referrals_referral_id_consent_put_consent_consent_given_by import PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy
from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="PutConsentV1ReferralsReferralIdConsentPutConsent")



@_attrs_define
class PutConsentV1ReferralsReferralIdConsentPutConsent:
    """ 
        Attributes:
            services (bool): Referral to assistance services (shelter, medical, ...)
            law_enforcement (bool): Identity may be shared with law enforcement
            statistics (bool): Anonymised data may be used for statistics
            given_by (PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy):
            recorded_at (datetime.datetime):
            guardian_appointment (None | str | Unset): The act appointing the guardian (authority, number, date); required
                when `given_by` is `guardian`
            language (None | str | Unset): Language the consent was explained and given in (BCP 47)
            interpreter (bool | None | Unset): An interpreter was present
            form (None | PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm | Unset): `oral` or `written`
     """

    services: bool
    law_enforcement: bool
    statistics: bool
    given_by: PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy
    recorded_at: datetime.datetime
    guardian_appointment: None | str | Unset = UNSET
    language: None | str | Unset = UNSET
    interpreter: bool | None | Unset = UNSET
    form: None | PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        services = self.services

        law_enforcement = self.law_enforcement

        statistics = self.statistics

        given_by = self.given_by.value

        recorded_at = self.recorded_at.isoformat()

        guardian_appointment: None | str | Unset
        if isinstance(self.guardian_appointment, Unset):
            guardian_appointment = UNSET
        else:
            guardian_appointment = self.guardian_appointment

        language: None | str | Unset
        if isinstance(self.language, Unset):
            language = UNSET
        else:
            language = self.language

        interpreter: bool | None | Unset
        if isinstance(self.interpreter, Unset):
            interpreter = UNSET
        else:
            interpreter = self.interpreter

        form: None | str | Unset
        if isinstance(self.form, Unset):
            form = UNSET
        elif isinstance(self.form, PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm):
            form = self.form.value
        else:
            form = self.form


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "services": services,
            "law_enforcement": law_enforcement,
            "statistics": statistics,
            "given_by": given_by,
            "recorded_at": recorded_at,
        })
        if guardian_appointment is not UNSET:
            field_dict["guardian_appointment"] = guardian_appointment
        if language is not UNSET:
            field_dict["language"] = language
        if interpreter is not UNSET:
            field_dict["interpreter"] = interpreter
        if form is not UNSET:
            field_dict["form"] = form

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        services = d.pop("services")

        law_enforcement = d.pop("law_enforcement")

        statistics = d.pop("statistics")

        given_by = PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy(d.pop("given_by"))




        recorded_at = datetime.datetime.fromisoformat(d.pop("recorded_at"))




        def _parse_guardian_appointment(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        guardian_appointment = _parse_guardian_appointment(d.pop("guardian_appointment", UNSET))


        def _parse_language(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        language = _parse_language(d.pop("language", UNSET))


        def _parse_interpreter(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        interpreter = _parse_interpreter(d.pop("interpreter", UNSET))


        def _parse_form(data: object) -> None | PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                form_consent_form = PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm(data)



                return form_consent_form
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm | Unset, data)

        form = _parse_form(d.pop("form", UNSET))


        put_consent_v1_referrals_referral_id_consent_put_consent = cls(
            services=services,
            law_enforcement=law_enforcement,
            statistics=statistics,
            given_by=given_by,
            recorded_at=recorded_at,
            guardian_appointment=guardian_appointment,
            language=language,
            interpreter=interpreter,
            form=form,
        )

        return put_consent_v1_referrals_referral_id_consent_put_consent

