from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInVictimSex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return str(self.value)
