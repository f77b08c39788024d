"""Envelope encryption: per-record data keys, master-key rotation, tamper detection."""

import pytest

from services.common.crypto import SealError, Vault

FIELDS = {"identity": {"full_name": "Aigerim Example"}, "narrative": "passport taken"}


def test_seal_hides_fields_and_opens_with_the_right_record_id() -> None:
    vault = Vault.from_config({"k1": Vault.generate_key()}, "k1")
    sealed = vault.seal(FIELDS, record_id="r1")
    assert b"Aigerim" not in sealed.ciphertext + sealed.wrapped_key
    assert vault.open(sealed, record_id="r1") == FIELDS
    with pytest.raises(SealError):
        vault.open(sealed, record_id="r2")  # moved to another record


def test_every_record_gets_its_own_data_key() -> None:
    vault = Vault.from_config({"k1": Vault.generate_key()}, "k1")
    a, b = vault.seal(FIELDS, record_id="r1"), vault.seal(FIELDS, record_id="r1")
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext


def test_master_key_rotation_keeps_old_records_readable() -> None:
    k1, k2 = Vault.generate_key(), Vault.generate_key()
    old = Vault.from_config({"k1": k1}, "k1").seal(FIELDS, record_id="r1")
    rotated = Vault.from_config({"k1": k1, "k2": k2}, "k2")
    new = rotated.seal(FIELDS, record_id="r2")
    assert (old.master_key_id, new.master_key_id) == ("k1", "k2")
    assert rotated.open(old, record_id="r1") == rotated.open(new, record_id="r2") == FIELDS
    with pytest.raises(SealError, match="not configured"):
        Vault.from_config({"k2": k2}, "k2").open(old, record_id="r1")


def test_tampering_is_detected() -> None:
    vault = Vault.from_config({"k1": Vault.generate_key()}, "k1")
    sealed = vault.seal(FIELDS, record_id="r1")
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    tampered = type(sealed)(sealed.ciphertext[:-1] + flipped, sealed.wrapped_key, "k1")
    with pytest.raises(SealError):
        vault.open(tampered, record_id="r1")


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Vault({"k1": b"short"}, "k1")
    with pytest.raises(ValueError, match="not configured"):
        Vault.from_config({"k1": Vault.generate_key()}, "k9")
