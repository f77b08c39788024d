from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInConsentConsentForm(StrEnum):
    ORAL = "oral"
    WRITTEN = "written"

    def __str__(self) -> str:
        return str(self.value)
