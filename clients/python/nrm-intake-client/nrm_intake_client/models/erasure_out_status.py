from enum import StrEnum

class ErasureOutStatus(StrEnum):
    ERASED = "erased"
    ERASURE_REQUESTED = "erasure_requested"

    def __str__(self) -> str:
        return str(self.value)
