"""The GPU job templates under deployments/ (issue 12, items 4 and 5): the self-play outbox is on a volume that
outlives the container or pod, and the Kubernetes template takes every credential from a Secret (secretKeyRef),
never as a literal value. The templates are parsed and rendered with Prefect's own templating, as a worker does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.utilities.templating import apply_values

REPO = Path(__file__).resolve().parents[1]
CREDENTIALS = ("HF_TOKEN", "WANDB_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)


def template(kind: str) -> dict[str, Any]:
    return json.loads((REPO / "deployments" / f"{kind}-gpu-job-template.json").read_text())


def render(kind: str, **job_variables: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the job configuration a worker would get, the variables used) for the defaults plus `job_variables`."""
    t = template(kind)
    values = {k: v["default"] for k, v in t["variables"]["properties"].items() if "default" in v}
    values.update(job_variables)
    return apply_values(t["job_configuration"], values), values


def pod_spec(rendered: dict[str, Any]) -> dict[str, Any]:
    return rendered["job_manifest"]["spec"]["template"]["spec"]


def dockerfile_env(name: str) -> str:
    match = re.search(rf"^\s*{name}=(\S+)", (REPO / "deployments" / "Dockerfile").read_text(), re.MULTILINE)
    assert match, f"the worker image sets no {name}"
    return match.group(1)


# ---------------------------------------------------------------- the outbox on a persistent volume
@pytest.mark.parametrize(
    "volume",
    [None, {"name": "outbox", "persistentVolumeClaim": {"claimName": "zeb-outbox-gpu0"}}],
    ids=["default-hostpath", "pvc-per-worker"],
)
def test_kubernetes_pods_keep_the_outbox_on_a_persistent_volume(volume: dict | None) -> None:
    rendered, values = render("kubernetes", **({"outbox_volume": volume} if volume else {}))
    spec = pod_spec(rendered)
    container = spec["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    outbox = env["ZEB_OUTBOX_DIR"]["value"]
    assert outbox == values["outbox_dir"] and outbox.startswith("/") and not outbox.startswith("/dev/shm")
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == outbox]
    [source] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" not in source, "an emptyDir dies with the pod"
    if volume is None:
        assert source["hostPath"]["path"].startswith("/") and source["hostPath"]["type"] == "DirectoryOrCreate"
    else:
        assert source == volume
    assert dockerfile_env("ZEB_OUTBOX_DIR") == outbox, "the image and the template agree on the outbox folder"
    assert "outbox_volume" in template("kubernetes")["variables"]["properties"]


def test_docker_containers_keep_the_outbox_on_a_named_volume() -> None:
    rendered, _ = render("docker")
    outbox = rendered["env"]["ZEB_OUTBOX_DIR"]
    assert outbox.startswith("/")
    mounts = [v.split(":") for v in rendered["volumes"]]
    [source] = [m[0] for m in mounts if len(m) >= 2 and m[1] == outbox]
    assert source and not source.startswith(("/tmp", "/dev")), "a named volume or a host folder, not anonymous"
    assert dockerfile_env("ZEB_OUTBOX_DIR") == outbox
    # A deployment that adds a volume keeps the outbox only if it keeps the default entry: the description says so.
    assert "keep that entry" in template("docker")["variables"]["properties"]["volumes"]["description"]


def test_the_worker_deployment_leaves_the_outbox_to_the_template() -> None:
    """prefect.yaml must not pin the outbox to a folder in the container (that would bypass the volume)."""
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    params = deployments["selfplay-worker"]["parameters"]["settings"]
    assert "outbox" in params and params["outbox"] is None


# ---------------------------------------------------------------- secrets
def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, string) in a JSON tree, dict keys included in the path."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def test_kubernetes_credentials_come_from_secret_key_refs() -> None:
    t = template("kubernetes")
    rendered, values = render("kubernetes")
    container = pod_spec(rendered)["containers"][0]
    by_name = {e["name"]: e for e in container["env"]}
    for var in CREDENTIALS:
        entry = by_name[var]
        assert "value" not in entry, f"{var} is a literal"
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == values["credentials_secret"] and ref["key"] == var
    # No secret-looking variable anywhere in the pod's env or the flow-run env is a value, literal or templated.
    for entry in container["env"]:
        if SECRET_NAME.search(entry["name"]):
            assert set(entry) == {"name", "valueFrom"}, entry
    env_default = t["variables"]["properties"]["env"]["default"]
    assert not [k for k in env_default if SECRET_NAME.search(k)], f"credentials in the env default: {env_default}"
    assert rendered["env"] == env_default
    # And nothing in the whole template looks like a credential value or reads one into a literal.
    for path, text in _strings(t):
        assert not re.search(r"\bhf_[A-Za-z0-9]{20,}|\bAKIA[A-Z0-9]{12,}|prefect\.blocks\.secret", text), (path, text)


def test_the_secret_check_catches_a_literal() -> None:
    """The check above fails for the old style (a value in the env) — so it can fail."""
    rendered, _ = render("kubernetes")
    container = pod_spec(rendered)["containers"][0]
    container["env"].append({"name": "HF_TOKEN", "value": "{{ prefect.blocks.secret.zeb-hf-token }}"})
    bad = [e for e in container["env"] if SECRET_NAME.search(e["name"]) and set(e) != {"name", "valueFrom"}]
    assert [e["name"] for e in bad] == ["HF_TOKEN"]
