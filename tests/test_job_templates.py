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
    [
        None,
        {"name": "outbox", "persistentVolumeClaim": {"claimName": "zeb-outbox-gpu0"}},
        {"name": "outbox", "hostPath": {"path": "/var/lib/zeb/outbox", "type": "DirectoryOrCreate"}},
    ],
    ids=["default-pvc", "pvc-per-worker", "node-folder"],
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
    if volume is None:  # by default a claim, which outlives the pod and the node (a hostPath dies with the node)
        assert set(source) == {"name", "persistentVolumeClaim"} and source["persistentVolumeClaim"]["claimName"]
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


# ---------------------------------------------------------------- privileges (issue 35, item 13)
def _placeholders(node: Any) -> set[str]:
    """The job variables a template's job configuration reads (`{{ name }}`)."""
    return {m for _, text in _strings(node) for m in re.findall(r"\{\{\s*([\w.-]+)\s*\}\}", text)}


def dockerfile_user() -> tuple[int, int]:
    text = (REPO / "deployments" / "Dockerfile").read_text()
    [user] = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    uid, gid = (re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], part) for part in user.split(":"))
    return int(uid), int(gid)


def test_a_docker_run_cannot_ask_for_privileges() -> None:
    """`privileged` is no job variable: nothing a deployment or a run passes makes the container privileged, and the
    container runs as the image's non-root user without capabilities or privilege escalation, whatever the image."""
    t = template("docker")
    assert "privileged" not in t["variables"]["properties"]
    assert "privileged" not in t["job_configuration"] and "privileged" not in _placeholders(t["job_configuration"])
    rendered, _ = render("docker", privileged=True, image="someone/else:latest")
    assert "privileged" not in rendered and '"privileged": true' not in json.dumps(rendered).lower()
    kwargs = rendered["container_create_kwargs"]
    assert kwargs["user"] == "{}:{}".format(*dockerfile_user()) and not kwargs["user"].startswith("0")
    assert kwargs["cap_drop"] == ["ALL"] and "no-new-privileges:true" in kwargs["security_opt"]
    assert not _placeholders({k: v for k, v in t["job_configuration"]["container_create_kwargs"].items()}) - {
        "gpu_device_ids",
        "shm_size",
    }, "no run chooses the user, the capabilities or the security options"


def test_kubernetes_pods_run_as_a_non_root_user_without_privileges() -> None:
    t = template("kubernetes")
    rendered, _ = render("kubernetes")
    spec = pod_spec(rendered)
    pod, container = spec["securityContext"], spec["containers"][0]["securityContext"]
    uid, gid = dockerfile_user()
    assert pod["runAsNonRoot"] is True and container["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid) and uid != 0
    assert container["allowPrivilegeEscalation"] is False and container["privileged"] is False
    assert container["capabilities"] == {"drop": ["ALL"]} and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    # With a read-only root, what Python, Prefect, torch and W&B write goes to the writable volumes: /tmp and HOME.
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for folder in ("/tmp", dockerfile_env("HOME")):
        assert "emptyDir" in volumes[mounts[folder]], f"{folder} is writable"
    assert dockerfile_env("WANDB_DIR").startswith(dockerfile_env("HOME"))
    manifest = t["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    for context in (manifest["securityContext"], manifest["containers"][0]["securityContext"]):
        assert not _placeholders(context), "no job variable changes the security context"


def test_the_image_runs_as_a_non_root_user_under_the_init() -> None:
    text = (REPO / "deployments" / "Dockerfile").read_text()
    uid, gid = dockerfile_user()
    assert uid >= 1000 and gid >= 1000
    assert text.rindex("\nUSER ") > text.rindex("\nRUN "), "nothing runs as root after USER"
    [entrypoint] = re.findall(r"^ENTRYPOINT\s+(.+)$", text, re.MULTILINE)
    assert json.loads(entrypoint)[-1] == "/opt/zeb/deployments/container_init.py"
    assert (REPO / "deployments" / "container_init.py").is_file()
    assert re.search(r"chown -R zeb:zeb /var/lib/zeb /home/zeb", text), "the user owns the outbox and its home"


def documented_worst_stop_s() -> float:
    """The learner's worst stop, as deployments/README.md documents it (measured by bench/learner_stop.py)."""
    text = (REPO / "deployments" / "README.md").read_text()
    match = re.search(r"Learner's worst stop: \*\*(\d+(?:\.\d+)?) s\*\* \(`bench/learner_stop.py`", text)
    assert match, "deployments/README.md documents the learner's worst stop"
    assert (REPO / "bench" / "learner_stop.py").is_file()
    return float(match.group(1))


def test_a_deleted_pod_has_time_for_the_learners_last_push() -> None:
    """The pod's grace period (SIGTERM to SIGKILL) covers the learner's worst stop, by default and at its minimum,
    and a run cannot set it lower: the Prefect server checks a run's job variables against the schema."""
    from prefect.utilities.schema_tools import validate

    worst = documented_worst_stop_s()
    schema = template("kubernetes")["variables"]
    variable = schema["properties"]["termination_grace_period_seconds"]
    rendered, values = render("kubernetes")
    grace = pod_spec(rendered)["terminationGracePeriodSeconds"]
    assert isinstance(grace, int) and grace == values["termination_grace_period_seconds"]
    assert grace >= 5 * worst, "room for a remote store's upload and a busy node"
    assert variable["type"] == "integer" and variable["minimum"] >= 2 * worst
    longer, _ = render("kubernetes", termination_grace_period_seconds=1200)
    assert pod_spec(longer)["terminationGracePeriodSeconds"] == 1200
    assert not validate({**values, "termination_grace_period_seconds": 1200}, schema)
    assert validate({**values, "termination_grace_period_seconds": int(worst) // 2}, schema), "too short: refused"


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_prefect_accepts_the_templates_as_work_pool_templates(kind: str) -> None:
    """The check `prefect work-pool create --base-job-template` makes: every placeholder is a declared variable."""
    from prefect.server.schemas.actions import WorkPoolCreate

    WorkPoolCreate(name="zeb-gpu", type=kind, base_job_template=template(kind))
    stale = template(kind)
    stale["job_configuration"]["privileged"] = "{{ privileged }}"  # a placeholder without its variable
    with pytest.raises(ValueError, match="must be present"):
        WorkPoolCreate(name="zeb-gpu", type=kind, base_job_template=stale)
