"""Parse safetensors bytes that came from anywhere, without pickle and with hard limits.

Everything a store hands us goes through `parse_safetensors`: the header length is checked before anything is
allocated, the JSON header is parsed by us (so a huge or hostile header is refused early), and tensors are only
materialised by the safetensors library, which never executes code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

MAX_HEADER_BYTES = 1 << 20  # 1 MiB: our headers are a few KiB; a larger one is hostile or broken
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
ALLOWED_DTYPES = set(DTYPE_BYTES)
MAX_DIMS = 8
MAX_EXAMPLE_FILE_BYTES = 256 << 20
"""The largest example file (play or bid) anyone reads: 256 MiB, some 700,000 examples, where a worker's batch is
a few MiB. A larger one is broken or hostile: it is refused by its size before it is read (a store quarantines it
unread), so that no file can exhaust a learner's memory and crash it again at every start."""


class FormatError(ValueError):
    """A file that is not what it claims to be (bad header, dtype, shape, range, checksum or version)."""


UNEXPECTED = "unexpected error while reading"
T = TypeVar("T")


def guard_format_errors(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Make a parser of untrusted bytes fail only with FormatError.

    The checks in this package are meant to catch every bad file with a clear reason; this is the net under them,
    so that a check we missed still ends in quarantine rather than in a learner that crashes on the same file at
    every start. Its message starts with UNEXPECTED, which the fuzz tests require never to see. MemoryError is
    the machine's problem, not the file's, and passes through."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except (FormatError, MemoryError):
                raise
            except Exception as exc:  # any other failure on untrusted input: a bad file
                raise FormatError(f"{UNEXPECTED} {what}: {type(exc).__name__}: {str(exc)[:200]}") from exc

        return guarded

    return wrap


def too_large(what: str, size: int, limit: int) -> str:
    """The one wording of a size refusal: the file, its size and the limit."""
    return f"{what} is {size:,} bytes, over the limit of {limit:,} bytes"


def check_size(size: int, limit: int, what: str) -> None:
    """Refuse a file by its size, before it is read or parsed (a MemoryError must never be a file's doing)."""
    if size > limit:
        raise FormatError(too_large(what, size, limit))


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a local file, refused with FormatError by its size before they are read: never more than
    `limit` bytes (and one) in memory, even when the file grows while it is read."""
    with open(path, "rb") as fh:
        check_size(os.fstat(fh.fileno()).st_size, limit, what)
        data = fh.read(limit + 1)
    check_size(len(data), limit, what)
    return data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_json(text: str | bytes, what: str) -> Any:
    """json.loads that fails only with FormatError: besides bad syntax, json raises ValueError for integers of
    more than 4300 digits and RecursionError for deeply nested arrays, and both fit in a small header."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FormatError(f"{what} is not JSON: {type(exc).__name__}: {str(exc)[:120]}") from None


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0  # not bool, not float


def _check_entry(name: str, entry: Any, body: int) -> tuple[int, int]:
    """(start, end) of one tensor entry, checked the way safetensors checks it, but raising FormatError."""
    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) or entry["dtype"] not in DTYPE_BYTES:
        raise FormatError(f"tensor {name!r}: unsupported entry {str(entry)[:80]}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_is_count(d) for d in shape)):
        raise FormatError(f"tensor {name!r}: shape {str(shape)[:80]} is not a list of at most {MAX_DIMS} counts")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise FormatError(f"tensor {name!r}: data offsets {str(offsets)[:80]} are not [start, end]")
    start, end = offsets
    if not start <= end <= body:
        raise FormatError(f"tensor {name!r}: data offsets {offsets} outside the {body}-byte body")
    if math.prod(shape) * DTYPE_BYTES[entry["dtype"]] != end - start:
        raise FormatError(f"tensor {name!r}: shape {shape} of {entry['dtype']} does not fill offsets {offsets}")
    return start, end


@guard_format_errors("a safetensors header")
def read_header(data: bytes) -> tuple[dict, dict[str, str]]:
    """(tensor entries, string metadata) of a safetensors blob; raises FormatError, and only FormatError, on
    anything odd: every entry needs a known dtype, a shape and [start, end] offsets that agree with it, and the
    tensors must tile the body exactly (what safetensors itself demands)."""
    if len(data) < 8:
        raise FormatError(f"too short to be safetensors ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise FormatError(f"header claims {n} bytes (limit {MAX_HEADER_BYTES})")
    if 8 + n > len(data):
        raise FormatError(f"truncated: header needs {n} bytes, file has {len(data) - 8}")
    header = load_json(bytes(data[8 : 8 + n]), "header")
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ must map strings to strings")
    body = len(data) - 8 - n
    spans = sorted((*_check_entry(name, entry, body), name) for name, entry in header.items())
    at = 0
    for start, end, name in spans:
        if start != at:
            raise FormatError(f"tensor {name!r}: data starts at {start}, expected {at} (gap or overlap)")
        at = end
    if at != body:
        raise FormatError(f"tensors cover {at} of the {body} body bytes")
    return header, meta


@guard_format_errors("safetensors")
def parse_safetensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors blob, validated structurally (no pickle, bounded header)."""
    header, meta = read_header(data)
    try:
        tensors = st_load(bytes(data))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types; all mean "bad file"
        raise FormatError(f"not a valid safetensors file: {exc}") from None
    if set(tensors) != set(header):
        raise FormatError("tensor names do not match the header")
    return tensors, meta


# Example files (play and bid) share a layout: tensors, and a JSON manifest under MANIFEST_KEY in the metadata
# that names their shapes and the SHA-256 of their contents. The helpers below are the parts their decoders share.
MANIFEST_KEY = "zeb"


def read_manifest(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and manifest (a JSON object, not yet validated) of an example file; raises FormatError."""
    check_size(len(data), MAX_EXAMPLE_FILE_BYTES, "example file")
    tensors, meta = parse_safetensors(data)
    if MANIFEST_KEY not in meta:
        raise FormatError("no Zeb manifest in the safetensors metadata")
    manifest = load_json(meta[MANIFEST_KEY], "manifest")
    if not isinstance(manifest, dict):
        raise FormatError("manifest is not a JSON object")
    return tensors, manifest


def tensors_sha256(tensors: dict[str, torch.Tensor], names: Iterable[str]) -> str:
    """Checksum of the named tensors' contents (names, dtypes, shapes, bytes), independent of the header layout."""
    h = hashlib.sha256()
    for name in names:
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_tensor(name: str, t: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    if t.dtype != dtype:
        raise FormatError(f"tensor {name!r} has dtype {t.dtype}, expected {dtype}")
    if tuple(t.shape) != shape:
        raise FormatError(f"tensor {name!r} has shape {tuple(t.shape)}, expected {shape}")


def check_manifest_shapes(tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    if manifest.get("shapes") != {k: list(t.shape) for k, t in tensors.items()}:
        raise FormatError(f"manifest field 'shapes' {str(manifest.get('shapes'))[:120]} does not match the tensors")


def check_manifest_sha256(manifest: dict[str, Any], content_sha256: str) -> None:
    if manifest.get("sha256") != content_sha256:
        raise FormatError("content does not match the SHA-256 in the manifest")


def dump_safetensors(tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> bytes:
    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
