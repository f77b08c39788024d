from enum import StrEnum

class PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationDecision(StrEnum):
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    NO_REASONABLE_GROUNDS = "no_reasonable_grounds"
    REASONABLE_GROUNDS = "reasonable_grounds"

    def __str__(self) -> str:
        return str(self.value)
