"""A store in a local folder, the embedded default.

Files sit at their natural paths (`DIR/model.safetensors`, ...) so a person can look at them. A push writes each
file by temp-file-and-rename, in the order given (the caller's state file last); pushes kept for history are
also copied under `.history/REV/` with a `.commit.json` written last, which is what `history()` lists.
Compare-and-swap (the lease) holds an flock on `.zeb/lock`.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from zeb_core.formats.safe_io import sha256_hex
from zeb_core.formats.weights import write_atomic
from zeb_core.store.backend import FileInfo, NotFound, Revision, StoreError, check_path, is_internal

COMMIT_FILE = ".commit.json"
ABSENT = "absent"


def new_revision_id() -> str:
    """Sortable by time, unique across writers."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


class LocalBackend:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = f"file://{self.root}"

    # ------------------------------------------------------------ repo
    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store folder {self.root}: {exc.strerror or exc}") from None

    def _path(self, path: str, revision: str | None = None) -> Path:
        check_path(path)
        if revision is None:
            return self.root / path
        check_path(revision)
        return self.root / ".history" / revision / path

    # ------------------------------------------------------------ reads
    def read(self, path: str, revision: str | None = None) -> bytes:
        target = self._path(path, revision)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            at = f" at revision {revision}" if revision else ""
            raise NotFound(f"{path}{at} not found in {self.url}") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise StoreError(f"cannot read {target}: {exc.strerror or exc}") from None

    def list(self, prefix: str = "") -> list[FileInfo]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        out: list[FileInfo] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fname in filenames:
                if fname.startswith("."):
                    continue  # temp files of an in-flight write, and our own bookkeeping
                full = Path(dirpath) / fname
                rel = full.relative_to(self.root).as_posix()
                if is_internal(rel):
                    continue
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue  # removed while listing
                out.append(FileInfo(rel, st.st_size, st.st_mtime))
        out.sort(key=lambda f: f.path)
        return out

    # ------------------------------------------------------------ writes
    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        rev = Revision(new_revision_id(), time.time(), message)
        try:
            if history:
                for path, data in puts.items():
                    write_atomic(self._path(path, rev.id), data)
                record = {"id": rev.id, "time": rev.time, "message": message, "files": list(puts), "deletes": list(deletes)}
                write_atomic(self.root / ".history" / rev.id / COMMIT_FILE, json.dumps(record).encode())
            for path, data in puts.items():
                write_atomic(self._path(path), data)
            for path in deletes:
                self._path(path).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot write to {self.root}: {exc.strerror or exc}") from None
        return rev

    def drop_history(self, revisions: Sequence[str]) -> None:
        """Forget recorded pushes (their `.history/REV/` copies); the live files are untouched."""
        for rev in revisions:
            folder = self._path(COMMIT_FILE, rev).parent
            (folder / COMMIT_FILE).unlink(missing_ok=True)  # the record first: a half-dropped push is not listed
            shutil.rmtree(folder, ignore_errors=True)

    def history(self, limit: int = 100) -> list[Revision]:
        folder = self.root / ".history"
        if not folder.is_dir():
            return []
        revs: list[Revision] = []
        for entry in sorted(folder.iterdir(), reverse=True):
            record_path = entry / COMMIT_FILE
            if not record_path.is_file():
                continue  # a push that died before its record: not a push
            try:
                record = json.loads(record_path.read_text())
                revs.append(Revision(record["id"], float(record["time"]), str(record.get("message", ""))))
            except (OSError, ValueError, KeyError):
                continue
            if len(revs) >= limit:
                break
        return revs

    # ------------------------------------------------------------ compare-and-swap
    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.root / ".zeb" / "lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        try:
            data = self._path(path).read_bytes()
        except FileNotFoundError:
            return None, ABSENT
        return data, sha256_hex(data)

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        with self._locked():
            _, current = self.read_versioned(path)
            if current != (token or ABSENT):
                return False
            write_atomic(self._path(path), data)
            return True
