"""Hardening of the parts, without a broker: master keys and their order, files at rest, the
routing policy with disabled agencies, the failure throttle, and what `/metrics` and the API
docs show depending on settings."""

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import text
from starlette.requests import Request

from contracts.referrals import ReferralIn, RoutingFacts, TipIn, VictimReferralIn
from services.common.app import create_app
from services.common.crypto import MissingMasterKeys, Vault, newest_key_id, vault_from_settings
from services.common.db import create_engine
from services.common.settings import Settings
from services.identity.signin import _device_proof, _throttle_key
from services.identity.throttle import FailureThrottle
from services.intake.settings import IntakeSettings
from services.router.policy import Policy
from services.router.settings import EXAMPLE_POLICY
from tests.unit.test_contracts import REFERRAL_EXAMPLE

# Master keys


def test_the_newest_key_id_is_chosen_in_numeric_order() -> None:
    assert newest_key_id(["k9", "k10"]) == "k10"
    assert newest_key_id(["k2", "k10", "k9", "k1"]) == "k10"
    assert newest_key_id(["2026-01", "2026-12", "2026-02"]) == "2026-12"
    assert newest_key_id(["a", "b"]) == "b"


def test_k10_seals_new_records_when_k9_and_k10_are_configured(tmp_path: Path) -> None:
    keys = {"k9": Vault.generate_key(), "k10": Vault.generate_key()}
    vault = vault_from_settings(IntakeSettings(data_dir=tmp_path, master_keys=keys))
    assert vault.seal({"x": 1}, record_id="r").master_key_id == "k10"
    pinned = IntakeSettings(data_dir=tmp_path, master_keys=keys, active_master_key="k9")
    assert vault_from_settings(pinned).seal({"x": 1}, record_id="r").master_key_id == "k9"


def test_production_keys_come_from_a_secret_and_never_from_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NRM_GENERATE_MASTER_KEYS", raising=False)
    data = tmp_path / "data"
    with pytest.raises(MissingMasterKeys, match="NRM_INTAKE_MASTER_KEYS"):
        vault_from_settings(IntakeSettings(data_dir=data))
    assert not data.exists()  # nothing generated, nothing written
    secret = tmp_path / "run-secrets" / "intake-master-keys"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"k9": Vault.generate_key(), "k10": Vault.generate_key()}))
    vault = vault_from_settings(IntakeSettings(data_dir=data, master_keys_file=secret))
    assert vault.seal({"x": 1}, record_id="r").master_key_id == "k10"
    assert not data.exists()
    # Development (`nrm up`): generated once, the owner's alone, in a folder of its own.
    dev = IntakeSettings(data_dir=data, generate_master_keys=True)
    sealed = vault_from_settings(dev).seal({"x": 1}, record_id="r")
    assert vault_from_settings(dev).open(sealed, record_id="r") == {"x": 1}
    generated = data / "intake-master-keys.json"
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


# Files at rest


async def test_sqlite_files_are_the_owners_alone(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    engine = create_engine(f"sqlite+aiosqlite:///{folder}/intake.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:  # WAL mode: -wal and -shm exist now
            await conn.execute(text("SELECT * FROM t"))
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()
            }
    finally:
        await engine.dispose()
    assert modes == {"intake.db": 0o600, "intake.db-wal": 0o600, "intake.db-shm": 0o600}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    old = tmp_path / "audit.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    engine = create_engine(f"sqlite+aiosqlite:///{old}")
    await engine.dispose()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


# Routing around disabled agencies

POLICY = Policy.load(EXAMPLE_POLICY)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
_referral: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)


def facts(region: str) -> RoutingFacts:
    body = json.loads(REFERRAL_EXAMPLE) | {"region": region}
    return RoutingFacts.from_referral(
        _referral.validate_json(json.dumps(body)), submitted_by="labour-insp"
    )


def recipients(region: str, unavailable: frozenset[str] = frozenset()) -> dict[str, str]:
    evaluation = POLICY.evaluate(facts(region), now=NOW, unavailable=unavailable)
    return {p.agency: p.rule for p in evaluation.recipients}


def test_a_disabled_shelter_is_absent_and_the_fallback_applies() -> None:
    assert recipients("KZ-71") == {"ngo-north": "services-shelter", "mvd-ctu": "police"}
    assert recipients("KZ-71", frozenset({"ngo-north"})) == {
        "nrm-coordinator": "services-shelter",
        "mvd-ctu": "police",
    }
    # ngo-south's regions are untouched by ngo-north being disabled.
    assert recipients("KZ-79", frozenset({"ngo-north"}))["ngo-south"] == "services-shelter"
    trace = POLICY.evaluate(facts("KZ-71"), now=NOW, unavailable={"ngo-north"}).trace
    (shelter,) = [step for step in trace if step.rule == "services-shelter"]
    assert shelter.notes == [
        "the shelter covering KZ-71 is not available (ngo-north disabled); fallback nrm-coordinator"
    ]


def test_a_disabled_named_agency_gets_nothing_and_the_default_still_catches_all() -> None:
    assert recipients("KZ-71", frozenset({"mvd-ctu"})) == {"ngo-north": "services-shelter"}
    # Everyone a rule could choose is disabled: the default takes it, so nothing is dropped.
    gone = frozenset({"mvd-ctu", "ngo-north", "nrm-coordinator"})
    assert recipients("KZ-71", gone) == {"nrm-coordinator": "default"}


# The failure throttle


def test_a_throttled_key_waits_for_one_failure_to_refill() -> None:
    throttle = FailureThrottle(burst=3, window=30)  # one failure forgiven every 10 s
    for second in range(3):
        assert throttle.retry_after("c", now=float(second)) is None
        throttle.failed("c", now=float(second))
    # 3 - 3 failures + 0.3 refilled by t = 3: 0.7 of a failure to go, 7 s.
    assert throttle.retry_after("c", now=3.0) == 7
    assert throttle.retry_after("other", now=3.0) is None
    assert throttle.retry_after("c", now=9.5) == 1
    assert throttle.retry_after("c", now=10.5) is None


# What /metrics and the docs show


async def get(settings: Settings, path: str, **headers: str) -> httpx.Response:
    app = create_app(title="t", service="svc", settings=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path, headers=headers)


async def test_metrics_and_docs_follow_the_settings() -> None:
    assert (await get(Settings(), "/metrics")).status_code == 200
    assert (await get(Settings(), "/openapi/svc.json")).status_code == 200
    assert (await get(Settings(), "/docs")).status_code == 200
    assert (await get(Settings(), "/openapi.json")).status_code == 404
    assert (await get(Settings(), "/redoc")).status_code == 404
    closed = Settings(metrics_enabled=False, api_docs_enabled=False)
    for path in ("/metrics", "/openapi/svc.json", "/docs"):
        assert (await get(closed, path)).status_code == 404, path
    guarded = Settings(metrics_token="s3cret")
    assert (await get(guarded, "/metrics")).status_code == 401
    assert (await get(guarded, "/metrics", authorization="Bearer wrong")).status_code == 401
    r = await get(guarded, "/metrics", authorization="Bearer s3cret")
    assert r.status_code == 200 and "nrm_http_requests_total" in r.text


def test_a_device_cookie_counts_only_when_its_proof_is_the_persons() -> None:
    """The sign-in throttle's key: a browser's own for the person's device cookie, else the
    username's; a forged cookie with non-ASCII characters once answered 500."""
    vault = Vault.from_config({"k1": Vault.generate_key()}, "k1")

    def key(cookie: bytes, username: str = "gp.caseworker") -> str:
        scope = {"type": "http", "method": "POST", "headers": [(b"cookie", cookie)]}
        return _throttle_key(Request(scope), vault, username)

    proof = _device_proof(vault, "gp.caseworker", "n0nce").encode()
    assert key(b"nrm_device=n0nce." + proof) == "device:n0nce"
    assert key(b"nrm_device=n0nce." + proof, "gp.referrer") == "gp.referrer"
    assert key(b"nrm_device=other." + proof) == "gp.caseworker"
    assert key("nrm_device=x.é".encode()) == "gp.caseworker"
    assert key(b'nrm_device="x.\\303\\251"') == "gp.caseworker"
    assert key(b"nrm_device=n0nce") == "gp.caseworker"
    assert key(b"") == "gp.caseworker"
