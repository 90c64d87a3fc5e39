"""The worker's local outbox: a generated batch of examples is written here first and deleted only after the store
confirmed the upload, so a crash, a kill or a store outage never loses games.

One folder per store and namespace on this host (not per worker id, which changes on restart), so a restarted
worker uploads what an earlier one left. Several workers on one host may share it: a file being uploaded is held
with an flock, and others skip it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zeb_core.formats.examples import decode_examples
from zeb_core.formats.safe_io import FormatError
from zeb_core.formats.weights import write_atomic

SUFFIX = ".examples.safetensors"


def default_outbox_dir(store_url: str, name: str) -> Path:
    """Under $ZEB_OUTBOX_DIR (the job templates point it at a persistent volume), else ~/.cache/zeb/outbox."""
    base = Path(os.environ.get("ZEB_OUTBOX_DIR", Path.home() / ".cache" / "zeb" / "outbox"))
    return base / hashlib.sha256(store_url.encode()).hexdigest()[:12] / name


class Outbox:
    def __init__(self, folder: Path | str, decode: Callable[[bytes], Any] = decode_examples) -> None:
        """`decode` validates this outbox's kind of file (play examples by default) and gives its manifest."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.decode = decode

    def put(self, data: bytes, sha256: str) -> Path:
        path = self.folder / f"{sha256[:32]}{SUFFIX}"
        write_atomic(path, data)
        return path

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime if p.exists() else 0)

    @contextmanager
    def claim(self, path: Path) -> Iterator[bool]:
        """Hold `path` while uploading it; yields False when another worker holds it or it is already gone."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held open (the lock) across the yield, closed below
        except FileNotFoundError:
            yield False
            return
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield path.exists()

    def load(self, path: Path) -> tuple[bytes, dict] | None:
        """(bytes, manifest) of an outbox file, or None when it is damaged (then it is renamed *.bad)."""
        data = path.read_bytes()
        try:
            return data, self.decode(data).manifest
        except FormatError:
            path.rename(path.with_suffix(".bad"))
            return None

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
