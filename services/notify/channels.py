"""Outbound channels: agencies' webhook and e-mail settings, and sending one dispatch.

Webhooks follow the Standard Webhooks spec (`webhook-id`, `webhook-timestamp`,
`webhook-signature`, signed with the `standardwebhooks` package). SSRF: a target's host is
resolved and every address checked when it is set (so `localhost`, `127.1`, `2130706433` or a
name that resolves to a private address is refused at once) and again before every send, and the
send connects to the address that was checked (Host header and TLS server name still the
name), so DNS cannot answer one address to the check and another to the connection.
"""

import asyncio
import base64
import ipaddress
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiosmtplib
import httpx
import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook as Signer

from services.common.access import admin_changed
from services.common.crypto import Vault
from services.common.errors import UnprocessableContent
from services.common.models import utcnow
from services.common.tracing import current_traceparent
from services.notify.models import Dispatch, EmailRecipients, Webhook
from services.notify.settings import NotifySettings

# Which agencies have which channels, as read earlier in the same transaction (notify's
# `Channels.of`): a change to an agency's channels drops it.
CHANNELS_READ = "nrm_notify_channels"


def channels_changed(session: AsyncSession) -> None:
    session.info.pop(CHANNELS_READ, None)


SERVICE = "notify"
TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("en", "ru", "kk")


class TargetRefused(UnprocessableContent):
    """The webhook URL may not be called (scheme, host or address not allowed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            reason,
            detail="The webhook URL is not allowed.",
            errors=[{"path": "url", "type": "url_refused", "message": reason}],
        )


def check_url(url: str, settings: NotifySettings) -> str:
    """A webhook URL acceptable by configuration, before any DNS lookup; raises TargetRefused."""
    if len(url) > 2000 or any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise TargetRefused("the URL contains characters a URL cannot have")
    parts = urlsplit(url)
    if parts.scheme not in settings.webhook_allowed_schemes:
        allowed = ", ".join(settings.webhook_allowed_schemes)
        raise TargetRefused(f"scheme {parts.scheme or '(none)'} is not allowed ({allowed})")
    if not parts.hostname or parts.username or parts.password:
        raise TargetRefused("the URL needs a host and no credentials")
    host = parts.hostname.lower()
    if settings.webhook_allowed_hosts and not any(
        host == h or host.endswith("." + h) for h in settings.webhook_allowed_hosts
    ):
        raise TargetRefused(f"host {host} is not among the allowed webhook hosts")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url
    _check_address(literal, settings)
    return url


def _check_address(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, settings: NotifySettings
) -> None:
    if settings.webhook_allow_private:
        return
    if not address.is_global or address.is_multicast:
        raise TargetRefused(f"address {address} is not public")


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) → the addresses it resolves to; the system's unless a test gives its own DNS."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL with the address it was checked at, which the send must connect to."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (port, path, query kept)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        return urlunsplit(parts._replace(netloc=netloc))


async def resolve_checked(
    url: str, settings: NotifySettings, resolver: Resolver = system_resolver
) -> Target:
    """Resolve the URL's host and refuse it if any of its addresses is not allowed."""
    check_url(url, settings)
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolver(parts.hostname, port)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {parts.hostname}: {exc.strerror or exc}") from None
    if not addresses:
        raise TargetRefused(f"{parts.hostname} resolves to no address")
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise TargetRefused(f"{parts.hostname} resolves to {address!r}") from None
        _check_address(parsed, settings)
    return Target(url=url, host=parts.hostname, address=addresses[0])


MIN_SECRET_BYTES = 24  # the Standard Webhooks recommendation (24 to 64 bytes)


def _secret_problem(secret: str) -> str | None:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        Signer(secret)
    except Exception:
        return "expected whsec_<base64>"
    if len(key) < MIN_SECRET_BYTES:
        return f"the secret must be at least {MIN_SECRET_BYTES} random bytes"
    return None


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def set_webhook(
    session: AsyncSession,
    *,
    agency: str,
    url: str,
    secret: str | None,
    enabled: bool,
    actor: str,
    vault: Vault,
    settings: NotifySettings,
    resolver: Resolver = system_resolver,
) -> tuple[Webhook, str | None]:
    """Create or replace an agency's webhook; returns it and the new secret when generated."""
    generated = None
    if secret is None:
        generated = secret = new_secret()
    problem = _secret_problem(secret)
    if problem is not None:
        raise UnprocessableContent(
            "The secret is not an acceptable Standard Webhooks secret.",
            errors=[{"path": "secret", "type": "value_error", "message": problem}],
        )
    await resolve_checked(url, settings, resolver)
    sealed = vault.seal({"secret": secret}, record_id=f"webhook:{agency}")
    hook = await session.get(Webhook, agency) or Webhook(
        agency=agency, url=url, sealed_secret=b"", wrapped_key=b"", master_key_id=""
    )
    hook.url = url
    hook.sealed_secret = sealed.ciphertext
    hook.wrapped_key = sealed.wrapped_key
    hook.master_key_id = sealed.master_key_id
    hook.enabled = enabled
    hook.consecutive_failures = 0
    hook.disabled_reason = None
    hook.updated_at = utcnow()
    session.add(hook)
    channels_changed(session)
    await _admin_event(
        session,
        action="webhook.set",
        agency=agency,
        actor=actor,
        details={"enabled": enabled, "host": urlsplit(url).hostname or ""},
    )
    return hook, generated


def webhook_secret(hook: Webhook, vault: Vault) -> str:
    opened = vault.open_row(hook, record_id=f"webhook:{hook.agency}", column="sealed_secret")
    return str(opened["secret"])


async def set_email(
    session: AsyncSession, *, agency: str, addresses: list[str], language: str, actor: str
) -> EmailRecipients:
    row = await session.get(EmailRecipients, agency) or EmailRecipients(
        agency=agency, language=language
    )
    row.addresses = addresses
    row.language = language
    row.updated_at = utcnow()
    session.add(row)
    channels_changed(session)
    await _admin_event(
        session,
        action="email.set",
        agency=agency,
        actor=actor,
        details={"addresses": len(addresses), "language": language},
    )
    return row


async def _admin_event(
    session: AsyncSession, *, action: str, agency: str, actor: str | None, details: dict[str, Any]
) -> None:
    await admin_changed(
        session,
        source=SERVICE,
        action=action,
        target_type="agency",
        target_id=agency,
        actor=actor,
        details=details,
        agency=agency,
    )


async def disable_webhook(session: AsyncSession, *, hook: Webhook, reason: str) -> None:
    hook.enabled = False
    hook.disabled_reason = reason
    hook.updated_at = utcnow()
    session.add(hook)
    channels_changed(session)
    await _admin_event(
        session,
        action="webhook.disabled",
        agency=hook.agency,
        actor=None,
        details={"reason": reason, "consecutive_failures": hook.consecutive_failures},
    )


# Sending


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0


async def send_webhook(
    dispatch: Dispatch,
    *,
    url: str,
    secret: str,
    client: httpx.AsyncClient,
    settings: NotifySettings,
    resolver: Resolver = system_resolver,
) -> Outcome:
    start = time.perf_counter()
    try:
        target = await resolve_checked(url, settings, resolver)
    except TargetRefused as exc:
        return Outcome(False, error=f"refused: {exc}")
    body = orjson.dumps(dispatch.payload).decode()
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": dispatch.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Signer(secret).sign(dispatch.id, now, body),
        "user-agent": "nrm-exchange-notify",
        "host": urlsplit(url).netloc,
    }
    traceparent = current_traceparent()
    if traceparent is not None:  # the receiver can join the referral's trace
        headers["traceparent"] = traceparent
    try:
        # To the checked address; the TLS server name (and so the certificate check) and the
        # Host header stay the URL's name.
        response = await client.post(
            target.pinned_url,
            content=body,
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            extensions={"sni_hostname": target.host},
        )
    except httpx.HTTPError as exc:
        return Outcome(False, error=f"{type(exc).__name__}", duration_ms=_ms(start))
    ok = 200 <= response.status_code < 300
    return Outcome(
        ok,
        status_code=response.status_code,
        error=None if ok else f"HTTP {response.status_code}",
        duration_ms=_ms(start),
    )


_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render_email(dispatch: Dispatch, *, settings: NotifySettings) -> tuple[str, str]:
    """(subject, text) in the agency's language; routing facts only."""
    language = dispatch.payload.get("language", "en")
    if language not in LANGUAGES:
        language = "en"
    kind = dispatch.payload["type"]
    # An erasure notice names the reference and that it was erased, nothing else.
    name = "erased" if kind == "delivery.erased" else "delivery"
    template = _templates.get_template(f"{language}/{name}.txt.j2")
    data = dispatch.payload["data"]
    # An address configured the old way (ending in the inbox API) still gives the console.
    base = settings.public_url.rstrip("/").removesuffix("/v1/inbox")
    text = template.render(
        kind=kind,
        d=data,
        referral_url=f"{base}/console/referrals/{data['referral_id']}",
        inbox_url=f"{base}/console/inbox",
    )
    subject, _, body = text.partition("\n")
    return subject.removeprefix("Subject: ").strip(), body.lstrip("\n")


async def send_email(
    dispatch: Dispatch, *, addresses: list[str], settings: NotifySettings
) -> Outcome:
    start = time.perf_counter()
    assert settings.smtp_host is not None
    subject, text = render_email(dispatch, settings=settings)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(addresses)
    message["Subject"] = subject
    message["Message-ID"] = f"<{dispatch.id}@{settings.smtp_from.split('@')[-1]}>"
    message.set_content(text)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=settings.webhook_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome(False, error=type(exc).__name__, duration_ms=_ms(start))
    return Outcome(True, duration_ms=_ms(start))


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def backoff(attempts: int, *, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of base·2^attempts, capped."""
    ceiling = min(cap, base * 2 ** min(attempts, 30))
    return float(ceiling * (0.5 + secrets.randbelow(1000) / 2000))
