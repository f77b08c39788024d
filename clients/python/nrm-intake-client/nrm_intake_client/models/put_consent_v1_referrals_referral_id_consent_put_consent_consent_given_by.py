from enum import StrEnum

class PutConsentV1ReferralsReferralIdConsentPutConsentConsentGivenBy(StrEnum):
    GUARDIAN = "guardian"
    LEGAL_REPRESENTATIVE = "legal_representative"
    SELF = "self"

    def __str__(self) -> str:
        return str(self.value)
