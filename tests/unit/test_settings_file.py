"""`agencies.yaml` is asked for on every submission (the region check): it is parsed once per
version of the file, and a new version is read even when it keeps the old modification time."""

import os
from pathlib import Path

from services.common.settings import AgenciesFile, Settings

FIRST = "country: KZ\nagencies:\n  - {id: ngo-south, type: ngo}\n"
SECOND = "country: UZ\nagencies:\n  - {id: mvd-ctu, type: police}\n  - {id: ngo-south, type: ngo}\n"


def test_a_new_version_is_read_even_with_the_old_modification_time(tmp_path: Path) -> None:
    settings = Settings(config_dir=tmp_path)
    assert settings.served_country() is None
    assert settings.configured_agencies() == frozenset()
    path = tmp_path / "agencies.yaml"
    path.write_text(FIRST)
    assert settings.served_country() == "KZ"
    assert settings.configured_agencies() == frozenset({"ngo-south"})
    old = path.stat()
    path.write_text(SECOND)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # as `cp -p` leaves it
    assert settings.served_country() == "UZ"
    assert settings.configured_agencies() == frozenset({"mvd-ctu", "ngo-south"})


def test_what_is_shared_cannot_be_changed_by_a_caller(tmp_path: Path) -> None:
    (tmp_path / "agencies.yaml").write_text(FIRST)
    from services.common.settings import agencies_file

    read = agencies_file(tmp_path)
    assert read == AgenciesFile("KZ", (("ngo-south", "ngo"),))
    assert isinstance(read.agencies, tuple)
