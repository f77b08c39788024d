from enum import StrEnum

class ErasureBasis(StrEnum):
    COURT_ORDER = "court_order"
    RETENTION_EXPIRED = "retention_expired"
    UNLAWFUL_PROCESSING = "unlawful_processing"
    VICTIM_REQUEST = "victim_request"

    def __str__(self) -> str:
        return str(self.value)
