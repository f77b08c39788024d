from functools import cached_property
from typing import ClassVar

from pydantic import SecretStr

from services.common.settings import Settings


class NotifySettings(Settings):
    service: ClassVar[str] = "notify"

    public_url: str = "http://127.0.0.1:8000"
    """The exchange's address as staff reach it (`NRM_PUBLIC_URL`): e-mails link to the
    delivery's page in the console, `<public_url>/console/referrals/<id>`."""
    coordinator_agency: str = "nrm-coordinator"
    """The national coordinator: its supervisors see overdue deliveries at every agency."""
    deadline_sweep_seconds: float = 15.0
    """How often overdue deliveries are looked for."""
    dispatch_poll_seconds: float = 1.0
    """How often due webhook and e-mail dispatches are looked for (commits also wake it)."""
    webhook_backoff_seconds: float = 5.0
    """First retry wait; doubled per attempt, with jitter."""
    webhook_backoff_cap_seconds: float = 600.0
    """Longest wait between two tries."""
    webhook_horizon_seconds: float = 24 * 3600.0
    """How long after its first try a message is still retried."""
    webhook_disable_after: int = 20
    """Consecutive failures that disable an endpoint (`admin.changed` says so)."""
    webhook_timeout_seconds: float = 10.0
    """Timeout of one webhook or SMTP attempt."""
    webhook_allowed_schemes: list[str] = ["https"]
    """URL schemes a webhook may use."""
    webhook_allowed_hosts: list[str] = []
    """If set, webhook hosts must be these or their subdomains; empty: any public host."""
    webhook_allow_private: bool = False
    """Allow webhook targets on loopback and private addresses (closed networks, tests)."""
    smtp_host: str | None = None
    """SMTP relay; e-mail is off unless set."""
    smtp_port: int = 587
    """SMTP port."""
    smtp_from: str = "nrm-exchange@localhost"
    """Sender address of notification e-mails."""
    smtp_username: str | None = None
    """SMTP login, if the relay needs one."""
    smtp_password: SecretStr | None = None
    """SMTP password."""
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS."""
    stream_poll_seconds: float = 1.0
    """How often a live stream looks for changes committed by other notify instances."""
    stream_keepalive_seconds: float = 15.0
    """Keep-alive comment interval on an idle live stream."""

    @cached_property
    def known_agencies(self) -> frozenset[str]:
        """The agencies whose channels may be set: those of the configuration."""
        return self.configured_agencies()
