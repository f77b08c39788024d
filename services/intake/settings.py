from pathlib import Path
from typing import ClassVar

from services.common.settings import Settings, agencies_file

# Agency types that may name other agencies implicated in a case (besides the submitter).
OVERSIGHT_TYPES = frozenset({"prosecutor", "coordinator"})
# Agency types that open (or refuse) pre-trial investigations.
LAW_ENFORCEMENT_TYPES = frozenset({"police", "prosecutor", "anti_corruption"})


def _read(path: Path) -> tuple[tuple[str, str], ...]:
    """(id, type) of each agency in `path` (an `agencies.yaml`)."""
    return agencies_file(path.parent).agencies


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    page_size_max: int = 100
    """Largest page of `GET /v1/referrals`."""

    identification_sweep_seconds: float = 30.0
    """How often the identification clock looks for missed reasonable-grounds deadlines and
    ended reflection periods."""

    policy_file: Path | None = None
    """The policy file whose `retention:` section schedules erasure (default: `routing.yaml` in
    the configuration directory, the router's policy: `NRM_POLICY_FILE` sets both)."""

    retention_sweep_seconds: float = 86_400.0
    """How often the retention sweep erases the referrals past their retention period (daily)."""

    retention_clock_offset_days: float = 0.0
    """Days added to the clock the retention sweep and `GET /v1/retention/due` read: drills and
    tests see what a later date would erase. Keep 0 in production."""

    audit_url: str | None = None
    """Where intake reads the audit service's API (a subject-access request lists every access
    to the referral; default: `auth_issuer`, the stack or a proxy routing by path)."""

    audit_timeout_seconds: float = 15.0
    """How long a subject-access request waits for the audit service."""

    @property
    def policy_path(self) -> Path:
        return self.policy_file or self.config_dir / "routing.yaml"

    @property
    def audit_base(self) -> str:
        return (self.audit_url or self.auth_issuer).rstrip("/")

    def investigators(self) -> frozenset[str]:
        """Law-enforcement agencies (by type in `agencies.yaml`): they record investigations."""
        path = self.config_dir / "agencies.yaml"
        return frozenset(a for a, kind in _read(path) if kind in LAW_ENFORCEMENT_TYPES)

    def coordinators(self) -> frozenset[str]:
        """The national coordinator (type `coordinator` in `agencies.yaml`): it follows every
        authority's identification clocks."""
        path = self.config_dir / "agencies.yaml"
        return frozenset(a for a, kind in _read(path) if kind == "coordinator")

    def overseers(self) -> frozenset[str]:
        """Agencies (prosecutors, the coordinator, by type in `agencies.yaml`) that may name
        agencies implicated in a referral routed to them."""
        path = self.config_dir / "agencies.yaml"
        return frozenset(a for a, kind in _read(path) if kind in OVERSIGHT_TYPES)

    def agencies(self) -> frozenset[str]:
        """Every configured agency (`agencies.yaml`): an agency named implicated must be one.
        Empty when there is no file (then names are not checked)."""
        return frozenset(a for a, _ in _read(self.config_dir / "agencies.yaml"))
