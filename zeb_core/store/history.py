"""History as copies: how the local folder and S3, which have no commits of their own, keep pushes.

One scheme, written once: a push kept for history is first written as a complete copy under `.history/REV/`
with `.commit.json` (the record) last, and only then are the live files put, in the order given (the caller's
state file last). `history()` lists the revisions whose record exists, so a push that died before its record is
not a push; `read(path, revision)` reads the copy; `drop_history` removes the record first, so a half-dropped
push is not listed either, and `drop_incomplete` removes the copies of pushes that died before their record. A
backend supplies the primitives (put or delete a copy, put or delete live files, list revision ids, remove a
revision's folder) and `read`; the Hub keeps git history instead and needs none.
"""

from __future__ import annotations

import json
import secrets
import time
from abc import abstractmethod
from collections.abc import Sequence

from zeb_core.store.backend import Backend, NotFound, Revision, StoreError, TooLarge, check_path

HISTORY_DIR = ".history"
COMMIT_FILE = ".commit.json"
MAX_RECORD_BYTES = 1 << 20  # a record names a push's few files: a larger one is not ours, and is not read


def new_revision_id() -> str:
    """Sortable by time, unique across writers."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def copy_path(revision: str, path: str) -> str:
    """Where the history copy of `path` at `revision` lives, relative to the repo."""
    check_path(path)
    check_path(revision)
    if "/" in revision:
        raise StoreError(f"invalid revision id {revision!r}")
    return f"{HISTORY_DIR}/{revision}/{path}"


def revision_time(revision: str) -> float | None:
    """When a revision id was made (its writer's clock), or None for an id not made by `new_revision_id`."""
    head = revision.split("-", 1)[0]
    return int(head) / 1e9 if len(head) == 20 and head.isdigit() else None


def encode_record(rev: Revision, puts: Sequence[str], deletes: Sequence[str]) -> bytes:
    return json.dumps(
        {"id": rev.id, "time": rev.time, "message": rev.message, "files": list(puts), "deletes": list(deletes)}
    ).encode()


def decode_record(raw: bytes) -> Revision | None:
    """The revision a record names; None for an unreadable one (it is skipped, not an error, as is a record over
    MAX_RECORD_BYTES, never read)."""
    try:
        record = json.loads(raw)
        return Revision(str(record["id"]), float(record["time"]), str(record.get("message", "")))
    except (ValueError, KeyError, TypeError):
        return None


class CopyHistory(Backend):
    """`commit`, `history` and `drop_history` over the primitives below, for backends that keep history as copies."""

    history_copies = True

    # ------------------------------------------------------------ primitives
    @abstractmethod
    def _put_copy(self, revision: str, path: str, data: bytes) -> None:
        """Write the history copy of `path` at `revision` (whole: readers never see part of it)."""

    @abstractmethod
    def _put_live(self, path: str, data: bytes, revision: str | None) -> None:
        """Write the live `path` (whole); `revision` names its history copy when there is one (S3 copies it)."""

    @abstractmethod
    def _delete_live(self, paths: Sequence[str]) -> None:
        """Remove live files; missing ones are fine."""

    @abstractmethod
    def _revision_ids(self) -> list[str]:
        """The folder names under `.history/`, in any order."""

    @abstractmethod
    def _remove_revision(self, revision: str) -> None:
        """Remove what is left of a revision's folder (its record is already gone)."""

    @abstractmethod
    def _delete_copy(self, revision: str, path: str) -> None:
        """Remove one history copy (the record, when a push is dropped)."""

    # ------------------------------------------------------------ the scheme
    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        for path in [*puts, *deletes]:
            check_path(path)
        rev = Revision(new_revision_id(), time.time(), message)
        if history:
            for path, data in puts.items():
                self._put_copy(rev.id, path, data)
            self._put_copy(rev.id, COMMIT_FILE, encode_record(rev, list(puts), deletes))
        for path, data in puts.items():
            self._put_live(path, data, rev.id if history else None)
        if deletes:
            self._delete_live(list(deletes))
        return rev

    def history(self, limit: int = 100) -> list[Revision]:
        out: list[Revision] = []
        for rev_id in sorted(self._revision_ids(), reverse=True):
            if not rev_id or rev_id.startswith("."):
                continue
            try:
                raw = self.read(COMMIT_FILE, rev_id, MAX_RECORD_BYTES)
            except NotFound:
                continue  # a push that died before its record: not a push
            except TooLarge:
                continue  # unreadable, as decode_record's None
            rev = decode_record(raw)
            if rev is None:
                continue
            out.append(rev)
            if len(out) >= limit:
                break
        return out

    def drop_history(self, revisions: Sequence[str]) -> None:
        """Forget recorded pushes (their `.history/REV/` copies); the live files are untouched."""
        for rev in revisions:
            self._delete_copy(rev, COMMIT_FILE)  # the record first: a half-dropped push is not listed
            self._remove_revision(rev)

    def drop_incomplete(self, before: float) -> int:
        """Remove the copies of pushes that died before their record (a kill), made before `before` (a younger
        one may be a push still writing its copy); returns how many. `history()` never lists them."""
        dropped = 0
        for rev_id in self._revision_ids():
            made = revision_time(rev_id)
            if made is None or made >= before:
                continue
            try:
                self.read(COMMIT_FILE, rev_id, MAX_RECORD_BYTES)
                continue  # a recorded push: drop_history's, by the namespace's rules
            except TooLarge:
                continue  # a record, if not a readable one: not a copy to drop here
            except NotFound:
                pass
            self._remove_revision(rev_id)
            dropped += 1
        return dropped


__all__ = [
    "COMMIT_FILE",
    "HISTORY_DIR",
    "CopyHistory",
    "copy_path",
    "decode_record",
    "encode_record",
    "new_revision_id",
    "revision_time",
]
