from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInVictimVictimStatus(StrEnum):
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    POTENTIAL = "potential"
    REASONABLE_GROUNDS = "reasonable_grounds"

    def __str__(self) -> str:
        return str(self.value)
