from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInUrgency(StrEnum):
    HIGH = "high"
    IMMEDIATE = "immediate"
    ROUTINE = "routine"

    def __str__(self) -> str:
        return str(self.value)
