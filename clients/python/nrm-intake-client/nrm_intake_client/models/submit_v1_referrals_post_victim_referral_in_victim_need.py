from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInVictimNeed(StrEnum):
    EDUCATION = "education"
    FINANCIAL = "financial"
    INTERPRETATION = "interpretation"
    LEGAL = "legal"
    MEDICAL = "medical"
    PSYCHOLOGICAL = "psychological"
    REPATRIATION = "repatriation"
    SHELTER = "shelter"

    def __str__(self) -> str:
        return str(self.value)
