from enum import StrEnum

class SubmitV1ReferralsPostVictimReferralInVictimSafetySafeChannel(StrEnum):
    EMAIL = "email"
    IN_PERSON = "in_person"
    MESSENGER = "messenger"
    PHONE = "phone"
    SMS = "sms"
    THROUGH_AGENCY = "through_agency"

    def __str__(self) -> str:
        return str(self.value)
