"""Which example files the learner has already read, without trusting anybody's clock, in bounded space.

Example files sit in hour folders (`NAME/YYYYMMDD_HH/`, `hour_folder`), and an uploader never writes into a
folder older than the newest it listed (`Store.upload_example_files`): one whose clock runs slow writes into the
newest folder all the same. So the store itself orders the folders, and the cursor keeps two things:

- `closed`: every folder up to this one is read, and no upload can land in it any more. A folder closes once every
  file in it is read and a newer folder has been listed for `SETTLE_S` (by the learner's own clock): longer than
  any upload takes from its listing to its commit (uploads refuse to commit on a listing half that old), so an
  upload that listed before the newer folder existed has landed by then, and every later one writes above.
- `seen`: the names read among the files of the open folders and of the flat layout (files directly in NAME/,
  as stores and workers before hour folders wrote them), trimmed at every listing to the names listed: a file not
  in the set and still listed is unread, whatever its stamp.

A learner therefore lists only the folders above `closed` (`Store.new_examples`), and the cursor holds the names
of about two hours of uploads however many files the store keeps. Names carry a content hash and a millisecond
stamp, so a new upload never reuses a read name.

The state is version 2 either way: `closed` and `opened` (when each open folder was first listed) are keys a
state without hour folders lacks, and such a state (a set of names: files of the flat layout) loads with every
folder open. Version 1 (a watermark of the newest stamp and the names within `slack_s` of it) still loads: its
names are kept and files stamped below watermark - slack count as read, as they did, until the first listing
turns that rule into names (every listed file below it joins the set) and the stamp is forgotten.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zeb_core.formats.examples import parse_example_filename

VERSION = 2
DEFAULT_SLACK_S = 3600.0  # the window of the version-1 cursor, for states written by it
SETTLE_S = 3600.0  # a folder closes once a newer one has been listed this long (upload_example_files: half of it)
_HOUR_FOLDER = re.compile(r"^\d{8}_\d{2}$")  # has a "_", which no namespace name has: never a namespace's folder


def timestamp_seconds(ts: str) -> float:
    """Seconds since the epoch of a file-name timestamp like 20261122T213012123Z."""
    base = calendar.timegm(time.strptime(ts[:15], "%Y%m%dT%H%M%S"))
    return base + int(ts[15:18]) / 1000.0


def hour_folder(t: float) -> str:
    """The hour folder of a time (UTC): 20261122_21."""
    return time.strftime("%Y%m%d_%H", time.gmtime(t))


def is_hour_folder(name: str) -> bool:
    return bool(_HOUR_FOLDER.match(name))


def _stamp(name: str) -> float | None:
    parsed = parse_example_filename(name)
    return None if parsed is None else timestamp_seconds(parsed[1])


def split_key(key: str) -> tuple[str, str]:
    """(hour folder or "" for the flat layout, file name) of a file's path within its namespace's folder."""
    folder, _, name = key.rpartition("/")
    return folder, name


@dataclass
class ExampleCursor:
    seen: set[str] = field(default_factory=set)  # names read, among those listed in open folders and flat
    legacy_floor: float | None = None  # version 1 only: stamps below this count as read until the first listing
    closed: str | None = None  # every hour folder up to this one is read and closed
    opened: dict[str, float] = field(default_factory=dict)  # open hour folder -> when it was first listed

    def is_new(self, name: str, folder: str = "") -> bool:
        """Not read yet: a well-formed name not in the set, not in a closed folder (nor below a version-1
        floor). `folder` is the file's hour folder ("" in the flat layout)."""
        stamp = _stamp(name)
        if stamp is None or name in self.seen or (folder and self.closed is not None and folder <= self.closed):
            return False
        return self.legacy_floor is None or stamp >= self.legacy_floor

    def is_late(self, name: str) -> bool:
        """Always False: no file is given up on for its stamp any more (kept for the old call sites)."""
        return False

    def lists(self, folder: str) -> bool:
        """Whether a listing for this cursor must list `folder`: an hour folder not closed."""
        return is_hour_folder(folder) and (self.closed is None or folder > self.closed)

    def observe(self, listed: Iterable[str], folders: Iterable[str] | None = None, now: float | None = None) -> None:
        """After a listing: `listed` are the files found (paths within the namespace's folder: FOLDER/NAME, or
        NAME in the flat layout), `folders` the open hour folders the listing found (None: not a listing of
        folders). Records when each folder was first listed, closes the settled ones (`SETTLE_S`) and trims the
        set to the names listed and still open (a pruned or quarantined file never comes back)."""
        keys = [split_key(k) for k in listed]
        keys = [(f, n) for f, n in keys if parse_example_filename(n)]
        if self.legacy_floor is not None:
            floor = self.legacy_floor
            self.seen |= {n for _, n in keys if (_stamp(n) or 0.0) < floor}
            self.legacy_floor = None
        if folders is not None:
            now = time.time() if now is None else now
            for folder in folders:
                if self.lists(folder):
                    self.opened.setdefault(folder, now)
            self._close(keys, now)
        self.seen &= {n for f, n in keys if not f or self.closed is None or f > self.closed}

    def _close(self, keys: list[tuple[str, str]], now: float) -> None:
        """Close the oldest open folders, in order, while each is read and settled (a newer folder has been
        listed for SETTLE_S)."""
        unread = {f for f, n in keys if f and n not in self.seen}
        self.opened = {f: t for f, t in self.opened.items() if self.lists(f)}  # a state's stray entries
        for folder in sorted(self.opened):
            newer = [t for f, t in self.opened.items() if f > folder]
            if folder in unread or not newer or now - min(newer) < SETTLE_S:
                break
            self.closed = folder
            del self.opened[folder]

    def advance(self, names: Iterable[str], listed: Iterable[str] | None = None) -> None:
        """Mark files as read; with `listed` (the names the store lists now) also trim the set."""
        self.seen |= {n for n in names if parse_example_filename(n)}
        if listed is not None:
            self.observe(listed)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": VERSION, "seen": sorted(self.seen)}
        if self.legacy_floor is not None:
            out["legacy_floor"] = self.legacy_floor
        if self.closed is not None:
            out["closed"] = self.closed
        if self.opened:
            out["opened"] = dict(sorted(self.opened.items()))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ExampleCursor:
        """A cursor from a state file: version 2 (with or without hour folders) or the old watermark cursor
        (version 1, no "version" key). Entries that are not what they should be are left out."""
        if not data:
            return cls()
        if int(data.get("version", 1)) >= 2:
            seen = {n for n in data.get("seen", []) if isinstance(n, str) and parse_example_filename(n)}
            floor = data.get("legacy_floor")
            closed = data.get("closed")
            opened = data.get("opened")
            return cls(
                seen,
                float(floor) if isinstance(floor, (int, float)) else None,
                closed if isinstance(closed, str) and is_hour_folder(closed) else None,
                {
                    f: float(t)
                    for f, t in (opened.items() if isinstance(opened, dict) else ())
                    if isinstance(f, str) and is_hour_folder(f) and isinstance(t, (int, float))
                },
            )
        recent = {n for n in data.get("recent", []) if isinstance(n, str) and parse_example_filename(n)}
        watermark = float(data.get("watermark", 0.0))
        floor = watermark - float(data.get("slack_s", DEFAULT_SLACK_S)) if watermark > 0 else None
        return cls(recent, floor)
