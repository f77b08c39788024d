from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInVictimAgeBasis(StrEnum):
    DISPUTED = "disputed"
    DOCUMENTED = "documented"
    ESTIMATED = "estimated"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return str(self.value)
