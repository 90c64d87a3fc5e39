"""Example files spread over several repos, so that a large fleet's commits are not held to one repo's limit.

The Hub takes about 128 commits an hour per repository. A fleet of N workers sharing one examples repo commits each
worker's outbox once every N * 3600 / budget seconds: with 256 workers and a budget of 100 an hour, a batch waits
up to 2.6 hours in its outbox before the learner can see it. `hf://OWNER/REPO?shards=K` spreads the examples over
K dataset repos (OWNER/REPO-examples, then OWNER/REPO-examples-1 .. -(K-1)), each with its own limit: every worker
writes to one of them, the one its id hashes to (`shard_of_worker`), and paces its commits by the workers of that
repo alone; the learner reads them all as one (`ShardedBackend`). Shard 0 is the repo an unsharded store uses, so
a fleet that grows into shards keeps what it wrote before.

Routing (every repo holds the same layout of namespace and hour folders):
- an example file (its name starts with the worker's id; a quarantined copy and its `.reason.json` note too) lives
  in its worker's shard: reads, deletes and moves go there;
- any other file put by a commit goes with the commit's example files (an hour folder's marker stays beside the
  files that opened it), or to every shard when the commit holds no example file (the dataset card);
- any other file deleted goes to the shards the last listing saw it in, or to every shard (deleting a missing
  file is harmless on every backend).
A listing is the union of the shards' listings. A commit whose files belong to several shards (an outbox that
holds files of an earlier worker id) is one commit per shard.
"""

from __future__ import annotations

import builtins
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from zeb_core.formats.examples import parse_example_filename
from zeb_core.store.backend import Backend, FileInfo, Listing, Revision, StoreError

MAX_SHARDS = 64
T = TypeVar("T")
NOTE_SUFFIX = ".reason.json"  # a quarantine note beside the copy it explains (`Store.quarantine`)


def shard_of_worker(worker: str, shards: int) -> int:
    """The shard a worker (its id as example file names spell it) writes to: a stable hash, the same in every
    process and on every machine."""
    if shards <= 1:
        return 0
    # Not crc32: it is linear, and names that differ in their last digits (sim0000, sim0001, ...) fell together.
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:8], "big") % shards


def shard_of_path(path: str, shards: int) -> int | None:
    """The shard of an example file (or of its quarantine note) by its name; None for any other file."""
    parsed = parse_example_filename(path.removesuffix(NOTE_SUFFIX))
    return None if parsed is None else shard_of_worker(parsed[0], shards)


def check_shards(count: int) -> int:
    if not 1 <= count <= MAX_SHARDS:
        raise StoreError(f"shards must be between 1 and {MAX_SHARDS}, not {count}")
    return count


class ShardedBackend(Backend):
    """Several repos read as one, each example file in its worker's repo (the module docstring says how)."""

    def __init__(self, shards: Sequence[Backend]) -> None:
        if not shards:
            raise StoreError("a sharded store needs at least one repo")
        self.parts = list(shards)
        self.shards = check_shards(len(self.parts))
        self.history_copies = self.parts[0].history_copies
        self.commit_limited = any(p.commit_limited for p in self.parts)
        self.url = self.parts[0].url + (f" (+{self.shards - 1} shards)" if self.shards > 1 else "")
        self._seen: dict[str, set[int]] = {}  # a non-example path -> the shards the last listing saw it in
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _part(self, path: str) -> Backend:
        index = shard_of_path(path, self.shards)
        return self.parts[0 if index is None else index]

    def _record(self, infos: Mapping[int, Sequence[FileInfo]]) -> None:
        with self._lock:
            for index, files in infos.items():
                for info in files:
                    if shard_of_path(info.path, self.shards) is None:
                        self._seen.setdefault(info.path, set()).add(index)

    def _union(self, infos: Mapping[int, Sequence[FileInfo]]) -> builtins.list[FileInfo]:
        """Every shard's files, a path held by several (an hour marker) once: the newest copy."""
        out: dict[str, FileInfo] = {}
        for files in infos.values():
            for info in files:
                if info.path not in out or info.modified > out[info.path].modified:
                    out[info.path] = info
        return sorted(out.values(), key=lambda f: f.path)

    # ------------------------------------------------------------ reads
    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        return self._part(path).read(path, revision, max_bytes)

    def _each(self, call: Callable[[Backend], T]) -> dict[int, T]:
        """`call` on every shard, at once (a listing of K repos costs one round trip's time, not K)."""
        if self.shards == 1:
            return {0: call(self.parts[0])}
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(min(self.shards, 8), thread_name_prefix="zeb-shards")
        futures = [self._pool.submit(call, part) for part in self.parts]
        return {i: future.result() for i, future in enumerate(futures)}

    def list(self, prefix: str = "") -> builtins.list[FileInfo]:
        infos = self._each(lambda part: part.list(prefix))
        self._record(infos)
        return self._union(infos)

    def list_recent(self, prefix: str, want: Callable[[str], bool]) -> Listing:
        listings = self._each(lambda part: part.list_recent(prefix, want))
        self._record({i: [*x.files, *x.within] for i, x in listings.items()})
        folders = sorted({f for x in listings.values() for f in x.folders})
        files = self._union({i: x.files for i, x in listings.items()})
        within = self._union({i: x.within for i, x in listings.items()})
        return Listing(files, folders, within)

    # ------------------------------------------------------------ writes
    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        groups = self._route(puts, deletes)
        revision = None
        for index in sorted(groups):
            part_puts, part_deletes = groups[index]
            revision = self.parts[index].commit(part_puts, part_deletes, message, history)
        if revision is None:  # nothing to write: an empty commit, as a single repo would take it
            revision = self.parts[0].commit({}, (), message, history)
        return revision

    def _route(
        self, puts: dict[str, bytes], deletes: Sequence[str]
    ) -> dict[int, tuple[dict[str, bytes], builtins.list[str]]]:
        """shard -> (its puts, its deletes), by the rules of the module docstring."""
        groups: dict[int, tuple[dict[str, bytes], builtins.list[str]]] = {}

        def group(index: int) -> tuple[dict[str, bytes], builtins.list[str]]:
            return groups.setdefault(index, ({}, []))

        other_puts: dict[str, bytes] = {}
        other_deletes: builtins.list[str] = []
        for path, data in puts.items():
            index = shard_of_path(path, self.shards)
            if index is None:
                other_puts[path] = data
            else:
                group(index)[0][path] = data
        for path in deletes:
            index = shard_of_path(path, self.shards)
            if index is None:
                other_deletes.append(path)
            else:
                group(index)[1].append(path)
        for path, data in other_puts.items():
            for index in sorted(groups) or range(self.shards):
                group(index)[0][path] = data
        with self._lock:
            seen = {path: sorted(self._seen.get(path, ())) for path in other_deletes}
        for path in other_deletes:
            for index in seen[path] or range(self.shards):
                group(index)[1].append(path)
        return groups

    def history(self, limit: int = 100) -> builtins.list[Revision]:
        return self.parts[0].history(limit)

    def drop_history(self, revisions: Sequence[str]) -> None:
        for part in self.parts:
            part.drop_history(revisions)

    def drop_incomplete(self, before: float) -> int:
        return sum(part.drop_incomplete(before) for part in self.parts)

    def move(self, src: str, dst: str) -> bool:
        part = self._part(src)
        if part is not self._part(dst):
            return False  # a move never crosses repos; the caller keeps the file where it is
        return part.move(src, dst)

    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        return self._part(path).read_versioned(path)

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        return self._part(path).write_if(path, data, token)

    def exists(self) -> bool:
        return all(part.exists() for part in self.parts)

    def create(self) -> None:
        for part in self.parts:
            part.create()


__all__ = ["MAX_SHARDS", "ShardedBackend", "check_shards", "shard_of_path", "shard_of_worker"]
