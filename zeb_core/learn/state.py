"""The learner's state file (`NAME-state.json`): what a push records beside the weights, read back on resume.

One class for the three places that write or read it (the learner's restore, its push and its promotion), so a
key is spelled once. Reading is tolerant: a state written by an older version lacks keys (they get the defaults
below) or holds keys this version does not know (format_version, the store's checksums, revert notes): those are
kept in `extra` and written back as they were read.

The state's `buffer_floor` is also a pruning rule: `prune_sparing_buffer`, which every pruner calls (the learner,
the prune flow, `zeb store prune`), never removes it or a newer example file, so a restarted learner refills its
replay buffer as full as it was. The BidNet's state (NAME-bid) records its own, by the same rules: `BufferFiles`
keeps a floor for either buffer and `refill_newest` reads either back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from zeb_core.formats.examples import parse_example_filename
from zeb_core.store.backend import StoreError
from zeb_core.store.cursor import ExampleCursor, timestamp_seconds
from zeb_core.store.store import ExampleRef, PruneReport, Store

T = TypeVar("T")


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
    buffer_floor: str | None = None
    """The oldest example file a restart needs to refill the replay buffer (None: no file needed, or a state from
    before this key): pruners keep it and every newer one (`prune_sparing_buffer`)."""
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
        floor = data.get("buffer_floor")
        if isinstance(floor, str) and parse_example_filename(floor) is not None:
            kwargs["buffer_floor"] = floor
        return cls(**kwargs)


def file_order(name: str) -> tuple[str, str]:
    """Where an example file sorts among the listed ones (`Store.list_examples`: by file-name stamp, then name),
    which is also the order a restarted learner refills its buffer in (newest first)."""
    parsed = parse_example_filename(name)
    return ("" if parsed is None else parsed[1], name)


class BufferFiles:
    """The example files a replay buffer of `capacity` examples holds examples of, with how many each put in:
    from them its floor, the oldest file a restart must read back to refill the buffer as full (the play
    learner's and the BidNet's). A buffer of several parts (the BidNet's bid and declaration examples, each
    `capacity` long) records for each file its smallest part, so the floor refills every part."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[str, int] = {}

    def add(self, name: str, examples: int) -> None:
        self.counts[name] = examples

    def floor(self) -> str | None:
        """Newest first (the order a restart refills in), the file where the files' examples reach the capacity,
        or the oldest of them when they do not (None without any). Files below it are forgotten here: the buffer
        has evicted their examples, so the floor only moves on."""
        need, floor = self.capacity, None
        for name in sorted(self.counts, key=file_order, reverse=True):
            floor = name
            need -= self.counts[name]
            if need <= 0:
                break
        if floor is not None:
            self.counts = {n: c for n, c in self.counts.items() if file_order(n) >= file_order(floor)}
        return floor


def refill_newest(
    store: Store,
    name: str,
    cursor: ExampleCursor,
    files: BufferFiles,
    read: Callable[[ExampleRef], tuple[T, int] | None],
) -> list[T]:
    """What a restarted learner refills its buffer with: the newest files already read (`cursor`; not counted
    again), newest first until they hold `files.capacity` examples. `read` gives a file's contents and the
    examples it counts for (`BufferFiles`), or None for a file to skip (quarantined, another value target).
    Returns the contents oldest first, the order to add them in, and records the files in `files` only then, so
    a retry after a store error starts clean."""
    refs = [r for r in store.list_examples(name) if not cursor.is_new(r.name, r.folder)]
    chosen: list[tuple[str, T, int]] = []
    loaded = 0
    for ref in reversed(refs):
        if loaded >= files.capacity:
            break
        got = read(ref)
        if got is None:
            continue
        chosen.append((ref.name, *got))
        loaded += got[1]
    for file, _, count in chosen:
        files.add(file, count)
    return [content for _, content, _ in reversed(chosen)]


def pushed_buffer_floor(store: Store, name: str) -> str | None:
    """The buffer floor of the namespace's last push (None without one)."""
    return LearnerState.from_json(store.peek_state(name)).buffer_floor


def prune_sparing_buffer(
    store: Store,
    name: str,
    keep: int | None,
    max_age_s: float | None,
    floor: str | None,
    now: float | None = None,
    spare_unread: bool = True,
) -> PruneReport:
    """`Store.prune_examples` (beyond the newest `keep` files, older than `max_age_s`, never a file the learner has
    not read), sparing also `floor` and every newer file: those a restarted learner refills its replay buffer from,
    so no prune shrinks the buffer a restart gets back. Both rules become one cut by file-name stamp, so a file
    uploaded while this runs shifts nothing. `spare_unread=False` (the operator's override for a namespace whose
    learner is gone) lifts both rules."""
    if keep is not None and keep < 0:
        raise StoreError(f"keep must be >= 0, not {keep}")
    now = time.time() if now is None else now
    parsed = None if floor is None else parse_example_filename(floor)
    if parsed is None or not spare_unread or (keep is None and max_age_s is None):
        return store.prune_examples(name, keep=keep, max_age_s=max_age_s, now=now, spare_unread=spare_unread)
    cut = -math.inf  # files stamped before the cut go
    if max_age_s is not None:
        cut = now - max_age_s
    if keep is not None:
        refs = store.list_examples(name)
        if keep == 0:
            cut = math.inf
        elif len(refs) > keep:
            cut = max(cut, timestamp_seconds(refs[-keep].timestamp))  # the oldest of the newest `keep`
    cut = min(cut, timestamp_seconds(parsed[1]))
    return store.prune_examples(name, keep=None, max_age_s=now - cut, now=now)
