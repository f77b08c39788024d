"""People's secrets: the password policy, TOTP (each code once, one step of drift), recovery
codes (each once), the QR code carrying the otpauth URI."""

import base64
import os
from datetime import UTC, datetime, timedelta

import pyotp

from services.common.crypto import Vault
from services.identity import people
from services.identity.models import Person

AT = datetime(2026, 11, 29, 6, 0, 15, tzinfo=UTC)


def person(roles: list[str]) -> Person:
    return Person(id="p-1", username="aigul", agency="ngo-north", roles=roles, password_hash="x")


def test_password_policy() -> None:
    def problem(password: str) -> str | None:
        return people.password_problem(password, username="aigul.saparova", min_length=12)

    assert problem("short-one") == "The password must have at least 12 characters."
    assert problem("password1234") == "The password is too common; choose another."
    assert problem("1QAZ2WSX3EDC") == "The password is too common; choose another."
    assert problem("AIGUL.SAPAROVA") == "The password is too common; choose another."
    assert problem("x" * 257) == "The password must have at most 256 characters."
    guessable = "The password is too easy to guess; use a longer phrase of unrelated words."
    # Repeats, keyboard walks, digit runs and the username padded: long enough, still guessable.
    assert problem("aaaaaaaaaaaa") == guessable
    assert problem("qwertyuiopasdfgh") == guessable
    assert problem("123456789012") == guessable
    assert problem("aigul.saparova1234") == guessable
    assert problem("saparovasaparova") == guessable
    assert problem("steppe-horse-kettle-9") is None
    # The agency's name and a year: what is left besides the context is guessable.
    agency = "ngo-south.caseworker"
    assert people.password_problem("ngo-south-2026!", username=agency, min_length=12) == guessable
    assert people.password_problem("NRM-exchange-2026", username=agency, min_length=12) == guessable
    assert (
        people.password_problem("steppe-horse-kettle-ngo-south", username=agency, min_length=12)
        is None
    )


def test_totp_each_code_once_within_one_step_of_drift() -> None:
    vault = Vault({"k1": os.urandom(32)}, "k1")
    row = person(["caseworker"])
    secret = people.begin_enrolment(row, vault)
    assert row.totp_confirmed is False and people.totp_secret(row, vault) == secret
    totp = pyotp.TOTP(secret)
    assert not people.check_totp(row, totp.at(AT - timedelta(seconds=60)), vault, now=AT)
    assert people.check_totp(row, totp.at(AT), vault, now=AT)
    assert not people.check_totp(row, totp.at(AT), vault, now=AT)  # replayed
    assert not people.check_totp(row, totp.at(AT - timedelta(seconds=30)), vault, now=AT)
    assert people.check_totp(row, totp.at(AT + timedelta(seconds=30)), vault, now=AT)
    assert not people.check_totp(row, "12345", vault, now=AT + timedelta(seconds=90))
    assert not people.check_totp(row, "abcdef", vault, now=AT + timedelta(seconds=90))


def test_recovery_codes_each_once() -> None:
    row = person(["supervisor"])
    codes = people.new_recovery_codes(row)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert codes[0] not in row.recovery_codes  # kept as digests only
    assert people.use_recovery_code(row, codes[3].upper())
    assert not people.use_recovery_code(row, codes[3])
    assert len(row.recovery_codes) == 9


def test_second_factor_required_for_roles_that_read_victim_data() -> None:
    for role in ("referrer", "caseworker", "supervisor", "dpo", "admin"):
        assert people.needs_second_factor(person([role])), role
    for role in ("auditor", "analyst"):
        assert not people.needs_second_factor(person([role])), role


def test_qr_code_is_an_inline_svg_of_the_otpauth_uri() -> None:
    uri = people.provisioning_uri(person(["caseworker"]), "LEQAQQAGYVGOP342PNZ2QNU65VQC7WRD")
    assert (
        uri
        == "otpauth://totp/NRM%20Exchange:aigul?secret=LEQAQQAGYVGOP342PNZ2QNU65VQC7WRD&issuer=NRM%20Exchange"
    )
    data = people.qr_svg_data_uri(uri)
    assert data.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(data.split(",", 1)[1]).startswith(b"<svg")
