"""The shipped example configuration is valid against the contracts."""

from pathlib import Path

import yaml

from contracts.referrals import Agency
from tests.support import EXAMPLE_AGENCIES

CONFIG = Path(__file__).parents[2] / "deploy" / "config"


def test_example_agencies_validate() -> None:
    data = yaml.safe_load((CONFIG / "agencies.yaml").read_text())
    agencies = [Agency.model_validate(a) for a in data["agencies"]]
    ids = [a.id for a in agencies]
    assert len(ids) == len(set(ids))
    assert set(ids) == EXAMPLE_AGENCIES
    covered = [r for a in agencies for r in a.regions]
    assert len(covered) == len(set(covered)), "a region is covered by two shelters"
