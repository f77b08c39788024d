from enum import StrEnum

class Urgency(StrEnum):
    HIGH = "high"
    IMMEDIATE = "immediate"
    ROUTINE = "routine"

    def __str__(self) -> str:
        return str(self.value)
