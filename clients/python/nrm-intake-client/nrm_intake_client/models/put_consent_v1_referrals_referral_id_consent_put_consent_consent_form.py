from enum import StrEnum

class PutConsentV1ReferralsReferralIdConsentPutConsentConsentForm(StrEnum):
    ORAL = "oral"
    WRITTEN = "written"

    def __str__(self) -> str:
        return str(self.value)
