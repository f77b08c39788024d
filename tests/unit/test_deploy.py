"""The deployment files name only settings that exist, for the service that reads them."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from services.stack import SERVICES, SETTINGS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def accepted(service: str) -> set[str]:
    """Environment variables the service's settings read: NRM_<FIELD> and NRM_<SERVICE>_<FIELD>."""
    fields = [name.upper() for name in SETTINGS[service].model_fields]
    return {f"NRM_{f}" for f in fields} | {f"NRM_{service.upper()}_{f}" for f in fields}


def unknown(service: str, names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("NRM_")} - accepted(service)


def test_compose_references_only_settings_that_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    served = {}
    for name, spec in compose["services"].items():
        command = spec.get("command") or []
        if command[:1] == ["serve"]:
            served[command[1]] = name
            assert "--migrate" in command, name
            env = set(spec.get("environment", {}))
            assert not unknown(command[1], env), (name, unknown(command[1], env))
            assert {"NRM_KAFKA_BOOTSTRAP", "NRM_DATABASE_URL"} <= env
    assert set(served) == set(SERVICES)
    assert compose["services"]["notify"]["environment"]["NRM_NOTIFY_SMTP_HOST"] == "mail"


def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # not every machine has kubectl: read the base files as written
        docs: list[dict[str, Any]] = []
        for path in sorted((DEPLOY / "k8s" / "base").glob("*.yaml")):
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
        return docs
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kubernetes_manifests_render_and_reference_only_settings_that_exist() -> None:
    docs = rendered()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for service in SERVICES:
        assert ("Deployment", service) in kinds and ("Service", service) in kinds
        assert ("PodDisruptionBudget", service) in kinds
    assert {n for k, n in kinds if k == "HorizontalPodAutoscaler"} == {"router", "notify"}
    assert {n for k, n in kinds if k == "KafkaTopic"} == {
        "nrm.referrals.v1",
        "nrm.routing.v1",
        "nrm.case-events.v1",
        "nrm.access.v1",
        "nrm.deadletter.v1",
    }
    assert any(k == "NetworkPolicy" for k, _ in kinds)
    env_literals: set[str] = set()
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        env_literals |= {lit.split("=", 1)[0] for lit in generator.get("literals", [])}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        service = d["metadata"]["name"]
        spec = d["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            names = {e["name"] for e in container.get("env", [])} | env_literals
            assert not unknown(service, names), (
                service,
                container["name"],
                unknown(service, names),
            )
        assert spec["securityContext"]["runAsNonRoot"] is True
        main = spec["containers"][0]
        assert main["args"] == ["serve", service]
        assert spec["initContainers"][0]["args"] == ["db", "upgrade", service]
        # Secrets are referenced by name, never inlined.
        for e in main.get("env", []):
            assert "value" not in e, (service, e["name"])


def test_dockerfile_runs_nrm_as_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in text and 'ENTRYPOINT ["nrm"]' in text and "HEALTHCHECK" in text


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from the settings classes (`nrm docs settings`)."""
    from services import reference

    assert not reference.stale(), "run: .venv/bin/nrm docs settings"
    text = reference.REFERENCE.read_text()
    for service, cls in SETTINGS.items():
        for name in cls.model_fields:
            assert name.upper() in text, (service, name)
