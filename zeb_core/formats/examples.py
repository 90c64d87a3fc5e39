"""Training-example files: what a self-play worker uploads and the learner ingests.

One file holds N examples as four safetensors tensors

    obs     int8    [N, 36, 8]   the mover's observation (zeb_core.game.encoding)
    legal   bool    [N, 7]       legal hand slots
    policy  float32 [N, 7]       visit distribution: >= 0, zero on illegal slots, sums to 1 over legal ones
    value   float32 [N]          the value of the position for the mover under the file's value target, in [-1, 1]
    q       float32 [N, 7]       optional: each legal slot's value for the mover (exact solutions), in [-1, 1],
                                 zero on illegal slots; files with it train the policy head as a Q head

and a JSON manifest in the safetensors metadata under "zeb": format version, model step that generated the
examples, worker id, game and example counts, shapes, the SHA-256 of the tensor contents, creation time, the
search settings and the value target (`value_target`, engine.VALUE_TARGETS; files from before it was recorded
were labelled with the contract target). The file name is WORKER_TIMESTAMP_HASH16.safetensors, HASH16 being the
first 16 hex digits of that SHA-256, so the same content uploaded twice has the same hash and is stored once.

Files come from other machines, so `decode_examples` trusts nothing: no pickle, bounded header, exact dtypes and
shapes, every value range, and the checksum.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import torch

from zeb_core.engine.state import VALUE_TARGETS
from zeb_core.formats.safe_io import (
    MANIFEST_KEY,
    FormatError,
    check_manifest_sha256,
    check_manifest_shapes,
    check_tensor,
    dump_safetensors,
    guard_format_errors,
    read_manifest,
    tensors_sha256,
)
from zeb_core.game.encoding import FEATURE_SIZES, OBS_FEATURES, OBS_TOKENS

EXAMPLES_FORMAT_VERSION = 1
SLOTS = 7
SUFFIX = ".safetensors"
TENSORS = {  # name -> (dtype, trailing shape)
    "obs": (torch.int8, (OBS_TOKENS, OBS_FEATURES)),
    "legal": (torch.bool, (SLOTS,)),
    "policy": (torch.float32, (SLOTS,)),
    "value": (torch.float32, ()),
}
OPTIONAL_TENSORS = {"q": (torch.float32, (7,))}
LEGACY_VALUE_TARGET = "contract"  # what files without a `value_target` field were labelled with
_NAME_RE = re.compile(r"^(?P<worker>[A-Za-z0-9.-]{1,64})_(?P<ts>\d{8}T\d{9}Z)_(?P<hash>[0-9a-f]{16})\.safetensors$")
POLICY_SUM_TOL = 1e-3


@dataclass
class ExampleFile:
    obs: torch.Tensor
    legal: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    manifest: dict[str, Any]
    q: torch.Tensor | None = None

    @property
    def value_target(self) -> str:
        return str(self.manifest.get("value_target", LEGACY_VALUE_TARGET))

    @property
    def examples(self) -> int:
        return int(self.value.shape[0])

    @property
    def model_step(self) -> int:
        return int(self.manifest["model_step"])


def content_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Checksum of the tensor contents (names, dtypes, shapes, bytes), independent of the header layout."""
    return tensors_sha256(tensors, [*TENSORS, *(k for k in OPTIONAL_TENSORS if k in tensors)])


def sanitize_worker_id(worker_id: str) -> str:
    """Worker ids go into file names: keep letters, digits, dots and dashes."""
    clean = re.sub(r"[^A-Za-z0-9.-]+", "-", worker_id).strip("-.")[:64]
    return clean or "worker"


def timestamp_now(now: float | None = None) -> str:
    now = time.time() if now is None else now
    ms = round((now % 1) * 1000) % 1000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{ms:03d}Z"


def example_filename(worker_id: str, content_hash: str, now: float | None = None) -> str:
    return f"{sanitize_worker_id(worker_id)}_{timestamp_now(now)}_{content_hash[:16]}{SUFFIX}"


def parse_example_filename(name: str) -> tuple[str, str, str] | None:
    """(worker, timestamp, hash16) of a well-formed example file name, else None."""
    m = _NAME_RE.match(name.rsplit("/", 1)[-1])
    return (m["worker"], m["ts"], m["hash"]) if m else None


def encode_examples(
    obs: torch.Tensor,
    legal: torch.Tensor,
    policy: torch.Tensor,
    value: torch.Tensor,
    *,
    model_step: int,
    worker_id: str,
    games: int,
    settings: dict[str, Any] | None = None,
    value_target: str = "points",
    q: torch.Tensor | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Serialise examples; returns (file bytes, manifest). Validates first, so a worker never uploads junk."""
    tensors = {
        "obs": obs.detach().to("cpu", torch.int8).contiguous(),
        "legal": legal.detach().to("cpu", torch.bool).contiguous(),
        "policy": policy.detach().to("cpu", torch.float32).contiguous(),
        "value": value.detach().to("cpu", torch.float32).contiguous(),
    }
    if q is not None:
        tensors["q"] = q.detach().to("cpu", torch.float32).contiguous()
    n = int(tensors["value"].shape[0])
    manifest = {
        "format_version": EXAMPLES_FORMAT_VERSION,
        "model_step": int(model_step),
        "worker_id": sanitize_worker_id(worker_id),
        "games": int(games),
        "examples": n,
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
        "sha256": content_sha256(tensors),
        "created": time.time(),
        "settings": settings or {},
        "value_target": value_target,
    }
    _validate(tensors, manifest)
    return dump_safetensors(tensors, {MANIFEST_KEY: json.dumps(manifest, sort_keys=True)}), manifest


@guard_format_errors("example file")
def decode_examples(data: bytes) -> ExampleFile:
    """Parse and fully validate an example file; raises FormatError (only) with the first problem found."""
    tensors, manifest = read_manifest(data)
    _validate(tensors, manifest)
    return ExampleFile(
        tensors["obs"], tensors["legal"], tensors["policy"], tensors["value"], manifest, tensors.get("q")
    )


def _validate(tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    version = manifest.get("format_version")
    if version != EXAMPLES_FORMAT_VERSION:
        raise FormatError(f"examples format version {version!r}; this Zeb reads version {EXAMPLES_FORMAT_VERSION}")
    for key in ("model_step", "games", "examples"):
        if type(manifest.get(key)) is not int or manifest[key] < 0:
            raise FormatError(f"manifest field {key!r} must be a non-negative integer, got {manifest.get(key)!r}")
    if not isinstance(manifest.get("worker_id"), str):  # it goes into file names
        raise FormatError(f"manifest field 'worker_id' must be a string, got {manifest.get('worker_id')!r}")
    if not set(TENSORS) <= set(tensors) <= set(TENSORS) | set(OPTIONAL_TENSORS):
        raise FormatError(
            f"tensors {sorted(tensors)}; expected {sorted(TENSORS)} and optionally {sorted(OPTIONAL_TENSORS)}"
        )
    target = manifest.get("value_target", LEGACY_VALUE_TARGET)
    if target not in VALUE_TARGETS:
        raise FormatError(f"manifest field 'value_target' is {target!r}; expected one of {', '.join(VALUE_TARGETS)}")
    n = manifest["examples"]
    if n == 0:
        raise FormatError("file holds no examples")
    for name, (dtype, tail) in [*TENSORS.items(), *((k, v) for k, v in OPTIONAL_TENSORS.items() if k in tensors)]:
        check_tensor(name, tensors[name], dtype, (n, *tail))
    check_manifest_shapes(tensors, manifest)
    obs, legal, policy, value = (tensors[k] for k in ("obs", "legal", "policy", "value"))
    sizes = torch.tensor(FEATURE_SIZES, dtype=torch.int16)
    o = obs.to(torch.int16)
    if bool((o < 0).any()) or bool((o >= sizes).any()):
        raise FormatError("obs holds feature values outside their vocabularies")
    if not bool(legal.any(1).all()):
        raise FormatError("an example has no legal move")
    if not bool(torch.isfinite(policy).all()) or not bool(torch.isfinite(value).all()):
        raise FormatError("policy or value holds NaN or infinity")
    if bool((policy < 0).any()) or bool((policy[~legal] != 0).any()):
        raise FormatError("policy targets must be >= 0 and zero on illegal moves")
    sums = policy.sum(1)
    if bool(((sums - 1).abs() > POLICY_SUM_TOL).any()):
        raise FormatError("policy targets must sum to 1 over legal moves")
    if bool((value.abs() > 1).any()):
        raise FormatError("value targets must lie in [-1, 1]")
    q = tensors.get("q")
    if q is not None and (
        not bool(torch.isfinite(q).all()) or bool((q.abs() > 1).any()) or bool((q[~legal] != 0).any())
    ):
        raise FormatError("q targets must be finite, in [-1, 1] and zero on illegal moves")
    check_manifest_sha256(manifest, content_sha256(tensors))
