"""The worker's local outbox: a generated batch of examples is written here first and deleted only after the store
confirmed the upload, so a crash, a kill or a store outage never loses games.

One folder per store and namespace on this host (not per worker id, which changes on restart), so a restarted
worker uploads what an earlier one left. Several workers on one host may share it: a file being uploaded is held
with an flock, and others skip it.

A store that limits commits (the Hub, about 128 an hour per repo) gets the outbox in few commits: every file
waiting goes into one commit (`Store.upload_example_files`), at most one per `CommitPacer` interval, which
shares a fleet-wide budget among the workers seen uploading. A file is deleted here only after the commit that
holds it is confirmed; one committed whose deletion a crash cut short is found by its content hash in the store's
listing and not uploaded again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zeb_core.formats.examples import decode_examples
from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES, FormatError, read_bounded
from zeb_core.formats.weights import write_atomic
from zeb_core.store.cursor import timestamp_seconds
from zeb_core.store.store import ExampleRef

log = logging.getLogger("zeb.outbox")
SUFFIX = ".examples.safetensors"


def default_outbox_dir(store_url: str, name: str) -> Path:
    """Under $ZEB_OUTBOX_DIR (the job templates point it at a persistent volume), else ~/.cache/zeb/outbox."""
    base = Path(os.environ.get("ZEB_OUTBOX_DIR", Path.home() / ".cache" / "zeb" / "outbox"))
    return base / hashlib.sha256(store_url.encode()).hexdigest()[:12] / name


class Outbox:
    def __init__(self, folder: Path | str, decode: Callable[[bytes], Any] = decode_examples) -> None:
        """`decode` validates this outbox's kind of file (play examples by default) and gives its manifest."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.decode = decode

    def put(self, data: bytes, sha256: str) -> Path:
        path = self.folder / f"{sha256[:32]}{SUFFIX}"
        write_atomic(path, data)
        return path

    def pending(self) -> list[Path]:
        """Files waiting for upload, oldest first. Another worker on this host may upload and remove one at any
        moment, so a file gone by the time it is looked at is simply not pending (one stat, no exists-then-stat)."""
        found: list[tuple[float, str, Path]] = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                found.append((path.stat().st_mtime, path.name, path))
            except FileNotFoundError:
                continue
        return [path for _, _, path in sorted(found)]

    @contextmanager
    def claim(self, path: Path) -> Iterator[bool]:
        """Hold `path` while uploading it; yields False when another worker holds it or it is already gone."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held open (the lock) across the yield, closed below
        except FileNotFoundError:
            yield False
            return
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield path.exists()

    def load(self, path: Path) -> tuple[bytes, dict] | None:
        """(bytes, manifest) of an outbox file, or None when it is damaged or too large to read (refused by its
        size before it is read): then it is renamed *.bad, beside a *.reason.json saying why."""
        try:
            data = read_bounded(path, MAX_EXAMPLE_FILE_BYTES, path.name)
            return data, self.decode(data).manifest
        except FormatError as exc:
            self._set_aside(path, str(exc))
            return None

    def _set_aside(self, path: Path, reason: str) -> None:
        note = json.dumps({"path": path.name, "reason": reason, "time": time.time()}).encode()
        write_atomic(path.with_suffix(".reason.json"), note)
        path.rename(path.with_suffix(".bad"))
        log.error("outbox file %s is bad (%s); set aside as %s", path, reason, path.with_suffix(".bad").name)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------ pacing commits on a commit-limited store
WORKERS_WINDOW_S = 3600.0  # workers are counted by the example files they uploaded this recently (or 2 intervals)
MAX_SLOWDOWN = 16.0  # the most a run of refusals multiplies the interval by
MAX_BACKOFF_S = 60.0  # refusals in a row back off 1, 2, 4, ... up to this, whatever the interval
RECOVERY = 0.8  # each commit that goes through takes a fifth off the slowdown (2 after one 429: 4 commits back)
JITTER = 0.1  # +-10% on every wait, so a fleet started together spreads out
# The share of the budget a fleet aims at: workers commit at random phases, so the commits of any one hour vary
# around the mean (about +-10% at 256 workers; a hash spreads workers over shards unevenly too). Aiming at the
# whole budget put the busiest simulated hour at 108 of 100 (bench/fleet_sim.py, 256 workers).
BUDGET_SHARE = 0.8


def count_workers(refs: Iterable[ExampleRef], me: str, window_s: float, now: float | None = None) -> int:
    """Workers uploading to a namespace: the distinct worker ids of its example files stamped within `window_s`
    of now (by their uploaders' clocks), this worker among them. A restarted worker (a new id) counts twice until
    its old files age out: the budget errs on the slow side."""
    now = time.time() if now is None else now
    return len({r.worker for r in refs if now - timestamp_seconds(r.timestamp) <= window_s} | {me})


class CommitPacer:
    """When a worker may next commit its outbox to a store that limits commits (the Hub).

    The fleet shares `per_hour` commits and aims at BUDGET_SHARE of them, so the busiest hour stays within the
    budget: with n workers seen, each commits at most once every n * 3600 / (BUDGET_SHARE * per_hour) seconds. A
    refused commit (a 429, or the store down) doubles a slowdown factor on that interval (up to MAX_SLOWDOWN) and
    the next try waits at least what its Retry-After asked, and at least a backoff of 1, 2, 4, ... s over refusals
    in a row, plus a random share of the lengthened interval, so workers refused together do not all come back
    together; each commit that goes through takes a fifth off the factor (RECOVERY), so the interval stays longer
    for a while after a 429. The first commit is due after a random share of the interval (`start`): a fleet
    restarted at once spreads its commits from the start. `per_hour` 0 (a store without a limit) leaves only the
    backoff after refusals."""

    def __init__(
        self, per_hour: float, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None
    ) -> None:
        if per_hour < 0 or not math.isfinite(per_hour):
            raise ValueError(f"commits per hour must be a number >= 0, not {per_hour}")
        self.per_hour = per_hour
        self.interval = 0.0  # seconds between this worker's commits, from the budget and the workers seen
        self.workers = 1
        self.slowdown = 1.0
        self.refusals = 0  # in a row
        self.next_at = -math.inf
        self.clock = clock
        self._rng = rng or random.Random()

    def _jitter(self, seconds: float) -> float:
        return seconds * (1 + JITTER * (2 * self._rng.random() - 1))

    def wait_s(self) -> float:
        """Seconds until the next commit is due (0: now)."""
        return max(0.0, self.next_at - self.clock())

    def due(self) -> bool:
        return self.wait_s() <= 0

    def window_s(self) -> float:
        """How far back uploads count a worker as live: an hour, or two intervals where those are longer."""
        return max(WORKERS_WINDOW_S, 2 * self.interval * self.slowdown)

    @property
    def started(self) -> bool:
        return self.next_at > -math.inf

    def start(self, workers: int) -> float:
        """Before the first commit, with `workers` seen uploading lately: the first commit is due after a random
        share of one interval, so a fleet started together spreads its first commits over the interval instead
        of spending the budget at once. Returns the wait."""
        self.seen(workers)
        wait = self._rng.random() * self.interval
        self.next_at = self.clock() + wait
        return wait

    def seen(self, workers: int) -> None:
        """`workers` seen uploading lately: the interval follows."""
        self.workers = max(1, workers)
        self.interval = self.workers * 3600.0 / (BUDGET_SHARE * self.per_hour) if self.per_hour > 0 else 0.0

    def committed(self, workers: int) -> float:
        """A commit went through with `workers` workers seen: the next is due one interval on; returns it."""
        self.seen(workers)
        self.slowdown = max(1.0, self.slowdown * RECOVERY)
        self.refusals = 0
        wait = self._jitter(self.interval * self.slowdown)
        self.next_at = self.clock() + wait
        return wait

    def refused(self, retry_after: float | None = None) -> float:
        """A commit was refused (`retry_after`: what a 429 asked): the interval lengthens and the next try waits
        at least that long; returns the wait."""
        self.slowdown = min(MAX_SLOWDOWN, self.slowdown * 2)
        self.refusals += 1
        backoff = min(MAX_BACKOFF_S, 2.0 ** (self.refusals - 1))
        # Retry-After is a floor, not a time to meet: workers refused together would all come back at once.
        # A random share of the (lengthened) interval on top spreads them, as the first commits are spread.
        spread = self._rng.random() * max(self.interval * self.slowdown, backoff)
        wait = max(retry_after or 0.0, self._jitter(backoff)) + spread
        self.next_at = self.clock() + wait
        return wait
