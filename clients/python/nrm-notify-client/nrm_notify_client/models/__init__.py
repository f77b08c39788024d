""" Contains all the data models used in inputs/outputs """

from .attempt import Attempt
from .decline import Decline
from .delivery_status import DeliveryStatus
from .email_in import EmailIn
from .email_out import EmailOut
from .health import Health
from .inbox_item import InboxItem
from .inbox_page import InboxPage
from .overdue_page import OverduePage
from .problem import Problem
from .problem_errors_item import ProblemErrorsItem
from .readiness import Readiness
from .readiness_failed import ReadinessFailed
from .readiness_status import ReadinessStatus
from .urgency import Urgency
from .webhook_in import WebhookIn
from .webhook_out import WebhookOut

__all__ = (
    "Attempt",
    "Decline",
    "DeliveryStatus",
    "EmailIn",
    "EmailOut",
    "Health",
    "InboxItem",
    "InboxPage",
    "OverduePage",
    "Problem",
    "ProblemErrorsItem",
    "Readiness",
    "ReadinessFailed",
    "ReadinessStatus",
    "Urgency",
    "WebhookIn",
    "WebhookOut",
)
