from enum import StrEnum

class SubmitV1ReferralsPostTipInTipSource(StrEnum):
    AGENCY = "agency"
    HOTLINE = "hotline"
    MEDIA = "media"
    NGO = "ngo"
    ONLINE = "online"
    OTHER = "other"
    PUBLIC = "public"

    def __str__(self) -> str:
        return str(self.value)
