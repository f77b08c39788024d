import functools
from pathlib import Path
from typing import ClassVar

import yaml

from services.common.settings import Settings

# Agency types that may name other agencies implicated in a case (besides the submitter).
OVERSIGHT_TYPES = frozenset({"prosecutor", "coordinator"})
# Agency types that open (or refuse) pre-trial investigations.
LAW_ENFORCEMENT_TYPES = frozenset({"police", "prosecutor", "anti_corruption"})


@functools.cache
def _agencies(path: Path, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    """(id, type) of each agency in the file, read once per version of it."""
    data = yaml.safe_load(path.read_text()) or {}
    return tuple((str(a["id"]), str(a.get("type", ""))) for a in data.get("agencies", []))


def _read(path: Path) -> tuple[tuple[str, str], ...]:
    if not path.is_file():
        return ()
    return _agencies(path, path.stat().st_mtime_ns)


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    page_size_max: int = 100
    """Largest page of `GET /v1/referrals`."""

    identification_sweep_seconds: float = 30.0
    """How often the identification clock looks for missed reasonable-grounds deadlines and
    ended reflection periods."""

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
