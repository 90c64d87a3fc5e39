"""The few primitives a storage backend must offer; everything else (layout, validation, leases, cursors,
quarantine, revert, prune) is written once on top of them in `zeb_core.store.store`.

A backend is one *repo*: a flat namespace of `/`-separated paths holding bytes. Three backends implement it:
a local folder, a HuggingFace Hub repo and an S3 prefix. Backends translate their own exceptions into the
errors below so callers can tell "try again" (`StoreUnavailable`) from "this will never work" (`StoreError`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """A store operation failed for a reason retrying will not fix (bad URL, permissions, missing repo)."""


class StoreUnavailable(StoreError):
    """A transient failure: timeout, connection refused, HTTP 429 or 5xx. Callers retry with backoff."""


class RateLimited(StoreUnavailable):
    """HTTP 429: the store refuses more calls (the Hub: more commits) for now. `retry_after` is how many seconds
    it asked the caller to wait (its Retry-After), when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(StoreError):
    """The path (or revision) does not exist."""


class LeaseHeld(StoreError):
    """Another live holder owns the namespace's write lease."""


class TooLarge(StoreError):
    """A file over the reader's size limit, refused before its bytes were brought here (retrying will not help)."""


def check_read_size(where: str, size: int | None, max_bytes: int | None) -> None:
    """Raise TooLarge when a file of `size` bytes (None: not known yet) is over `max_bytes` (None: no limit)."""
    if max_bytes is not None and size is not None and size > max_bytes:
        raise TooLarge(f"{where} is {size:,} bytes, over the limit of {max_bytes:,} bytes")


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified: float  # seconds since the epoch, as the backend reports it


@dataclass(frozen=True)
class Listing:
    """One folder's own files and sub-folders, and the files of the sub-folders asked for (`Backend.list_recent`)."""

    files: list[FileInfo]  # directly in the folder
    folders: list[str]  # the names of its sub-folders (those holding a file; locally, also empty ones)
    within: list[FileInfo]  # every file under the sub-folders asked for, at any depth


# A listing of at least this many entries takes more than one call on S3 and on the Hub (their page size).
LISTING_PAGE = 1000


def split_listing(prefix: str, infos: Sequence[FileInfo], want: Callable[[str], bool]) -> Listing:
    """A `Listing` of `prefix` out of a recursive listing of it."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    files, folders, within = [], set(), []
    for info in infos:
        head, sep, _ = info.path[len(base) :].partition("/")
        if not sep:
            files.append(info)
            continue
        folders.add(head)
        if want(head):
            within.append(info)
    return Listing(files, sorted(folders), within)


@dataclass(frozen=True)
class Revision:
    id: str
    time: float
    message: str


# Paths a backend keeps for itself and never lists.
INTERNAL_PREFIXES = (".history/", ".zeb/")
# The compare-and-swap token of a file that does not exist, where a backend has no token of its own for that.
ABSENT = "absent"


class Backend(Protocol):
    """One repo. Every method may raise StoreUnavailable (retryable) or StoreError/NotFound (not).

    The backends subclass this protocol, so they inherit the defaults of its optional operations.
    """

    url: str  # for messages; never holds credentials
    # Optional: True where history is kept as copies the store may forget (`drop_history`), as locally and on
    # S3 (`zeb_core.store.history`); False, the default, where it is the repo's own (the Hub's git history).
    history_copies: bool = False
    # Optional: True where the store limits how many commits it takes (the Hub: about 128 an hour per repo), so
    # workers pace their example uploads (`zeb_core.selfplay.outbox.CommitPacer`); False, the default, locally and
    # on S3.
    commit_limited: bool = False
    # Optional: how many repos the files are spread over (`zeb_core.store.shards.ShardedBackend`: example files
    # in their worker's repo, each with its own commit limit); 1, the default, for one repo.
    shards: int = 1

    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        """The bytes of `path` now, or as of `revision` (an id from `history`). With `max_bytes`, a larger file
        is refused with TooLarge by its size (a stat, the reply's length) before its bytes are read."""
        ...

    def list(self, prefix: str = "") -> list[FileInfo]:
        """Every file under `prefix` (recursive), internal paths excluded."""
        ...

    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        """Write `puts` and remove `deletes` as one push.

        Readers see either the old or the new bytes of each file, never a partial file. Files are made visible
        in the order given, so the caller puts its commit marker (a state file naming the others' checksums)
        last; a backend with real multi-file commits (the Hub) makes them all visible at once. With
        `history=True` the push is recorded so `history()` lists it and `read(path, revision)` can read it later.
        Committing bytes a path already holds is harmless (retries after a lost reply are safe).
        """
        ...

    def history(self, limit: int = 100) -> builtins.list[Revision]:  # `list` is also a method here
        """Recorded pushes, newest first."""
        ...

    def drop_history(self, revisions: Sequence[str]) -> None:
        """Forget recorded pushes, where `history_copies` says they are copies; by default (the Hub) keep them."""
        return None  # a body, so the default is inherited rather than abstract

    def drop_incomplete(self, before: float) -> int:
        """Remove history copies of pushes that died before their record, made before `before`; how many. By
        default (the Hub, whose commits are whole) there are none."""
        return 0

    def list_recent(self, prefix: str, want: Callable[[str], bool]) -> Listing:
        """The files directly under `prefix`, its sub-folders, and the files of the sub-folders `want` picks
        (internal paths excluded), in as few calls as the backend allows: the learner lists only its recent
        hour folders each cycle, so an idle cycle costs the same with 100 files stored or 100,000. By default
        one recursive `list` (what a backend without a cheaper way has)."""
        return split_listing(prefix, self.list(prefix), want)

    def move(self, src: str, dst: str) -> bool:
        """Rename a file inside the repo without bringing its bytes here (how a file too large to read is
        quarantined). True when `dst` holds it now (also when a retried move finds it done); False where the
        backend cannot (the default, the Hub), and the file stays where it was."""
        return False

    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        """(bytes, token) for a compare-and-swap; (None, token) when the file does not exist."""
        ...

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        """Write `data` only if `path` is unchanged since `read_versioned` returned `token`; False if it changed."""
        ...

    def exists(self) -> bool:
        """Whether the repo itself exists (reachable and created)."""
        ...

    def create(self) -> None:
        """Create the repo (bucket prefix, Hub repo, folder) if missing."""
        ...


def is_internal(path: str) -> bool:
    return path.startswith(INTERNAL_PREFIXES)


def check_path(path: str) -> str:
    """Reject paths that could escape the repo or collide with internal ones."""
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in path.split("/")):
        raise StoreError(f"invalid store path {path!r}")
    return path


__all__ = [
    "ABSENT",
    "INTERNAL_PREFIXES",
    "LISTING_PAGE",
    "Backend",
    "FileInfo",
    "LeaseHeld",
    "Listing",
    "NotFound",
    "RateLimited",
    "Revision",
    "StoreError",
    "StoreUnavailable",
    "TooLarge",
    "check_path",
    "check_read_size",
    "is_internal",
    "split_listing",
]
