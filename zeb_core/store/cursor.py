"""Which example files the learner has already ingested, in a bounded amount of state.

Workers stamp a file's name with the time they upload it, so files arrive in roughly timestamp order; clocks on
different machines disagree a little. The cursor keeps the newest timestamp seen (the watermark) and the names
seen within `slack_s` before it. A file is new when its name is not among those and its timestamp is not older
than the window; a file older than the window that was never seen is "late" and counted, not ingested twice.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Any

from zeb_core.formats.examples import parse_example_filename

DEFAULT_SLACK_S = 3600.0


def timestamp_seconds(ts: str) -> float:
    """Seconds since the epoch of a file-name timestamp like 20261122T213012123Z."""
    base = calendar.timegm(time.strptime(ts[:15], "%Y%m%dT%H%M%S"))
    return base + int(ts[15:18]) / 1000.0


@dataclass
class ExampleCursor:
    watermark: float = 0.0
    recent: set[str] = field(default_factory=set)
    slack_s: float = DEFAULT_SLACK_S

    def is_new(self, name: str) -> bool:
        parsed = parse_example_filename(name)
        if parsed is None:
            return False
        return name not in self.recent and timestamp_seconds(parsed[1]) >= self.watermark - self.slack_s

    def is_late(self, name: str) -> bool:
        parsed = parse_example_filename(name)
        return parsed is not None and not self.is_new(name) and name not in self.recent

    def advance(self, names: list[str]) -> None:
        """Mark files as ingested (or given up on) and drop names that fell out of the window."""
        for name in names:
            parsed = parse_example_filename(name)
            if parsed is None:
                continue
            self.recent.add(name)
            self.watermark = max(self.watermark, timestamp_seconds(parsed[1]))
        cutoff = self.watermark - self.slack_s
        self.recent = {n for n in self.recent if timestamp_seconds(parse_example_filename(n)[1]) >= cutoff}  # type: ignore[index]

    def to_json(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "recent": sorted(self.recent), "slack_s": self.slack_s}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ExampleCursor":
        if not data:
            return cls()
        recent = {n for n in data.get("recent", []) if isinstance(n, str) and parse_example_filename(n)}
        return cls(float(data.get("watermark", 0.0)), recent, float(data.get("slack_s", DEFAULT_SLACK_S)))
