"""The console's backend-for-frontend: server-side sessions holding each person's tokens, and
calls to the services' public APIs with the person's own access token (the services' own
authorisation stays the only authorisation). No FastAPI here."""

import json
import secrets
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.settings import ConsoleSettings

COOKIE = "nrm_console"
LANGUAGES = ("en", "ru", "kk")


@dataclass
class Stored:
    data: dict[str, Any]
    seen: float


class SessionStore:
    """Sessions in this process's memory, by a random id (the cookie holds only the id): the
    tokens never reach the browser. A restart signs everyone out; several console instances
    need sticky sessions."""

    def __init__(self, *, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._sessions: dict[str, Stored] = {}

    def load(self, sid: str | None) -> dict[str, Any] | None:
        now = self.clock()
        if len(self._sessions) > 1000:  # forget idle sessions now and then
            for key in [k for k, s in self._sessions.items() if now - s.seen > self.idle_seconds]:
                del self._sessions[key]
        stored = self._sessions.get(sid or "")
        if stored is None:
            return None
        if now - stored.seen > self.idle_seconds:
            del self._sessions[sid or ""]
            return None
        stored.seen = now
        return stored.data

    def save(self, sid: str | None, data: dict[str, Any]) -> str:
        sid = sid or secrets.token_urlsafe(32)
        self._sessions[sid] = Stored(data, self.clock())
        return sid

    def drop(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)


class SessionMiddleware:
    """`request.session` from the store; the cookie set when a session starts or is renewed
    (`scope["console.renew"]`, after sign-in: a new id against fixation) and cleared when it
    empties. HttpOnly, SameSite=Lax, Secure over TLS."""

    def __init__(self, app: ASGIApp, *, store: SessionStore, secure: bool | None) -> None:
        self.app = app
        self.store = store
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid = HTTPConnection(scope).cookies.get(COOKIE)
        loaded = self.store.load(sid)
        data: dict[str, Any] = loaded if loaded is not None else {}
        scope["session"] = data
        secure = self.secure if self.secure is not None else scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                renew = bool(scope.get("console.renew"))
                if data and (loaded is None or renew):
                    if renew:
                        self.store.drop(sid)
                    new = self.store.save(None, data)
                    headers.append("set-cookie", _cookie(new, secure=secure))
                elif not data and sid:
                    self.store.drop(sid)
                    headers.append("set-cookie", _cookie("", secure=secure, max_age=0))
            await send(message)

        await self.app(scope, receive, wrapped)


def _cookie(value: str, *, secure: bool, max_age: int | None = None) -> str:
    parts = [f"{COOKIE}={value}", "Path=/console", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def agency_languages(config_dir: Path) -> dict[str, str]:
    """Each agency's language from the example configuration (the console's default)."""
    path = config_dir / "agencies.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {a["id"]: a.get("language", "en") for a in data.get("agencies", []) if "id" in a}


def agency_types(config_dir: Path) -> dict[str, str]:
    """Each agency's type from the configuration: which pages and forms a person is offered
    (the services decide what they may do; the console only leaves out forms they would refuse)."""
    path = config_dir / "agencies.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {a["id"]: str(a.get("type", "")) for a in data.get("agencies", []) if "id" in a}


def client_secret(settings: ConsoleSettings) -> str:
    if settings.client_secret is not None:
        return settings.client_secret.get_secret_value()
    path = settings.data_dir / "credentials.json"
    secret: str = json.loads(path.read_text())[settings.client_id]
    return secret


class SignedOut(Exception):
    """The person's tokens are gone or refused: sign in again."""


class Backend:
    """The services' public APIs, called as the person."""

    def __init__(self, settings: ConsoleSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    def url(self, path: str) -> str:
        return self.settings.url_for(path)

    async def _refresh(self, session: MutableMapping[str, Any]) -> None:
        token = session.get("token") or {}
        if not token.get("refresh_token"):
            raise SignedOut
        r = await self.http.post(
            self.url("/oauth/token"),
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(self.settings.client_id, client_secret(self.settings)),
        )
        if r.status_code != 200:
            session.clear()
            raise SignedOut
        fresh = r.json()
        fresh["expires_at"] = time.time() + int(fresh.get("expires_in", 0))
        fresh.setdefault("id_token", token.get("id_token"))
        session["token"] = fresh

    async def call(
        self,
        session: MutableMapping[str, Any],
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        token = session.get("token")
        if not token:
            raise SignedOut
        if float(token.get("expires_at", 0)) - time.time() < 30:
            await self._refresh(session)
        for attempt in (1, 2):
            r = await self.http.request(
                method,
                self.url(path),
                params=httpx.QueryParams(tuple(params or ())),
                json=json_body,
                headers={
                    **(headers or {}),
                    "Authorization": f"Bearer {session['token']['access_token']}",
                },
            )
            if r.status_code != 401:
                return r
            if attempt == 1:
                await self._refresh(session)
        session.clear()
        raise SignedOut

    async def end(self, session: MutableMapping[str, Any]) -> None:
        """Revoke the refresh token at identity (the identity session ends at its logout)."""
        token = session.get("token") or {}
        if token.get("refresh_token"):
            await self.http.post(
                self.url("/oauth/revoke"),
                data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
                auth=(self.settings.client_id, client_secret(self.settings)),
            )
