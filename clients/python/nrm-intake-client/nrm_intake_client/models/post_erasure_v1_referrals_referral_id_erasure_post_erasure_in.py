from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.post_erasure_v1_referrals_referral_id_erasure_post_erasure_in_erasure_basis import PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis






T = TypeVar("T", bound="PostErasureV1ReferralsReferralIdErasurePostErasureIn")



@_attrs_define
class PostErasureV1ReferralsReferralIdErasurePostErasureIn:
    """ 
        Attributes:
            basis (PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis): Why a referral's data is erased (the
                legal-basis code `referral.erased` carries).
     """

    basis: PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis





    def to_dict(self) -> dict[str, Any]:
        basis = self.basis.value


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "basis": basis,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        basis = PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis(d.pop("basis"))




        post_erasure_v1_referrals_referral_id_erasure_post_erasure_in = cls(
            basis=basis,
        )

        return post_erasure_v1_referrals_referral_id_erasure_post_erasure_in

