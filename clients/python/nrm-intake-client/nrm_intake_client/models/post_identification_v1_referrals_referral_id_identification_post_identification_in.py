from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.post_identification_v1_referrals_referral_id_identification_post_identification_in_identification_basis import PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis
from ..models.post_identification_v1_referrals_referral_id_identification_post_identification_in_identification_decision import PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision
from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationIn")



@_attrs_define
class PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationIn:
    """ 
        Attributes:
            decision (PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision): A
                decision of the competent authority: the first two end `potential`, the last two
                (conclusive) follow `reasonable_grounds`.
            decided_at (datetime.datetime):
            basis (None | PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis |
                Unset):
     """

    decision: PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision
    decided_at: datetime.datetime
    basis: None | PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        decision = self.decision.value

        decided_at = self.decided_at.isoformat()

        basis: None | str | Unset
        if isinstance(self.basis, Unset):
            basis = UNSET
        elif isinstance(self.basis, PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis):
            basis = self.basis.value
        else:
            basis = self.basis


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "decision": decision,
            "decided_at": decided_at,
        })
        if basis is not UNSET:
            field_dict["basis"] = basis

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        decision = PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision(d.pop("decision"))




        decided_at = datetime.datetime.fromisoformat(d.pop("decided_at"))




        def _parse_basis(data: object) -> None | PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                basis_identification_basis = PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis(data)



                return basis_identification_basis
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis | Unset, data)

        basis = _parse_basis(d.pop("basis", UNSET))


        post_identification_v1_referrals_referral_id_identification_post_identification_in = cls(
            decision=decision,
            decided_at=decided_at,
            basis=basis,
        )

        return post_identification_v1_referrals_referral_id_identification_post_identification_in

