"""Parse safetensors bytes that came from anywhere, without pickle and with hard limits.

Everything a store hands us goes through `parse_safetensors`: the header length is checked before anything is
allocated, the JSON header is parsed by us (so a huge or hostile header is refused early), and tensors are only
materialised by the safetensors library, which never executes code.
"""

from __future__ import annotations

import hashlib
import json
import struct

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

MAX_HEADER_BYTES = 1 << 20  # 1 MiB: our headers are a few KiB; a larger one is hostile or broken
ALLOWED_DTYPES = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"}


class FormatError(ValueError):
    """A file that is not what it claims to be (bad header, dtype, shape, range, checksum or version)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_header(data: bytes) -> tuple[dict, dict[str, str]]:
    """(tensor entries, string metadata) of a safetensors blob; raises FormatError on anything odd."""
    if len(data) < 8:
        raise FormatError(f"too short to be safetensors ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise FormatError(f"header claims {n} bytes (limit {MAX_HEADER_BYTES})")
    if 8 + n > len(data):
        raise FormatError(f"truncated: header needs {n} bytes, file has {len(data) - 8}")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ must map strings to strings")
    body = len(data) - 8 - n
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in ALLOWED_DTYPES:
            raise FormatError(f"tensor {name!r}: unsupported entry {str(entry)[:80]}")
        start, end = entry.get("data_offsets", (None, None))
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= body):
            raise FormatError(f"tensor {name!r}: data offsets {entry.get('data_offsets')} outside the file")
    return header, meta


def parse_safetensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors blob, validated structurally (no pickle, bounded header)."""
    header, meta = read_header(data)
    try:
        tensors = st_load(bytes(data))
    except Exception as exc:  # safetensors raises its own error types; all mean "bad file"
        raise FormatError(f"not a valid safetensors file: {exc}") from None
    if set(tensors) != set(header):
        raise FormatError("tensor names do not match the header")
    return tensors, meta


def dump_safetensors(tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> bytes:
    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
