"""The worker's local outbox: a generated batch of examples is written here first and deleted only after the store
confirmed the upload, so a crash, a kill or a store outage never loses games.

One folder per store and namespace on this host (not per worker id, which changes on restart), so a restarted
worker uploads what an earlier one left. Several workers on one host may share it: a file being uploaded is held
with an flock, and others skip it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zeb_core.formats.examples import decode_examples
from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES, FormatError, read_bounded
from zeb_core.formats.weights import write_atomic

log = logging.getLogger("zeb.outbox")
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
        """Files waiting for upload, oldest first. Another worker on this host may upload and remove one at any
        moment, so a file gone by the time it is looked at is simply not pending (one stat, no exists-then-stat)."""
        found: list[tuple[float, str, Path]] = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                found.append((path.stat().st_mtime, path.name, path))
            except FileNotFoundError:
                continue
        return [path for _, _, path in sorted(found)]

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
        """(bytes, manifest) of an outbox file, or None when it is damaged or too large to read (refused by its
        size before it is read): then it is renamed *.bad, beside a *.reason.json saying why."""
        try:
            data = read_bounded(path, MAX_EXAMPLE_FILE_BYTES, path.name)
            return data, self.decode(data).manifest
        except FormatError as exc:
            self._set_aside(path, str(exc))
            return None

    def _set_aside(self, path: Path, reason: str) -> None:
        note = json.dumps({"path": path.name, "reason": reason, "time": time.time()}).encode()
        write_atomic(path.with_suffix(".reason.json"), note)
        path.rename(path.with_suffix(".bad"))
        log.error("outbox file %s is bad (%s); set aside as %s", path, reason, path.with_suffix(".bad").name)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
