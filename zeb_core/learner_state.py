"""The learner's state file (`NAME-state.json`): what a push records beside the weights, read back on resume.

One class for the three places that write or read it (the learner's restore, its push and its promotion), so a
key is spelled once. Reading is tolerant: a state written by an older version lacks keys (they get the defaults
below) or holds keys this version does not know (format_version, the store's checksums, revert notes): those are
kept in `extra` and written back as they were read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from zeb_core.store.cursor import ExampleCursor


@dataclass
class LearnerState:
    step: int = 0
    """Training cycles done: the version number of the weights beside this state."""
    total_games: int = 0
    """Self-play games whose examples were ingested (trained on or not)."""
    examples_ingested: int = 0
    """Examples added to the replay buffer; those of files read after the push are ingested again on resume."""
    examples_dropped_stale: int = 0
    """Examples refused for coming from weights more than --max-model-lag steps old."""
    examples_dropped_other_target: int = 0
    """Examples refused for values labelled for another --value-target."""
    files_quarantined: int = 0
    """Example files that failed validation and were moved to quarantine/."""
    value_target: str = "points"
    """The objective the value head learns (engine.VALUE_TARGETS)."""
    optimizer_step: int = 0
    """The optimizer's own step count, for the learning-rate schedule (can differ from `step` after a bootstrap)."""
    learner_id: str | None = None
    """Which learner process pushed (host and a random suffix)."""
    cursor: ExampleCursor = field(default_factory=ExampleCursor)
    """The ingest cursor: the example files already read, so a resume reads each file once."""
    last_eval: dict[str, float] = field(default_factory=dict)
    """The newest evaluation (strength.eval_metrics' keys and its "step")."""
    last_metrics: dict[str, float] = field(default_factory=dict)
    """The last cycle's training losses, for `zeb train`'s curve."""
    time: float = field(default_factory=time.time)
    """When this state was written (seconds since the epoch)."""
    promotion: dict[str, Any] | None = None
    """Only in the promoted model's state: why it was promoted (promotion.PromotionResult as a dict)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, kept as read."""

    def to_json(self) -> dict[str, Any]:
        """The state as written to the store (the unknown keys first, so a known key always wins)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra" or (f.name == "promotion" and self.promotion is None):
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_json() if isinstance(value, ExampleCursor) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LearnerState:
        """A state as read from the store, of this version or an older one: a key missing, null or of the wrong
        type gets its default."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {"extra": {k: v for k, v in data.items() if k not in known}}
        for key in (
            "step",
            "total_games",
            "examples_ingested",
            "examples_dropped_stale",
            "examples_dropped_other_target",
            "files_quarantined",
            "optimizer_step",
            "time",
        ):
            try:
                kwargs[key] = (float if key == "time" else int)(data[key])
            except (KeyError, TypeError, ValueError):
                pass
        for key, kind in (
            ("value_target", str),
            ("learner_id", str),
            ("last_eval", dict),
            ("last_metrics", dict),
            ("promotion", dict),
        ):
            if isinstance(data.get(key), kind):
                kwargs[key] = dict(data[key]) if kind is dict else data[key]
        cursor = data.get("cursor")
        kwargs["cursor"] = ExampleCursor.from_json(cursor if isinstance(cursor, dict) else None)
        return cls(**kwargs)
