"""The weights bundle: model tensors, their config, the training state and the optimizer, as plain files.

For a namespace NAME the files are (the same in a checkpoint folder and in any store):

    NAME.safetensors            model tensors
    NAME-config.json            architecture, size, dims, format version (validated by zeb_core.model.config)
    NAME-optimizer.safetensors  optimizer tensors; its param groups ride in the safetensors metadata (optional)
    NAME-state.json             step, total games, examples ingested, optimizer step, SHA-256 of the weights
                                file and of the optimizer file, time, learner id, ingest cursor

The state file names the SHA-256 of the others, so a reader can tell a consistent set from a torn one; writers put
it last. Nothing here unpickles: tensors are safetensors, everything else is JSON.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zeb_core.formats.safe_io import (
    DTYPE_BYTES,
    MAX_HEADER_BYTES,
    FormatError,
    check_size,
    dump_safetensors,
    guard_format_errors,
    load_json,
    parse_safetensors,
    read_bounded,
    sha256_hex,
)

WEIGHTS_FORMAT_VERSION = 1
DEFAULT_NAME = "model"
STATE_COUNTS = (
    "step",
    "total_games",
    "examples_ingested",
    "optimizer_step",
    "examples_dropped_stale",
    "files_quarantined",
)
_OPT_TENSOR = re.compile(r"^state\.([0-9]{1,9})\.([^.]+)$")

MAX_MODEL_PARAMETERS = 50_000_000
"""The largest network a config may describe (`zeb_core.model.config.ModelConfig` refuses more): 15 times the
large preset's 3.3M parameters. The weights files' size limits below follow from it."""
_WIDEST = max(DTYPE_BYTES.values())  # bytes per value of the widest dtype a bundle may hold (float64)
MAX_WEIGHTS_FILE_BYTES = 8 + MAX_HEADER_BYTES + MAX_MODEL_PARAMETERS * _WIDEST
"""NAME.safetensors: every parameter of the largest network, in the widest float, and the largest header."""
MAX_OPTIMIZER_FILE_BYTES = 8 + MAX_HEADER_BYTES + 3 * MAX_MODEL_PARAMETERS * _WIDEST + (1 << 20)
"""NAME-optimizer.safetensors: up to three moments per parameter (AdamW with amsgrad), and 1 MiB of scalars."""
MAX_JSON_FILE_BYTES = 64 << 20
"""NAME-config.json and NAME-state.json: the state's cursor names every example file read and still stored."""
FILE_LIMITS = {
    "weights": MAX_WEIGHTS_FILE_BYTES,
    "config": MAX_JSON_FILE_BYTES,
    "optimizer": MAX_OPTIMIZER_FILE_BYTES,
    "state": MAX_JSON_FILE_BYTES,
}
"""The size limit of each file of a bundle, by its key in `weights_filenames`: checked before it is read."""


def weights_filenames(name: str) -> dict[str, str]:
    return {
        "weights": f"{name}.safetensors",
        "config": f"{name}-config.json",
        "optimizer": f"{name}-optimizer.safetensors",
        "state": f"{name}-state.json",
    }


@dataclass
class WeightsBundle:
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None  # a torch optimizer state_dict

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))


def default_state(step: int = 0, **extra: Any) -> dict[str, Any]:
    state = {
        "format_version": WEIGHTS_FORMAT_VERSION,
        "step": step,
        "total_games": 0,
        "examples_ingested": 0,
        "optimizer_step": 0,
        "time": time.time(),
        "learner_id": None,
    }
    state.update(extra)
    return state


# ---------------------------------------------------------------- optimizer state <-> tensors + JSON
def optimizer_to_tensors(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd.get("state", {}).items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {"param_groups": json.dumps(sd.get("param_groups", [])), "scalars": json.dumps(scalars)}
    return tensors, meta


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict[str, Any]:
    if "param_groups" not in meta:
        raise FormatError("optimizer metadata has no param_groups")
    groups = load_json(meta["param_groups"], "optimizer param_groups")
    scalars = load_json(meta.get("scalars", "{}"), "optimizer scalars")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise FormatError("optimizer param_groups must be a list of objects")
    if not isinstance(scalars, dict) or not all(
        re.fullmatch(r"[0-9]{1,9}", pid) and isinstance(extra, dict) for pid, extra in scalars.items()
    ):
        raise FormatError("optimizer scalars must map parameter numbers to objects")
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        m = _OPT_TENSOR.match(name)
        if m is None:
            raise FormatError(f"optimizer tensor {name[:80]!r} is not state.<param>.<key>")
        state.setdefault(int(m[1]), {})[m[2]] = value
    for pid, extra in scalars.items():
        state.setdefault(int(pid), {}).update(extra)
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------- bundle <-> bytes
def bundle_to_files(bundle: WeightsBundle, name: str = DEFAULT_NAME) -> dict[str, bytes]:
    """Serialise a bundle; the state gains the SHA-256 of the weights (and optimizer) bytes."""
    fn = weights_filenames(name)
    files = {fn["weights"]: dump_safetensors(bundle.tensors, {"format_version": str(WEIGHTS_FORMAT_VERSION)})}
    state = dict(bundle.state)
    state.setdefault("format_version", WEIGHTS_FORMAT_VERSION)
    state["weights_sha256"] = sha256_hex(files[fn["weights"]])
    if bundle.optimizer is not None:
        tensors, meta = optimizer_to_tensors(bundle.optimizer)
        files[fn["optimizer"]] = dump_safetensors(tensors, meta)
        state["optimizer_sha256"] = sha256_hex(files[fn["optimizer"]])
    else:
        state.pop("optimizer_sha256", None)
    files[fn["config"]] = json.dumps(bundle.config, indent=2, sort_keys=True).encode()
    files[fn["state"]] = json.dumps(state, indent=2, sort_keys=True).encode()
    return files


def _json(data: bytes, what: str) -> dict[str, Any]:
    value = load_json(bytes(data), what)
    if not isinstance(value, dict):
        raise FormatError(f"{what} is not a JSON object")
    return value


@guard_format_errors("weights bundle")
def bundle_from_files(files: dict[str, bytes], name: str = DEFAULT_NAME) -> WeightsBundle:
    """Parse and validate a bundle: checksums, finiteness, float dtypes, format version, the state's counts.
    Raises FormatError and only FormatError. The state names the SHA-256 of the weights and optimizer files, so
    their bytes are exactly what the writer wrote (when it says; bundles written here always do); the config is
    checked against the model it describes by `zeb_core.model.checkpoint.model_from_bundle`."""
    fn = weights_filenames(name)
    for key in ("weights", "config", "state"):
        if fn[key] not in files:
            raise FormatError(f"missing {fn[key]}")
    for key, fname in fn.items():
        if fname in files:
            check_size(len(files[fname]), FILE_LIMITS[key], fname)
    state = _json(files[fn["state"]], fn["state"])
    config = _json(files[fn["config"]], fn["config"])
    version = state.get("format_version", WEIGHTS_FORMAT_VERSION)
    if version != WEIGHTS_FORMAT_VERSION:
        raise FormatError(
            f"{fn['state']} has weights format version {version}; this Zeb reads version {WEIGHTS_FORMAT_VERSION}"
        )
    for key in STATE_COUNTS:
        if key in state and (type(state[key]) is not int or state[key] < 0):
            raise FormatError(f"{fn['state']}: {key} must be a non-negative integer, got {str(state[key])[:40]}")
    expected = state.get("weights_sha256")
    if expected is not None and sha256_hex(files[fn["weights"]]) != expected:
        raise FormatError(f"{fn['weights']} does not match the SHA-256 in {fn['state']}")
    tensors, _ = parse_safetensors(files[fn["weights"]])
    for tname, t in tensors.items():
        if not t.is_floating_point():
            raise FormatError(f"{fn['weights']}: tensor {tname!r} has dtype {t.dtype}, expected floating point")
        if not bool(torch.isfinite(t).all()):
            raise FormatError(f"{fn['weights']}: tensor {tname!r} holds NaN or infinity")
    optimizer = None
    if fn["optimizer"] in files:
        expected = state.get("optimizer_sha256")
        if expected is not None and sha256_hex(files[fn["optimizer"]]) != expected:
            raise FormatError(f"{fn['optimizer']} does not match the SHA-256 in {fn['state']}")
        otensors, ometa = parse_safetensors(files[fn["optimizer"]])
        optimizer = optimizer_from_tensors(otensors, ometa)
    return WeightsBundle(tensors=tensors, config=config, state=state, optimizer=optimizer)


# ---------------------------------------------------------------- local folders (checkpoints)
def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename, so readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bundle_dir(folder: Path, bundle: WeightsBundle, name: str = DEFAULT_NAME) -> dict[str, Path]:
    """Write a bundle into a folder, the state file last."""
    folder = Path(folder)
    files = bundle_to_files(bundle, name)
    state_name = weights_filenames(name)["state"]
    written: dict[str, Path] = {}
    for fname in sorted(files, key=lambda f: f == state_name):
        write_atomic(folder / fname, files[fname])
        written[fname] = folder / fname
    if bundle.optimizer is None:
        (folder / weights_filenames(name)["optimizer"]).unlink(missing_ok=True)
    return written


def resolve_weights_path(path: Path | str) -> tuple[Path, str]:
    """(folder, name) for a folder holding one bundle, or a path to its NAME.safetensors file."""
    path = Path(path)
    if path.is_dir():
        names = sorted(p.name[: -len("-config.json")] for p in path.glob("*-config.json"))
        if not names:
            raise FileNotFoundError(f"{path} holds no *-config.json; is it a Zeb checkpoint folder?")
        if DEFAULT_NAME in names:
            return path, DEFAULT_NAME
        if len(names) > 1:
            raise FileNotFoundError(f"{path} holds several bundles ({', '.join(names)}); name one file")
        return path, names[0]
    if path.suffix == ".safetensors" and path.exists():
        return path.parent, path.name[: -len(".safetensors")]
    raise FileNotFoundError(f"no checkpoint at {path} (expected a folder or a NAME.safetensors file)")


def load_bundle_dir(path: Path | str) -> WeightsBundle:
    """The bundle in a checkpoint folder; each file is refused (FormatError) by its size before it is read."""
    folder, name = resolve_weights_path(path)
    files = {}
    for key, fname in weights_filenames(name).items():
        try:
            files[fname] = read_bounded(folder / fname, FILE_LIMITS[key], str(folder / fname))
        except FileNotFoundError:
            continue  # bundle_from_files names the missing ones it needs
    return bundle_from_files(files, name)
