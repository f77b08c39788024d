from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInConsentConsentGivenBy(StrEnum):
    GUARDIAN = "guardian"
    LEGAL_REPRESENTATIVE = "legal_representative"
    SELF = "self"

    def __str__(self) -> str:
        return str(self.value)
