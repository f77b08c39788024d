"""People: accounts, passwords, second factor (TOTP, recovery codes), sign-in sessions.

Plain functions; the caller owns the transaction. Disabling a person ends their sessions and
refresh tokens and announces `access.revoked` (subject type `person`), as for clients.
"""

import asyncio
import base64
import functools
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from contracts.vocabulary import Role
from services.common.crypto import Vault
from services.common.errors import Conflict, NotFound, UnprocessableContent
from services.common.models import utcnow
from services.identity import service
from services.identity.models import (
    Agency,
    Person,
    PersonSession,
    RefreshToken,
)

# Roles that can read victim data (or manage who can): a second factor is required for them.
SECOND_FACTOR_ROLES = frozenset(
    {Role.REFERRER, Role.CASEWORKER, Role.SUPERVISOR, Role.DPO, Role.ADMIN}
)
# People of these roles belong to no agency of the configuration (as the system clients).
SYSTEM_ROLES = frozenset({Role.AUDITOR, Role.ADMIN, Role.ANALYST, Role.DPO})
# What a supervisor may give the people of their own agency.
AGENCY_ROLES = frozenset(service.AGENCY_ROLES)
TOTP_ISSUER = "NRM Exchange"
RECOVERY_CODES = 10


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@functools.cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list of the 30,000 most used passwords (from leaked password sets).
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, username: str, min_length: int) -> str | None:
    """Why a password is refused, or None."""
    if len(password) < min_length:
        return f"The password must have at least {min_length} characters."
    if len(password) > 256:
        return "The password must have at most 256 characters."
    lowered = password.lower()
    if lowered in _common_passwords() or lowered == username.lower():
        return "The password is too common; choose another."
    # zxcvbn's estimate catches what a list cannot: repeats, keyboard walks, the username padded
    # with digits. Score 3: "safely unguessable" online (NIST SP 800-63B 5.1.1.2 asks for a check).
    context = {w for w in re.split(r"[.@_-]", username.lower()) if len(w) >= 3}
    context |= {username.lower(), username.lower().split(".")[0], "nrm", "exchange"}
    if zxcvbn(password, user_inputs=sorted(context))["score"] < 3:
        return "The password is too easy to guess; use a longer phrase of unrelated words."
    # What is left once the context (the username, its agency, the service) is taken out must be
    # hard to guess on its own: `ngo-south-2026!` is the agency's name and a year.
    rest = lowered
    for word in sorted(context, key=len, reverse=True):
        rest = rest.replace(word, "")
    if rest != lowered and zxcvbn(rest)["score"] < 3:
        return "The password is too easy to guess; use a longer phrase of unrelated words."
    return None


def new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


# Accounts


@dataclass(frozen=True, slots=True)
class Caller:
    """Who manages people: an admin (any agency) or a supervisor (their own agency only)."""

    actor: str
    agency: str
    roles: frozenset[Role]

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles


def _check_may_manage(caller: Caller, *, agency: str, roles: list[Role] | None = None) -> None:
    if caller.is_admin:
        return
    if Role.SUPERVISOR not in caller.roles or agency != caller.agency:
        raise NotFound("Not found.")
    if roles is not None and not set(roles) <= AGENCY_ROLES:
        raise UnprocessableContent(
            "A supervisor may give only the roles referrer, caseworker and supervisor."
        )


async def create_person(
    session: AsyncSession,
    *,
    username: str,
    agency: str,
    roles: list[Role],
    password: str | None,
    min_length: int,
    caller: Caller,
) -> tuple[Person, str | None]:
    """Returns the person and, when none was given, the generated password (shown once)."""
    _check_may_manage(caller, agency=agency, roles=roles)
    service.check_roles_apart(roles)
    existing = await session.exec(select(Person).where(Person.username == username))
    if existing.first() is not None:
        raise Conflict(f"Person {username!r} already exists.")
    system = set(roles) <= SYSTEM_ROLES
    if not system and await session.get(Agency, agency) is None:
        raise UnprocessableContent(f"No agency {agency!r}.")
    generated = None
    if password is None:
        password = generated = new_password()
    problem = password_problem(password, username=username, min_length=min_length)
    if problem:
        raise UnprocessableContent(problem)
    row = Person(
        id=str(uuid.uuid4()),
        username=username,
        agency=agency,
        roles=sorted(r.value for r in roles),
        password_hash=await service.hash_secret(password),
    )
    session.add(row)
    await service._announce(
        session, "person.created", "person", row.id, caller.actor, agency=agency, roles=row.roles
    )
    return row, generated


async def get_person(session: AsyncSession, person_id: str, caller: Caller) -> Person:
    """A person by id or by username (the CLI and people themselves know the username)."""
    row = await session.get(Person, person_id) or await by_username(session, person_id)
    if row is None:
        raise NotFound(f"No person with the id or username {person_id!r}.")
    _check_may_manage(caller, agency=row.agency)
    return row


async def by_username(session: AsyncSession, username: str) -> Person | None:
    return (await session.exec(select(Person).where(Person.username == username))).first()


async def list_people(
    session: AsyncSession, *, caller: Caller, agency: str | None = None
) -> list[Person]:
    if not caller.is_admin:
        _check_may_manage(caller, agency=caller.agency)
        agency = caller.agency
    query = select(Person).order_by(col(Person.username))
    if agency is not None:
        query = query.where(Person.agency == agency)
    return list(await session.exec(query))


async def set_disabled(
    session: AsyncSession, *, person: Person, disabled: bool, actor: str
) -> Person:
    """Disable a person (sessions and refresh tokens end now; access tokens are refused by
    every service through `access.revoked`) or enable them again."""
    if person.disabled != disabled:
        person.disabled = disabled
        if disabled:
            person.tokens_not_before = await service.revoke_access(
                session, subject_type="person", subject_id=person.id, actor=actor
            )
            await end_everything(session, person_id=person.id)
        else:
            await service.restore_access(
                session, subject_type="person", subject_id=person.id, actor=actor
            )
        session.add(person)
        action = "person.disabled" if disabled else "person.enabled"
        await service._announce(session, action, "person", person.id, actor)
    return person


async def end_everything(session: AsyncSession, *, person_id: str) -> None:
    now = utcnow()
    await session.exec(
        update(PersonSession)
        .where(col(PersonSession.person_id) == person_id)
        .where(col(PersonSession.ended_at).is_(None))
        .values(ended_at=now)
    )
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.person_id) == person_id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def reset(
    session: AsyncSession,
    *,
    person: Person,
    password: str | None,
    new_password_wanted: bool,
    second_factor: bool,
    min_length: int,
    actor: str,
) -> str | None:
    """Reset the password (to the one given, or a generated one returned once) and/or the
    second factor (enrolled again at the next sign-in). Either ends the person's sessions."""
    generated = None
    if password is not None or new_password_wanted:
        if password is None:
            password = generated = new_password()
        problem = password_problem(password, username=person.username, min_length=min_length)
        if problem:
            raise UnprocessableContent(problem)
        person.password_hash = await service.hash_secret(password)
        person.password_changed_at = utcnow()
    if second_factor:
        person.totp_sealed = person.totp_wrapped_key = person.totp_master_key_id = None
        person.totp_confirmed = False
        person.totp_last_step = None
        person.recovery_codes = []
    session.add(person)
    await end_everything(session, person_id=person.id)
    await service._announce(
        session,
        "person.reset",
        "person",
        person.id,
        actor,
        password=password is not None,
        second_factor=second_factor,
    )
    return generated


# Passwords


async def check_password(person: Person | None, password: str) -> bool:
    """Argon2 verification; an unknown person costs the same as a known one."""
    stored = person.password_hash if person is not None else service._DUMMY_HASH
    try:
        await asyncio.to_thread(service._hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return person is not None


# Second factor


def needs_second_factor(person: Person) -> bool:
    return bool(set(person.roles) & {r.value for r in SECOND_FACTOR_ROLES})


def set_totp_secret(person: Person, secret: str, vault: Vault, *, confirmed: bool) -> None:
    sealed = vault.seal({"totp": secret}, record_id=f"person:{person.id}")
    person.totp_sealed = sealed.ciphertext
    person.totp_wrapped_key = sealed.wrapped_key
    person.totp_master_key_id = sealed.master_key_id
    person.totp_confirmed = confirmed
    person.totp_last_step = None


def totp_secret(person: Person, vault: Vault) -> str | None:
    if person.totp_sealed is None or person.totp_wrapped_key is None:
        return None
    assert person.totp_master_key_id is not None
    opened = vault.open_row(
        person, record_id=f"person:{person.id}", column="totp_sealed", prefix="totp_"
    )
    return str(opened["totp"])


def begin_enrolment(person: Person, vault: Vault) -> str:
    """A new secret, to be confirmed by a first code."""
    secret = pyotp.random_base32()
    set_totp_secret(person, secret, vault, confirmed=False)
    return secret


def provisioning_uri(person: Person, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=person.username, issuer_name=TOTP_ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """The QR code as an inline SVG data URI (no request leaves the page)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def check_totp(person: Person, code: str, vault: Vault, *, now: datetime | None = None) -> bool:
    """A six-digit code of the current, previous or next 30 s step, newer than the last one
    accepted (so each code is good once). Records the step on success."""
    secret = totp_secret(person, vault)
    code = code.strip().replace(" ", "")
    if secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    moment = now or utcnow()
    for drift in (-1, 0, 1):
        at = moment + timedelta(seconds=30 * drift)
        if hmac.compare_digest(totp.at(at), code):
            step = totp.timecode(at)
            if person.totp_last_step is not None and step <= person.totp_last_step:
                return False  # replayed
            person.totp_last_step = step
            return True
    return False


def new_recovery_codes(person: Person) -> list[str]:
    """Ten one-time codes, shown once; kept as digests."""
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    person.recovery_codes = [_digest(c) for c in codes]
    return codes


def use_recovery_code(person: Person, code: str) -> bool:
    digest = _digest(code.strip().lower())
    for stored in person.recovery_codes:
        if hmac.compare_digest(stored, digest):
            person.recovery_codes = [c for c in person.recovery_codes if c != digest]
            return True
    return False


# Sign-in sessions


def session_id(cookie: str) -> str:
    return _digest(cookie)


async def start_session(
    session: AsyncSession, *, person: Person, stage: str, ttl: int
) -> tuple[str, PersonSession]:
    """A new sign-in session; returns the cookie value (the table keeps its digest)."""
    cookie = secrets.token_urlsafe(32)
    row = PersonSession(
        id=session_id(cookie),
        person_id=person.id,
        stage=stage,
        expires_at=utcnow() + timedelta(seconds=ttl),
    )
    session.add(row)
    return cookie, row


async def current_session(
    session: AsyncSession, cookie: str | None
) -> tuple[PersonSession, Person] | None:
    """The live session behind a cookie and its (enabled) person, or None."""
    if not cookie or len(cookie) > 100:
        return None
    row = await session.get(PersonSession, session_id(cookie))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    person = await session.get(Person, row.person_id)
    if person is None or person.disabled:
        return None
    return row, person


async def end_session(session: AsyncSession, *, session_row: PersonSession) -> None:
    """Sign out: the session and the refresh tokens issued in it end."""
    now = utcnow()
    session_row.ended_at = now
    session.add(session_row)
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.session_id) == session_row.id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


# Seeding (demo people for `nrm up`)


async def seed_people(
    session: AsyncSession, *, agencies: list[str], vault: Vault
) -> dict[str, dict[str, object]]:
    """One referrer, caseworker and supervisor per agency, plus `auditor`, `admin`, `analyst`
    and `dpo`, each with a password and an enrolled TOTP secret. Returns the people created
    now as DESIGN.md's people.json: `{username: {password, totp_secret, agency, roles}}`."""
    wanted: list[tuple[str, str, list[str]]] = [
        (f"{a}.{role.value}", a, [role.value]) for a in agencies for role in service.AGENCY_ROLES
    ]
    wanted += [(r.value, r.value, [r.value]) for r in (Role.AUDITOR, Role.ADMIN)]
    wanted += [(r.value, r.value, [r.value]) for r in (Role.ANALYST, Role.DPO)]
    created: dict[str, dict[str, object]] = {}
    for username, agency, roles in wanted:
        if await by_username(session, username) is not None:
            continue
        password = new_password()
        row = Person(
            id=str(uuid.uuid4()),
            username=username,
            agency=agency,
            roles=roles,
            password_hash=await service.hash_secret(password),
        )
        secret = pyotp.random_base32()
        set_totp_secret(row, secret, vault, confirmed=True)
        session.add(row)
        await service._announce(
            session, "person.created", "person", row.id, "seed", agency=agency, roles=roles
        )
        created[username] = {
            "password": password,
            "totp_secret": secret,
            "agency": agency,
            "roles": roles,
        }
    return created
