"""The monitor's checks: is training alive? Each one reads a store (or a list of runs) and gives a `Check` row.

The rules live here; `tasks.monitor` runs them as Prefect tasks and asks the Prefect API which runs are quiet.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES, FormatError, read_header
from zeb_core.store import Store, StoreError
from zeb_core.store.backend import TooLarge
from zeb_core.store.cursor import timestamp_seconds

log = logging.getLogger("zeb.monitor")


@dataclass
class Check:
    check: str
    ok: bool
    value: str
    threshold: str
    detail: str

    def row(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": "OK" if self.ok else "FAIL",
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


def minutes(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds / 60:.1f} min"


def read_manifest(store: Store, path: str) -> dict[str, Any] | None:
    """The JSON manifest of an example file (header only; no validation of the tensors, no quarantine: a file
    over the example-file limit is refused unread, with a warning, and left for the learner to quarantine)."""
    try:
        data = store.examples.read(path, None, MAX_EXAMPLE_FILE_BYTES)
        _, meta = read_header(data)
        manifest = json.loads(meta.get("zeb", "null"))
    except TooLarge as exc:
        log.warning("not reading the manifest of %s: %s", path, exc)
        return None
    except (StoreError, FormatError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def check_examples(store: Store, name: str, max_age_s: float, now: float) -> Check:
    """Stall when the newest example file is older than `max_age_s` (or there is none)."""
    refs = store.list_examples(name)
    threshold = f"<= {minutes(max_age_s)}"
    if not refs:
        state = store.peek_state(name)
        since = None if state is None else state.get("time")
        age = None if since is None else now - float(since)
        ok = age is not None and age <= max_age_s
        return Check(
            "new examples",
            ok,
            "no files",
            threshold,
            "no example files yet" + ("" if ok else "; are self-play workers running?"),
        )
    newest = refs[-1]
    age = now - timestamp_seconds(newest.timestamp)
    recent = [r for r in refs if now - timestamp_seconds(r.timestamp) <= max_age_s]
    workers = sorted({r.worker for r in recent})
    detail = f"newest {newest.name}; {len(recent)} files from {len(workers)} workers in the window"
    if age > max_age_s:
        detail = f"no new example files for {minutes(age)} (newest {newest.name}); are self-play workers running?"
    return Check("new examples", age <= max_age_s, minutes(age) + " ago", threshold, detail)


def check_step(store: Store, name: str, max_age_s: float, now: float, memory: dict | None) -> tuple[Check, dict]:
    """Stall when the newest push is older than `max_age_s`. `memory` is what the monitor saw last time
    ({"step", "since"}); the step's first sighting stands in for a push time the state may lack."""
    threshold = f"advances within {minutes(max_age_s)}"
    state = store.peek_state(name)
    if state is None:
        return Check(
            "learner step",
            False,
            "no weights",
            threshold,
            f"no weights named {name!r} in {store.url}; is the learner running?",
        ), memory or {}
    step = int(state.get("step", 0))
    memory = dict(memory or {})
    if memory.get("step") != step:
        memory = {"step": step, "since": now}
    pushed_at = state.get("time")
    last = float(pushed_at) if isinstance(pushed_at, (int, float)) else float(memory["since"])
    age = now - last
    ok = age <= max_age_s
    detail = (
        f"step {step}, pushed {minutes(age)} ago"
        if ok
        else (
            f"learner step stuck at {step}: last push {minutes(age)} ago; is the learner running (or waiting for data)?"
        )
    )
    return Check("learner step", ok, str(step), threshold, detail), memory


def check_lag(store: Store, name: str, max_lag: int, files: int) -> Check:
    """The newest file of each of the newest `files` files' workers: current step minus the step it was played with."""
    threshold = f"<= {max_lag} steps"
    step = store.latest_step(name)
    refs = store.list_examples(name)[-files:] if files > 0 else []
    if step is None or not refs:
        return Check("worker model lag", True, "n/a", threshold, "no weights or no example files to compare")
    newest_by_worker: dict[str, Any] = {}
    for ref in refs:
        newest_by_worker[ref.worker] = ref
    lags: dict[str, int] = {}
    for worker, ref in sorted(newest_by_worker.items()):
        manifest = read_manifest(store, ref.path)
        if manifest is not None and isinstance(manifest.get("model_step"), int):
            lags[worker] = step - int(manifest["model_step"])
    if not lags:
        return Check("worker model lag", True, "n/a", threshold, "no readable manifests")
    worst = max(lags, key=lambda w: lags[w])
    ok = lags[worst] <= max_lag
    detail = ", ".join(f"{w}: {lag}" for w, lag in sorted(lags.items()))
    if not ok:
        detail = f"worker {worst} plays with weights {lags[worst]} steps old (are its weights refreshing?); " + detail
    return Check("worker model lag", ok, f"{lags[worst]} (max)", threshold, detail)


def check_runs(last_seen: dict[str, float | None], heartbeat_s: float, now: float) -> Check:
    """Running runs (label -> when it last showed life: start, state change or newest log line; None: never)
    that have been quiet for more than `heartbeat_s`."""
    threshold = f"a log line within {minutes(heartbeat_s)}"
    stuck = []
    for label, last in last_seen.items():
        quiet = None if last is None else now - last
        if quiet is None or quiet > heartbeat_s:
            stuck.append(f"{label} silent for {minutes(quiet)}")
    if stuck:
        return Check(
            "running flow runs",
            False,
            f"{len(stuck)} stuck of {len(last_seen)}",
            threshold,
            "stuck in Running with no heartbeat: " + "; ".join(stuck),
        )
    return Check("running flow runs", True, f"{len(last_seen)} running", threshold, "every running run logged recently")


__all__ = ["Check", "check_examples", "check_lag", "check_runs", "check_step", "minutes", "read_manifest"]
