from typing import ClassVar

from pydantic import SecretStr

from services.common.settings import Settings


class NotifySettings(Settings):
    service: ClassVar[str] = "notify"

    # Where staff open their inbox; e-mails link to it.
    public_url: str = "http://127.0.0.1:8000/v1/inbox"
    deadline_sweep_seconds: float = 15.0
    dispatch_poll_seconds: float = 1.0
    # Webhooks: retried with exponential backoff and jitter until `webhook_horizon_seconds`
    # after the first try; an endpoint failing `webhook_disable_after` times in a row is disabled.
    webhook_backoff_seconds: float = 5.0
    webhook_backoff_cap_seconds: float = 600.0
    webhook_horizon_seconds: float = 24 * 3600.0
    webhook_disable_after: int = 20
    webhook_timeout_seconds: float = 10.0
    webhook_allowed_schemes: list[str] = ["https"]
    webhook_allowed_hosts: list[str] = []  # empty: any host with a public address
    webhook_allow_private: bool = False  # loopback and private ranges (tests, closed networks)
    # E-mail is off unless an SMTP host is set.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "nrm-exchange@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    # The live stream: how often it polls for other instances' changes, and keep-alives.
    stream_poll_seconds: float = 1.0
    stream_keepalive_seconds: float = 15.0
