from enum import StrEnum

class DeliveryStatus(StrEnum):
    ACCEPTED = "accepted"
    ACKNOWLEDGED = "acknowledged"
    COMPLETED = "completed"
    DECLINED = "declined"
    ERASED = "erased"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    PENDING = "pending"
    WITHDRAWN = "withdrawn"

    def __str__(self) -> str:
        return str(self.value)
