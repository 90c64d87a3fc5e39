"""Which example files the learner has already read, without trusting anybody's clock.

File names carry the uploader's clock, and one worker whose clock runs two hours fast must not make every other
worker's files look old. So the cursor is the set of names read (ingested, quarantined or dropped as stale),
trimmed at every listing to the names the store still lists: a file not in the set and still listed is unread,
whatever its stamp. The set is bounded by the files the store keeps (pruning bounds those, and never removes an
unread file). Names carry a content hash and a millisecond stamp, so a new upload never reuses a read name.

Version 1 of the state (a watermark of the newest stamp and the names within `slack_s` of it) still loads: its
names are kept and files stamped below watermark - slack count as read, as they did, until the first listing
turns that rule into names (every listed file below it joins the set) and the stamp is forgotten.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zeb_core.formats.examples import parse_example_filename

VERSION = 2
DEFAULT_SLACK_S = 3600.0  # the window of the version-1 cursor, for states written by it


def timestamp_seconds(ts: str) -> float:
    """Seconds since the epoch of a file-name timestamp like 20261122T213012123Z."""
    base = calendar.timegm(time.strptime(ts[:15], "%Y%m%dT%H%M%S"))
    return base + int(ts[15:18]) / 1000.0


def _stamp(name: str) -> float | None:
    parsed = parse_example_filename(name)
    return None if parsed is None else timestamp_seconds(parsed[1])


@dataclass
class ExampleCursor:
    seen: set[str] = field(default_factory=set)  # names read, among those still listed
    legacy_floor: float | None = None  # version 1 only: stamps below this count as read until the first listing

    def is_new(self, name: str) -> bool:
        """Not read yet: a well-formed name not in the set (nor below a version-1 floor)."""
        stamp = _stamp(name)
        if stamp is None or name in self.seen:
            return False
        return self.legacy_floor is None or stamp >= self.legacy_floor

    def is_late(self, name: str) -> bool:
        """Always False: no file is given up on for its stamp any more (kept for the old call sites)."""
        return False

    def observe(self, listed: Iterable[str]) -> None:
        """Trim the set to the names the store lists now (a pruned or quarantined file never comes back)."""
        names = {n for n in listed if parse_example_filename(n)}
        if self.legacy_floor is not None:
            floor = self.legacy_floor
            self.seen |= {n for n in names if (_stamp(n) or 0.0) < floor}
            self.legacy_floor = None
        self.seen &= names

    def advance(self, names: Iterable[str], listed: Iterable[str] | None = None) -> None:
        """Mark files as read; with `listed` (the names the store lists now) also trim the set."""
        self.seen |= {n for n in names if parse_example_filename(n)}
        if listed is not None:
            self.observe(listed)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": VERSION, "seen": sorted(self.seen)}
        if self.legacy_floor is not None:
            out["legacy_floor"] = self.legacy_floor
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ExampleCursor:
        """A cursor from a state file, version 2 or the old watermark cursor (version 1, no "version" key)."""
        if not data:
            return cls()
        if int(data.get("version", 1)) >= 2:
            seen = {n for n in data.get("seen", []) if isinstance(n, str) and parse_example_filename(n)}
            floor = data.get("legacy_floor")
            return cls(seen, float(floor) if isinstance(floor, (int, float)) else None)
        recent = {n for n in data.get("recent", []) if isinstance(n, str) and parse_example_filename(n)}
        watermark = float(data.get("watermark", 0.0))
        floor = watermark - float(data.get("slack_s", DEFAULT_SLACK_S)) if watermark > 0 else None
        return cls(recent, floor)
