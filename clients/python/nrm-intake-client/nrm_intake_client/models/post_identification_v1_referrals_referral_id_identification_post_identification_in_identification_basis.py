from enum import StrEnum

class PostIdentificationV1ReferralsReferralIdIdentificationPostIdentificationInIdentificationBasis(StrEnum):
    AGENCY_INFORMATION = "agency_information"
    DOCUMENTS = "documents"
    INDICATORS = "indicators"
    INTERVIEW = "interview"
    INVESTIGATION = "investigation"
    MULTI_AGENCY_ASSESSMENT = "multi_agency_assessment"
    OTHER = "other"

    def __str__(self) -> str:
        return str(self.value)
