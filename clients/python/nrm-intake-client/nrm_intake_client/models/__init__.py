""" Contains all the data models used in inputs/outputs """

from .configured_agency_id import ConfiguredAgencyId
from .consent_out import ConsentOut
from .consent_out_consent import ConsentOutConsent
from .due_item import DueItem
from .due_list import DueList
from .erasure_basis import ErasureBasis
from .erasure_out import ErasureOut
from .erasure_out_status import ErasureOutStatus
from .get_referral_v1_referrals_referral_id_get_response_get_referral_v1_referrals_referral_id_get import GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet
from .health import Health
from .hold_out import HoldOut
from .holds import Holds
from .identification_status import IdentificationStatus
from .implicated_out import ImplicatedOut
from .investigation_status import InvestigationStatus
from .pending_erasure import PendingErasure
from .pending_erasures import PendingErasures
from .post_erasure_v1_referrals_referral_id_erasure_post_erasure_in import PostErasureV1ReferralsReferralIdErasurePostErasureIn
from .post_erasure_v1_referrals_referral_id_erasure_post_erasure_in_erasure_basis import PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis
from .post_identification_v1_referrals_referral_id_identification_post_identification_in import PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationIn
from .post_identification_v1_referrals_referral_id_identification_post_identification_in_identification_basis import PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis
from .post_identification_v1_referrals_referral_id_identification_post_identification_in_identification_decision import PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision
from .post_investigation_v1_referrals_referral_id_investigation_post_investigation_in import PostInvestigationV1ReferralsReferralIdInvestigationPostInvestigationIn
from .post_recusal_v1_referrals_referral_id_recusal_post_recusal_in import PostRecusalV1ReferralsReferralIdRecusalPostRecusalIn
from .problem import Problem
from .problem_errors_item import ProblemErrorsItem
from .put_consent_v1_referrals_referral_id_consent_put_consent import PutConsentV1ReferralsReferralIdConsentPutConsent
from .put_consent_v1_referrals_referral_id_consent_put_consent_consent_form import PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm
from .put_consent_v1_referrals_referral_id_consent_put_consent_consent_given_by import PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy
from .put_implicated_v1_referrals_referral_id_implicated_put_implicated_in import PutImplicatedV1ReferralsReferralIdImplicatedPutImplicatedIn
from .put_safety_v1_referrals_referral_id_safety_put_safety import PutSafetyV1ReferralsReferralIdSafetyPutSafety
from .put_safety_v1_referrals_referral_id_safety_put_safety_risk_level import PutSafetyV1ReferralsReferralIdSafetyPutSafetyRiskLevel
from .put_safety_v1_referrals_referral_id_safety_put_safety_safe_channel import PutSafetyV1ReferralsReferralIdSafetyPutSafetySafeChannel
from .readiness import Readiness
from .readiness_failed import ReadinessFailed
from .readiness_status import ReadinessStatus
from .recipient_status import RecipientStatus
from .referral_page import ReferralPage
from .referral_status import ReferralStatus
from .referral_summary import ReferralSummary
from .running_clock import RunningClock
from .running_clocks import RunningClocks
from .safety_out import SafetyOut
from .safety_out_safety import SafetyOutSafety
from .submit_v1_referrals_post_tip_in import SubmitV1ReferralsPostTipIn
from .submit_v1_referrals_post_tip_in_exploitation import SubmitV1ReferralsPostTipInExploitation
from .submit_v1_referrals_post_tip_in_tip_source import SubmitV1ReferralsPostTipInTipSource
from .submit_v1_referrals_post_tip_in_urgency import SubmitV1ReferralsPostTipInUrgency
from .submit_v1_referrals_post_victim_referral_in import SubmitV1ReferralsPostVictimReferralIn
from .submit_v1_referrals_post_victim_referral_in_consent import SubmitV1ReferralsPostVictimReferralInConsent
from .submit_v1_referrals_post_victim_referral_in_consent_consent_form import SubmitV1ReferralsPostVictimReferralInConsentConsentForm
from .submit_v1_referrals_post_victim_referral_in_consent_consent_given_by import SubmitV1ReferralsPostVictimReferralInConsentConsentGivenBy
from .submit_v1_referrals_post_victim_referral_in_exploitation import SubmitV1ReferralsPostVictimReferralInExploitation
from .submit_v1_referrals_post_victim_referral_in_urgency import SubmitV1ReferralsPostVictimReferralInUrgency
from .submit_v1_referrals_post_victim_referral_in_victim import SubmitV1ReferralsPostVictimReferralInVictim
from .submit_v1_referrals_post_victim_referral_in_victim_age_basis import SubmitV1ReferralsPostVictimReferralInVictimAgeBasis
from .submit_v1_referrals_post_victim_referral_in_victim_need import SubmitV1ReferralsPostVictimReferralInVictimNeed
from .submit_v1_referrals_post_victim_referral_in_victim_safety import SubmitV1ReferralsPostVictimReferralInVictimSafety
from .submit_v1_referrals_post_victim_referral_in_victim_safety_risk_level import SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel
from .submit_v1_referrals_post_victim_referral_in_victim_safety_safe_channel import SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel
from .submit_v1_referrals_post_victim_referral_in_victim_sex import SubmitV1ReferralsPostVictimReferralInVictimSex
from .submit_v1_referrals_post_victim_referral_in_victim_victim_contact import SubmitV1ReferralsPostVictimReferralInVictimVictimContact
from .submit_v1_referrals_post_victim_referral_in_victim_victim_identity import SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity
from .submitted import Submitted
from .urgency import Urgency

__all__ = (
    "ConfiguredAgencyId",
    "ConsentOut",
    "ConsentOutConsent",
    "DueItem",
    "DueList",
    "ErasureBasis",
    "ErasureOut",
    "ErasureOutStatus",
    "GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet",
    "Health",
    "HoldOut",
    "Holds",
    "IdentificationStatus",
    "ImplicatedOut",
    "InvestigationStatus",
    "PendingErasure",
    "PendingErasures",
    "PostErasureV1ReferralsReferralIdErasurePostErasureIn",
    "PostErasureV1ReferralsReferralIdErasurePostErasureInErasureBasis",
    "PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationIn",
    "PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis",
    "PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision",
    "PostInvestigationV1ReferralsReferralIdInvestigationPostInvestigationIn",
    "PostRecusalV1ReferralsReferralIdRecusalPostRecusalIn",
    "Problem",
    "ProblemErrorsItem",
    "PutConsentV1ReferralsReferralIdConsentPutConsent",
    "PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm",
    "PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy",
    "PutImplicatedV1ReferralsReferralIdImplicatedPutImplicatedIn",
    "PutSafetyV1ReferralsReferralIdSafetyPutSafety",
    "PutSafetyV1ReferralsReferralIdSafetyPutSafetyRiskLevel",
    "PutSafetyV1ReferralsReferralIdSafetyPutSafetySafeChannel",
    "Readiness",
    "ReadinessFailed",
    "ReadinessStatus",
    "RecipientStatus",
    "ReferralPage",
    "ReferralStatus",
    "ReferralSummary",
    "RunningClock",
    "RunningClocks",
    "SafetyOut",
    "SafetyOutSafety",
    "Submitted",
    "SubmitV1ReferralsPostTipIn",
    "SubmitV1ReferralsPostTipInExploitation",
    "SubmitV1ReferralsPostTipInTipSource",
    "SubmitV1ReferralsPostTipInUrgency",
    "SubmitV1ReferralsPostVictimReferralIn",
    "SubmitV1ReferralsPostVictimReferralInConsent",
    "SubmitV1ReferralsPostVictimReferralInConsentConsentForm",
    "SubmitV1ReferralsPostVictimReferralInConsentConsentGivenBy",
    "SubmitV1ReferralsPostVictimReferralInExploitation",
    "SubmitV1ReferralsPostVictimReferralInUrgency",
    "SubmitV1ReferralsPostVictimReferralInVictim",
    "SubmitV1ReferralsPostVictimReferralInVictimAgeBasis",
    "SubmitV1ReferralsPostVictimReferralInVictimNeed",
    "SubmitV1ReferralsPostVictimReferralInVictimSafety",
    "SubmitV1ReferralsPostVictimReferralInVictimSafetyRiskLevel",
    "SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel",
    "SubmitV1ReferralsPostVictimReferralInVictimSex",
    "SubmitV1ReferralsPostVictimReferralInVictimVictimContact",
    "SubmitV1ReferralsPostVictimReferralInVictimVictimIdentity",
    "Urgency",
)
