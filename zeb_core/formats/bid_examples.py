"""Bid-example files: the auction's training examples, a second kind of example file beside the play examples.

A full-game worker (`WorkerSettings.full_game`) uploads one such file per batch into the examples folder of the
namespace NAME-bid (`zeb_core.fullgame.bid_learning.bid_namespace`), with the same file names as play examples
(WORKER_TIMESTAMP_HASH16.safetensors). Tensors (`zeb_core.fullgame.selfplay.HandExamples`):

    bid_x        int8    [N, 14]  encoded views of seats at their turn to bid (`fullgame.bidnet.encode_view`)
    bid_action   int64   [N]      the bid action taken, 0..19
    bid_marks    float32 [N]      realised marks of the seat's team from its side, an integer in -7..7
    decl_x       int8    [M, 14]  the auction winner's view (when declaring and when it bid)
    decl_points  int64   [M, 10]  its team's final points under each declaration, 0..42, -1 where not played

and a JSON manifest in the safetensors metadata under "zeb": kind "bid", format version, the BidNet step that
bid, worker id, hands, counts, shapes, the SHA-256 of the tensor contents, the settings. `decode_bid_examples`
trusts nothing: no pickle, bounded header, exact dtypes and shapes, every column's range, the checksum.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import torch

from zeb_core.engine.dominoes import N_DECLS, N_DOMINOES, TOTAL_POINTS
from zeb_core.formats.examples import sanitize_worker_id
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

BID_EXAMPLES_FORMAT_VERSION = 1
KIND = "bid"
VIEW_FEATURES = 14  # zeb_core.fullgame.bidnet.VIEW_FEATURES (checked there against this)
COLUMN_SIZES = (N_DOMINOES,) * 7 + (21,) * 4 + (4, 8, 8)  # vocabulary of each encoded column
MAX_MARKS = 7
TENSORS = {  # name -> (dtype, trailing shape, count key)
    "bid_x": (torch.int8, (VIEW_FEATURES,), "bid_examples"),
    "bid_action": (torch.int64, (), "bid_examples"),
    "bid_marks": (torch.float32, (), "bid_examples"),
    "decl_x": (torch.int8, (VIEW_FEATURES,), "decl_examples"),
    "decl_points": (torch.int64, (N_DECLS,), "decl_examples"),
}


@dataclass
class BidExampleFile:
    tensors: dict[str, torch.Tensor]
    manifest: dict[str, Any]

    @property
    def model_step(self) -> int:
        return int(self.manifest["model_step"])


def content_sha256(tensors: dict[str, torch.Tensor]) -> str:
    return tensors_sha256(tensors, TENSORS)


def encode_bid_examples(
    tensors: dict[str, torch.Tensor],
    *,
    model_step: int,
    worker_id: str,
    hands: int,
    settings: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Serialise bid examples (a dict of the five tensors); returns (file bytes, manifest). Validates first."""
    clean = {name: tensors[name].detach().to("cpu", dtype).contiguous() for name, (dtype, _, _) in TENSORS.items()}
    manifest = {
        "kind": KIND,
        "format_version": BID_EXAMPLES_FORMAT_VERSION,
        "model_step": int(model_step),
        "worker_id": sanitize_worker_id(worker_id),
        "hands": int(hands),
        "bid_examples": int(clean["bid_x"].shape[0]),
        "decl_examples": int(clean["decl_x"].shape[0]),
        "shapes": {k: list(v.shape) for k, v in clean.items()},
        "sha256": content_sha256(clean),
        "created": time.time(),
        "settings": settings or {},
    }
    _validate(clean, manifest)
    return dump_safetensors(clean, {MANIFEST_KEY: json.dumps(manifest, sort_keys=True)}), manifest


@guard_format_errors("bid example file")
def decode_bid_examples(data: bytes) -> BidExampleFile:
    """Parse and fully validate a bid-example file; raises FormatError (only) with the first problem found."""
    tensors, manifest = read_manifest(data)
    _validate(tensors, manifest)
    return BidExampleFile(tensors, manifest)


def _validate(tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    if manifest.get("kind") != KIND:
        raise FormatError(f"manifest kind {manifest.get('kind')!r}; a bid-example file has kind {KIND!r}")
    if manifest.get("format_version") != BID_EXAMPLES_FORMAT_VERSION:
        raise FormatError(f"bid examples format version {manifest.get('format_version')!r}; this Zeb reads "
                          f"{BID_EXAMPLES_FORMAT_VERSION}")  # fmt: skip
    for key in ("model_step", "hands", "bid_examples", "decl_examples"):
        if type(manifest.get(key)) is not int or manifest[key] < 0:
            raise FormatError(f"manifest field {key!r} must be a non-negative integer, got {manifest.get(key)!r}")
    if not isinstance(manifest.get("worker_id"), str):
        raise FormatError(f"manifest field 'worker_id' must be a string, got {manifest.get('worker_id')!r}")
    if set(tensors) != set(TENSORS):
        raise FormatError(f"tensors {sorted(tensors)}; expected {sorted(TENSORS)}")
    if manifest["bid_examples"] == 0:
        raise FormatError("file holds no bid examples")
    for name, (dtype, tail, count) in TENSORS.items():
        check_tensor(name, tensors[name], dtype, (manifest[count], *tail))
    check_manifest_shapes(tensors, manifest)
    sizes = torch.tensor(COLUMN_SIZES, dtype=torch.int16)
    for name in ("bid_x", "decl_x"):
        x = tensors[name].to(torch.int16)
        if bool((x < 0).any()) or bool((x >= sizes).any()):
            raise FormatError(f"{name} holds values outside their columns' ranges")
    action, marks, points = tensors["bid_action"], tensors["bid_marks"], tensors["decl_points"]
    if bool((action < 0).any()) or bool((action > 19).any()):
        raise FormatError("bid_action holds actions outside 0..19")
    whole = bool(torch.isfinite(marks).all()) and bool((marks == marks.round()).all())
    if not whole or bool((marks.abs() > MAX_MARKS).any()):
        raise FormatError(f"bid_marks must be whole marks in -{MAX_MARKS}..{MAX_MARKS}")
    if bool((points < -1).any()) or bool((points > TOTAL_POINTS).any()):
        raise FormatError(f"decl_points must lie in 0..{TOTAL_POINTS} (-1: not played)")
    check_manifest_sha256(manifest, content_sha256(tensors))
