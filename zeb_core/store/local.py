"""A store in a local folder, the embedded default.

Files sit at their natural paths (`DIR/model.safetensors`, ...) so a person can look at them. A push writes each
file by temp-file-and-rename, in the order given (the caller's state file last); pushes kept for history are
also copied under `.history/REV/` with a `.commit.json` written last (the scheme of `zeb_core.store.history`,
shared with S3). Compare-and-swap (the lease) holds an flock on `.zeb/lock`.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from zeb_core.formats.safe_io import sha256_hex
from zeb_core.formats.weights import write_atomic
from zeb_core.store.backend import (
    ABSENT,
    FileInfo,
    Listing,
    NotFound,
    StoreError,
    check_path,
    check_read_size,
    is_internal,
)
from zeb_core.store.history import COMMIT_FILE, HISTORY_DIR, CopyHistory, copy_path


class LocalBackend(CopyHistory):
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
        return self.root / (check_path(path) if revision is None else copy_path(revision, path))

    # ------------------------------------------------------------ reads
    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        target = self._path(path, revision)
        try:
            with open(target, "rb") as fh:
                check_read_size(f"{path} in {self.url}", os.fstat(fh.fileno()).st_size, max_bytes)
                data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)  # it may grow meanwhile
            check_read_size(f"{path} in {self.url}", len(data), max_bytes)
            return data
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

    def list_recent(self, prefix: str, want: Callable[[str], bool]) -> Listing:
        """One scandir of the folder, then a walk of the sub-folders `want` picks only."""
        base = self.root / prefix if prefix else self.root
        files: builtins.list[FileInfo] = []
        folders: builtins.list[str] = []
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return Listing([], [], [])
        for entry in entries:
            if entry.name.startswith("."):
                continue  # temp files of an in-flight write, and our own bookkeeping
            try:
                if entry.is_dir():
                    folders.append(entry.name)
                elif entry.is_file():
                    st = entry.stat()
                    files.append(FileInfo((Path(prefix) / entry.name).as_posix(), st.st_size, st.st_mtime))
            except FileNotFoundError:
                continue  # removed while listing
        folders.sort()
        within = [f for name in folders if want(name) for f in self.list((Path(prefix) / name).as_posix())]
        return Listing(sorted(files, key=lambda f: f.path), folders, within)

    def move(self, src: str, dst: str) -> bool:
        """A rename within the store folder: the bytes never pass through this process."""
        source, target = self._path(src), self._path(dst)
        with self._writing():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except FileNotFoundError:
                return target.exists()  # moved by an earlier try of this call, or gone
        return True

    # ------------------------------------------------------------ history-as-copies primitives
    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def _put_copy(self, revision: str, path: str, data: bytes) -> None:
        with self._writing():
            write_atomic(self._path(path, revision), data)

    def _put_live(self, path: str, data: bytes, revision: str | None) -> None:
        with self._writing():
            write_atomic(self._path(path), data)

    def _delete_live(self, paths: Sequence[str]) -> None:
        with self._writing():
            for path in paths:
                self._path(path).unlink(missing_ok=True)

    def _revision_ids(self) -> builtins.list[str]:  # `list` is also a method here
        folder = self.root / HISTORY_DIR
        return [entry.name for entry in folder.iterdir() if entry.is_dir()] if folder.is_dir() else []

    def _delete_copy(self, revision: str, path: str) -> None:
        self._path(path, revision).unlink(missing_ok=True)

    def _remove_revision(self, revision: str) -> None:
        shutil.rmtree(self._path(COMMIT_FILE, revision).parent, ignore_errors=True)

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
