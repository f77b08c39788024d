"""Envelope encryption of secrets at rest (a referral's identity, contact and narrative; the
identity service's signing keys).

Each record gets its own random data key; the sealed fields are AES-256-GCM under that key and
the data key is AES-256-GCM under a master key from settings. The master key id is stored with
the record, so master keys can rotate: new records use the active key, old ones keep opening
with theirs. The referral id is the associated data: a sealed blob moved to another record
does not open.
"""

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.common.errors import InternalError
from services.common.settings import Settings

NONCE_BYTES = 12


class SealError(InternalError):
    """A sealed record cannot be opened (wrong key, tampered data, unknown key id)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: bytes  # nonce + AES-GCM(data key, fields)
    wrapped_key: bytes  # nonce + AES-GCM(master key, data key)
    master_key_id: str


class Vault:
    def __init__(self, master_keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in master_keys:
            raise ValueError(f"active master key {active_key_id!r} is not configured")
        for kid, key in master_keys.items():
            if len(key) != 32:
                raise ValueError(f"master key {kid!r} must be 32 bytes")
        self._keys = {kid: AESGCM(key) for kid, key in master_keys.items()}
        self._raw = dict(master_keys)
        self._active = active_key_id

    @classmethod
    def from_config(cls, master_keys: dict[str, str], active_key_id: str) -> "Vault":
        """Keys as URL-safe base64 strings, as they come from settings."""
        return cls({k: base64.urlsafe_b64decode(v) for k, v in master_keys.items()}, active_key_id)

    @staticmethod
    def generate_key() -> str:
        return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def seal(self, fields: dict[str, Any], *, record_id: str) -> Sealed:
        aad = record_id.encode()
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, orjson.dumps(fields), aad)
        key_nonce = os.urandom(NONCE_BYTES)
        wrapped = key_nonce + self._keys[self._active].encrypt(key_nonce, data_key, aad)
        return Sealed(ciphertext=ciphertext, wrapped_key=wrapped, master_key_id=self._active)

    def open(self, sealed: Sealed, *, record_id: str) -> dict[str, Any]:
        aad = record_id.encode()
        master = self._keys.get(sealed.master_key_id)
        if master is None:
            raise SealError(f"master key {sealed.master_key_id!r} is not configured")
        try:
            wk = sealed.wrapped_key
            data_key = master.decrypt(wk[:NONCE_BYTES], wk[NONCE_BYTES:], aad)
            ct = sealed.ciphertext
            plain = AESGCM(data_key).decrypt(ct[:NONCE_BYTES], ct[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise SealError("sealed record does not open") from exc
        fields: dict[str, Any] = orjson.loads(plain)
        return fields

    def open_row(
        self, row: Any, *, record_id: str, column: str = "sealed", prefix: str = ""
    ) -> dict[str, Any]:
        """The fields sealed into a table row: its `column`, `wrapped_key` and `master_key_id`
        (named with `prefix` where a table seals more than one thing)."""
        sealed = Sealed(
            getattr(row, column),
            getattr(row, f"{prefix}wrapped_key"),
            getattr(row, f"{prefix}master_key_id"),
        )
        return self.open(sealed, record_id=record_id)

    def new_data_key(self, *, record_id: str) -> tuple[bytes, bytes, str]:
        """A fresh data key for many records (audit's key per referral): the key itself, the
        key wrapped by the active master key, and that master key's id. Destroying every
        wrapped copy destroys what the key sealed."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + self._keys[self._active].encrypt(nonce, data_key, record_id.encode())
        return data_key, wrapped, self._active

    def mac(self, message: bytes, *, purpose: str) -> bytes:
        """HMAC-SHA256 of `message` under a key derived (HKDF) from the active master key for
        `purpose` alone: tokens it proves stop verifying when the master key rotates."""
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            self._raw[self._active]
        )
        return hmac.new(key, message, hashlib.sha256).digest()

    def unwrap(self, wrapped: bytes, master_key_id: str, *, record_id: str) -> bytes:
        """The data key from `new_data_key`'s wrapped copy."""
        master = self._keys.get(master_key_id)
        if master is None:
            raise SealError(f"master key {master_key_id!r} is not configured")
        try:
            return master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], record_id.encode())
        except InvalidTag as exc:
            raise SealError("wrapped key does not open") from exc


def seal_bytes(key: bytes, plain: bytes, *, aad: bytes) -> bytes:
    """AES-256-GCM under a data key: nonce + ciphertext."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad)


def open_bytes(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise SealError("sealed data does not open") from exc


def newest_key_id(key_ids: Iterable[str]) -> str:
    """The newest of some key ids: digit runs compare as numbers (`k10` after `k9`)."""

    def order(kid: str) -> list[tuple[int, int | str]]:
        return [(0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(kid)]

    return max(key_ids, key=order)


_DIGITS = re.compile(r"(\d+)")


class MissingMasterKeys(RuntimeError):
    """No master keys are configured and generating them is not allowed."""


def vault_from_settings(settings: Settings) -> Vault:
    """Master keys from a secret (`NRM_<SERVICE>_MASTER_KEYS` or `..._MASTER_KEYS_FILE`). Only in
    development (`generate_master_keys`, set by `nrm up`) are they generated and kept in
    `$NRM_DATA_DIR/<service>-master-keys.json` (mode 600) instead."""
    active = settings.active_master_key
    if settings.master_keys:
        keys = {k: v.get_secret_value() for k, v in settings.master_keys.items()}
    elif settings.master_keys_file is not None:
        data = json.loads(settings.master_keys_file.read_text())
        keys = data.get("keys", data) if isinstance(data, dict) else {}
        active = active or data.get("active")
    elif settings.generate_master_keys:
        path = settings.data_dir / f"{settings.service}-master-keys.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"active": "k1", "keys": {"k1": Vault.generate_key()}}, f)
        data = json.loads(Path(path).read_text())
        keys, active = data["keys"], active or data.get("active")
    else:
        prefix = f"NRM_{settings.service.upper()}"
        raise MissingMasterKeys(
            f"no master keys for {settings.service}: set {prefix}_MASTER_KEYS or "
            f"{prefix}_MASTER_KEYS_FILE (`nrm keys generate` makes one)"
        )
    if not keys:
        raise MissingMasterKeys(f"the master keys of {settings.service} are empty")
    return Vault.from_config(keys, active or newest_key_id(keys))
