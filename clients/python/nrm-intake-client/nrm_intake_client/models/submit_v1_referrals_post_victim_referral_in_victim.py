from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.submit_v1_referrals_post_victim_referral_in_victim_age_basis import SubmitV1ReferralsPostVictimReferralInVictimAgeBasis
from ..models.submit_v1_referrals_post_victim_referral_in_victim_need import SubmitV1ReferralsPostVictimReferralInVictimNeed
from ..models.submit_v1_referrals_post_victim_referral_in_victim_sex import SubmitV1ReferralsPostVictimReferralInVictimSex
from ..types import UNSET, Unset
from typing import cast
from typing import Literal, cast

if TYPE_CHECKING:
  from ..models.submit_v1_referrals_post_victim_referral_in_victim_safety import SubmitV1ReferralsPostVictimReferralInVictimSafety
  from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_contact import SubmitV1ReferralsPostVictimReferralInVictimVictimContact
  from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_identity import SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity





T = TypeVar("T", bound="SubmitV1ReferralsPostVictimReferralInVictim")



@_attrs_define
class SubmitV1ReferralsPostVictimReferralInVictim:
    """ 
        Attributes:
            status (Literal['potential'] | Unset): Every referral starts as a potential victim: only the competent authority
                decides more, with `POST /v1/referrals/{id}/identification` Default: 'potential'.
            age (int | None | Unset): Age when the referral was recorded; follows from `identity.date_of_birth` when that is
                given (an age that disagrees with it is refused)
            age_basis (None | SubmitV1ReferralsPostVictimReferralInVictimAgeBasis | Unset): How the age is known; only
                `documented` rebuts `appears_minor`
            appears_minor (bool | Unset): There are reasons to believe the victim is a child: presumed a minor unless
                documented to be 18 or over (CoE Convention art. 10(3)) Default: False.
            sex (SubmitV1ReferralsPostVictimReferralInVictimSex | Unset):
            citizenship (None | str | Unset):
            languages (list[str] | Unset):
            needs (list[SubmitV1ReferralsPostVictimReferralInVictimNeed] | Unset):
            identity (None | SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity | Unset):
            contact (None | SubmitV1ReferralsPostVictimReferralInVictimVictimContact | Unset):
            safety (None | SubmitV1ReferralsPostVictimReferralInVictimSafety | Unset):
     """

    status: Literal['potential'] | Unset = 'potential'
    age: int | None | Unset = UNSET
    age_basis: None | SubmitV1ReferralsPostVictimReferralInVictimAgeBasis | Unset = UNSET
    appears_minor: bool | Unset = False
    sex: SubmitV1ReferralsPostVictimReferralInVictimSex | Unset = UNSET
    citizenship: None | str | Unset = UNSET
    languages: list[str] | Unset = UNSET
    needs: list[SubmitV1ReferralsPostVictimReferralInVictimNeed] | Unset = UNSET
    identity: None | SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity | Unset = UNSET
    contact: None | SubmitV1ReferralsPostVictimReferralInVictimVictimContact | Unset = UNSET
    safety: None | SubmitV1ReferralsPostVictimReferralInVictimSafety | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_safety import SubmitV1ReferralsPostVictimReferralInVictimSafety # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_contact import SubmitV1ReferralsPostVictimReferralInVictimVictimContact # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_identity import SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity # noqa: PLC0415
        status = self.status

        age: int | None | Unset
        if isinstance(self.age, Unset):
            age = UNSET
        else:
            age = self.age

        age_basis: None | str | Unset
        if isinstance(self.age_basis, Unset):
            age_basis = UNSET
        elif isinstance(self.age_basis, SubmitV1ReferralsPostVictimReferralInVictimAgeBasis):
            age_basis = self.age_basis.value
        else:
            age_basis = self.age_basis

        appears_minor = self.appears_minor

        sex: str | Unset = UNSET
        if not isinstance(self.sex, Unset):
            sex = self.sex.value


        citizenship: None | str | Unset
        if isinstance(self.citizenship, Unset):
            citizenship = UNSET
        else:
            citizenship = self.citizenship

        languages: list[str] | Unset = UNSET
        if not isinstance(self.languages, Unset):
            languages = self.languages



        needs: list[str] | Unset = UNSET
        if not isinstance(self.needs, Unset):
            needs = []
            for needs_item_data in self.needs:
                needs_item = needs_item_data.value
                needs.append(needs_item)



        identity: dict[str, Any] | None | Unset
        if isinstance(self.identity, Unset):
            identity = UNSET
        elif isinstance(self.identity, SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity):
            identity = self.identity.to_dict()
        else:
            identity = self.identity

        contact: dict[str, Any] | None | Unset
        if isinstance(self.contact, Unset):
            contact = UNSET
        elif isinstance(self.contact, SubmitV1ReferralsPostVictimReferralInVictimVictimContact):
            contact = self.contact.to_dict()
        else:
            contact = self.contact

        safety: dict[str, Any] | None | Unset
        if isinstance(self.safety, Unset):
            safety = UNSET
        elif isinstance(self.safety, SubmitV1ReferralsPostVictimReferralInVictimSafety):
            safety = self.safety.to_dict()
        else:
            safety = self.safety


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if status is not UNSET:
            field_dict["status"] = status
        if age is not UNSET:
            field_dict["age"] = age
        if age_basis is not UNSET:
            field_dict["age_basis"] = age_basis
        if appears_minor is not UNSET:
            field_dict["appears_minor"] = appears_minor
        if sex is not UNSET:
            field_dict["sex"] = sex
        if citizenship is not UNSET:
            field_dict["citizenship"] = citizenship
        if languages is not UNSET:
            field_dict["languages"] = languages
        if needs is not UNSET:
            field_dict["needs"] = needs
        if identity is not UNSET:
            field_dict["identity"] = identity
        if contact is not UNSET:
            field_dict["contact"] = contact
        if safety is not UNSET:
            field_dict["safety"] = safety

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_safety import SubmitV1ReferralsPostVictimReferralInVictimSafety # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_contact import SubmitV1ReferralsPostVictimReferralInVictimVictimContact # noqa: PLC0415
        from ..models.submit_v1_referrals_post_victim_referral_in_victim_victim_identity import SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity # noqa: PLC0415
        d = dict(src_dict)
        status = cast(Literal['potential'] | Unset , d.pop("status", UNSET))
        if status != 'potential'and not isinstance(status, Unset):
            raise ValueError(f"status must match const 'potential', got '{status}'")

        def _parse_age(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        age = _parse_age(d.pop("age", UNSET))


        def _parse_age_basis(data: object) -> None | SubmitV1ReferralsPostVictimReferralInVictimAgeBasis | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                age_basis_age_basis = SubmitV1ReferralsPostVictimReferralInVictimAgeBasis(data)



                return age_basis_age_basis
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitV1ReferralsPostVictimReferralInVictimAgeBasis | Unset, data)

        age_basis = _parse_age_basis(d.pop("age_basis", UNSET))


        appears_minor = d.pop("appears_minor", UNSET)

        _sex = d.pop("sex", UNSET)
        sex: SubmitV1ReferralsPostVictimReferralInVictimSex | Unset
        if isinstance(_sex,  Unset):
            sex = UNSET
        else:
            sex = SubmitV1ReferralsPostVictimReferralInVictimSex(_sex)




        def _parse_citizenship(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        citizenship = _parse_citizenship(d.pop("citizenship", UNSET))


        languages = cast(list[str], d.pop("languages", UNSET))


        _needs = d.pop("needs", UNSET)
        needs: list[SubmitV1ReferralsPostVictimReferralInVictimNeed] | Unset = UNSET
        if _needs is not UNSET:
            needs = []
            for needs_item_data in _needs:
                needs_item = SubmitV1ReferralsPostVictimReferralInVictimNeed(needs_item_data)



                needs.append(needs_item)


        def _parse_identity(data: object) -> None | SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                identity_victim_identity = SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity.from_dict(data)



                return identity_victim_identity
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity | Unset, data)

        identity = _parse_identity(d.pop("identity", UNSET))


        def _parse_contact(data: object) -> None | SubmitV1ReferralsPostVictimReferralInVictimVictimContact | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                contact_victim_contact = SubmitV1ReferralsPostVictimReferralInVictimVictimContact.from_dict(data)



                return contact_victim_contact
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitV1ReferralsPostVictimReferralInVictimVictimContact | Unset, data)

        contact = _parse_contact(d.pop("contact", UNSET))


        def _parse_safety(data: object) -> None | SubmitV1ReferralsPostVictimReferralInVictimSafety | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                safety_safety = SubmitV1ReferralsPostVictimReferralInVictimSafety.from_dict(data)



                return safety_safety
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitV1ReferralsPostVictimReferralInVictimSafety | Unset, data)

        safety = _parse_safety(d.pop("safety", UNSET))


        submit_v1_referrals_post_victim_referral_in_victim = cls(
            status=status,
            age=age,
            age_basis=age_basis,
            appears_minor=appears_minor,
            sex=sex,
            citizenship=citizenship,
            languages=languages,
            needs=needs,
            identity=identity,
            contact=contact,
            safety=safety,
        )

        return submit_v1_referrals_post_victim_referral_in_victim

