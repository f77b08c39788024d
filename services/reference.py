"""The configuration reference (docs/configuration.md), generated from the settings classes so
that it cannot drift from them: `nrm docs settings` writes it, a test fails when it is stale."""

from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from services.common.settings import Settings
from services.stack import SETTINGS

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _default(field: FieldInfo, name: str) -> str:
    if name == "config_dir":
        return "`deploy/config` of the installation"
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == {} or value == []:
        return "empty"
    return f"`{value}`"


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("pydantic.types.", "")
    text = text.replace("<class '", "").replace("'>", "").replace("pathlib.", "")
    return text.replace(" | None", " (optional)").replace("|", "\\|")


def _rows(cls: type[Settings], fields: list[str], prefix: str) -> list[str]:
    rows = []
    for name in fields:
        field = cls.model_fields[name]
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        variable = f"`{prefix}{name.upper()}`"
        rows.append(f"| {variable} | {_type(field)} | {_default(field, name)} | {description} |")
    return rows


def render() -> str:
    shared = list(Settings.model_fields)
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings classes by `nrm docs settings`; do not edit by hand.",
        "",
        "Every service reads the shared `NRM_*` variables; a service-specific",
        "`NRM_<SERVICE>_*` overrides one for that service only (for example",
        "`NRM_INTAKE_MASTER_KEYS`, `NRM_AUDIT_DATABASE_URL`).",
        "",
        "## Shared (every service)",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
        *_rows(Settings, shared, "NRM_"),
    ]
    for service, cls in SETTINGS.items():
        own = [n for n in cls.model_fields if n not in shared]
        if not own:
            continue
        prefix = f"NRM_{service.upper()}_"
        lines += [
            "",
            f"## {service}",
            "",
            "| variable | type | default | meaning |",
            "|---|---|---|---|",
            *_rows(cls, own, prefix),
        ]
    return "\n".join(lines) + "\n"


def stale() -> bool:
    return not REFERENCE.exists() or REFERENCE.read_text() != render()


def write() -> None:
    REFERENCE.write_text(render())
