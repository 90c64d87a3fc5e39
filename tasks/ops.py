"""Operations tasks: the checks of the monitor, pruning, revert and the rating ladder's players and matches.

Thin shells over zeb_core's Store and match code; the only Prefect-specific work here is reading flow runs and
their logs from the Prefect API (the monitor's "stuck run" check).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from zeb_core.formats.safe_io import FormatError, read_header
from zeb_core.formats.weights import WeightsBundle
from zeb_core.match import play_match
from zeb_core.model.checkpoint import model_from_bundle
from zeb_core.players import make_player
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.store import Lease, Store, StoreError, open_store
from zeb_core.store.cursor import timestamp_seconds

WEEK_S = 7 * 24 * 3600.0


def key_of(*parts: str) -> str:
    """An artifact / variable key: lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:200]


def store_key(url: str, name: str) -> str:
    """A short key naming one namespace of one store."""
    return key_of(name, hashlib.sha1(url.encode()).hexdigest()[:8])


def open_ops_store(url: str, examples_url: str | None = None) -> Store:
    if not url or "{{" in url:
        raise StoreError(
            f"no store given ({url!r}): export ZEB_STORE before `prefect deploy --all`, or pass store=... when you "
            "trigger the run"
        )
    return open_store(url, examples_url)


# ====================================================================== monitor
@dataclass
class Check:
    check: str
    ok: bool
    value: str
    threshold: str
    detail: str

    def row(self) -> dict[str, str]:
        return {"check": self.check, "status": "OK" if self.ok else "FAIL", "value": self.value,
                "threshold": self.threshold, "detail": self.detail}


def _minutes(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds / 60:.1f} min"


def read_manifest(store: Store, path: str) -> dict[str, Any] | None:
    """The JSON manifest of an example file (header only; no validation of the tensors, no quarantine)."""
    try:
        data = store.examples.read(path)
        _, meta = read_header(data)
        manifest = json.loads(meta.get("zeb", "null"))
    except (StoreError, FormatError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


@task(name="check-examples", cache_policy=NO_CACHE)
def check_examples_task(store: Store, name: str, max_age_s: float, now: float) -> Check:
    """Stall when the newest example file is older than `max_age_s` (or there is none)."""
    refs = store.list_examples(name)
    threshold = f"<= {_minutes(max_age_s)}"
    if not refs:
        state = store.peek_state(name)
        since = None if state is None else state.get("time")
        age = None if since is None else now - float(since)
        ok = age is not None and age <= max_age_s
        return Check("new examples", ok, "no files", threshold,
                     "no example files yet" + ("" if ok else "; are self-play workers running?"))
    newest = refs[-1]
    age = now - timestamp_seconds(newest.timestamp)
    recent = [r for r in refs if now - timestamp_seconds(r.timestamp) <= max_age_s]
    workers = sorted({r.worker for r in recent})
    detail = f"newest {newest.name}; {len(recent)} files from {len(workers)} workers in the window"
    if age > max_age_s:
        detail = f"no new example files for {_minutes(age)} (newest {newest.name}); are self-play workers running?"
    return Check("new examples", age <= max_age_s, _minutes(age) + " ago", threshold, detail)


@task(name="check-learner-step", cache_policy=NO_CACHE)
def check_step_task(store: Store, name: str, max_age_s: float, now: float, memory: dict | None) -> tuple[Check, dict]:
    """Stall when the newest push is older than `max_age_s`. `memory` is what the monitor saw last time
    ({"step", "since"}); the step's first sighting stands in for a push time the state may lack."""
    threshold = f"advances within {_minutes(max_age_s)}"
    state = store.peek_state(name)
    if state is None:
        return Check("learner step", False, "no weights", threshold,
                     f"no weights named {name!r} in {store.url}; is the learner running?"), memory or {}
    step = int(state.get("step", 0))
    memory = dict(memory or {})
    if memory.get("step") != step:
        memory = {"step": step, "since": now}
    pushed_at = state.get("time")
    last = float(pushed_at) if isinstance(pushed_at, (int, float)) else float(memory["since"])
    age = now - last
    ok = age <= max_age_s
    detail = f"step {step}, pushed {_minutes(age)} ago" if ok else (
        f"learner step stuck at {step}: last push {_minutes(age)} ago; is the learner running (or waiting for data)?"
    )
    return Check("learner step", ok, str(step), threshold, detail), memory


@task(name="check-model-lag", cache_policy=NO_CACHE)
def check_lag_task(store: Store, name: str, max_lag: int, files: int) -> Check:
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


@task(name="check-runs", cache_policy=NO_CACHE)
def check_runs_task(flow_names: list[str], name: str, default_name: str, heartbeat_s: float, now: float) -> Check:
    """Running flow runs of `flow_names` (for namespace `name`) whose newest log line is older than `heartbeat_s`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort, LogSort

    threshold = f"a log line within {_minutes(heartbeat_s)}"
    stuck, running = [], 0
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(flow_names))),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))),
            sort=FlowRunSort.START_TIME_DESC,
            limit=200,
        )
        for run in runs:
            if (run.parameters or {}).get("name", default_name) != name:
                continue
            running += 1
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=1,
                                    offset=0, sort=LogSort.TIMESTAMP_DESC)
            times = [t for t in (run.start_time, run.state.timestamp if run.state else None) if t is not None]
            if logs:
                times.append(logs[0].timestamp)
            last = max(t.timestamp() for t in times) if times else None
            quiet = None if last is None else now - last
            if quiet is None or quiet > heartbeat_s:
                stuck.append(f"{run.name} ({run.id}) silent for {_minutes(quiet)}")
    if stuck:
        return Check("running flow runs", False, f"{len(stuck)} stuck of {running}", threshold,
                     "stuck in Running with no heartbeat: " + "; ".join(stuck))
    return Check("running flow runs", True, f"{running} running", threshold, "every running run logged recently")


# ====================================================================== prune
@task(name="prune-examples", cache_policy=NO_CACHE)
def prune_examples_task(store: Store, name: str, keep: int | None, max_age_s: float | None,
                        protect_uningested: bool = True, now: float | None = None) -> dict[str, Any]:
    """Example files beyond the newest `keep` or older than `max_age_s`, by the store's one rule: never a file the
    learner's last push has not ingested (`protect_uningested=False` lifts it, for a namespace whose learner is
    gone). `protected` counts the unread files the rules would have removed."""
    report = store.prune_examples(name, keep=keep, max_age_s=max_age_s, now=now, spare_unread=protect_uningested)
    get_run_logger().info("pruned %d of %d example files of %s (%d not yet ingested, kept back; %d unread in all)",
                          len(report.removed), report.before, name, report.kept_unread, report.unread)
    return {"removed": report.removed, "before": report.before, "protected": report.kept_unread,
            "unread": report.unread}


@task(name="prune-quarantine", cache_policy=NO_CACHE)
def prune_quarantine_task(store: Store, max_age_s: float, now: float | None = None) -> list[str]:
    removed = store.prune_quarantine(max_age_s, now=now)
    get_run_logger().info("pruned %d quarantined files older than %.1f days", len(removed), max_age_s / 86400)
    return removed


# ====================================================================== revert
@task(name="revert", cache_policy=NO_CACHE)
def revert_task(store: Store, name: str, to: str, reason: str, force: bool = False) -> dict[str, Any]:
    """Push an earlier push of `name` as the newest (weights, optimizer and state in one commit)."""
    lease = Lease.peek(store, name)
    if lease is not None and not force:
        raise StoreError(
            f"a learner ({lease.get('holder')}) holds {name!r}: it would push over the revert. Cancel its run first "
            "(it pushes and releases the lease), or pass force=True"
        )
    before = store.latest_step(name)
    target, rev = store.revert(name, to, reason)
    after = store.peek_state(name) or {}
    get_run_logger().info("reverted %s from step %s to push %s (step %d): %s", name, before, target.revision,
                          target.step, reason or "no reason given")
    return {"name": name, "from_step": before, "to_step": target.step, "target_revision": target.revision,
            "target_time": target.time, "new_revision": rev.id, "reason": reason,
            "state_step": after.get("step"), "reverted_from": after.get("reverted_from")}


# ====================================================================== ladder
@dataclass
class LadderEntry:
    label: str
    kind: str  # "baseline" or "weights"
    spec: str = ""  # baseline spec
    step: int | None = None
    sha: str | None = None
    roles: list[str] = field(default_factory=list)
    bundle: WeightsBundle | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("bundle")
        return d


@task(name="ladder-players", cache_policy=NO_CACHE)
def ladder_players_task(store: Store | None, name: str, past_best: int, baselines: list[str]) -> list[LadderEntry]:
    """The newest weights, the best, up to `past_best` earlier promoted models, then the baselines; the same
    weights under two roles (newest = best) play once."""
    entries: list[LadderEntry] = []
    by_sha: dict[str, LadderEntry] = {}

    def add(role: str, bundle: WeightsBundle | None) -> None:
        if bundle is None:
            return
        sha = bundle.state.get("weights_sha256")
        if sha and sha in by_sha:
            by_sha[sha].roles.append(role)
            return
        entry = LadderEntry("", "weights", step=bundle.step, sha=sha, roles=[role], bundle=bundle)
        entries.append(entry)
        if sha:
            by_sha[sha] = entry

    if store is not None:
        add("newest", store.pull_weights(name))
        add("best", store.pull_weights(name, "best"))
        pushes = store.history(name, which="best", limit=past_best + 1)
        for push in pushes[1 : past_best + 1]:  # the first is the current best
            try:
                bundle = store.pull_weights(name, "best", revision=push.revision)
            except StoreError as exc:
                get_run_logger().warning("skipping promoted push %s: %s", push.revision, exc)
                continue
            when = datetime.fromtimestamp(push.time, timezone.utc).strftime("%Y-%m-%d %H:%M")
            add(f"promoted {when}", bundle)
    for entry in entries:
        entry.label = f"{name}@{entry.step} ({', '.join(entry.roles)})"
    for spec in baselines:
        entries.append(LadderEntry(spec, "baseline", spec=spec, roles=["baseline"]))
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):  # two different weights at one step: tell them apart
        for e in entries:
            if e.kind == "weights" and labels.count(e.label) > 1:
                e.label = f"{e.label} {(e.sha or '')[:6]}"
    return entries


def ladder_player(entry: LadderEntry, device: str, seed: int) -> Any:
    if entry.kind == "baseline":
        return make_player(entry.spec, device, seed)
    assert entry.bundle is not None
    return PolicyPlayer(model_from_bundle(entry.bundle, device), device, name=entry.label)


@task(name="ladder-match", cache_policy=NO_CACHE, task_run_name="{a.label} vs {b.label}")
def ladder_match_task(a: LadderEntry, b: LadderEntry, games: int, seed: int, device: str) -> dict[str, Any]:
    """One team-symmetric match of the round robin."""
    result = play_match(ladder_player(a, device, seed), ladder_player(b, device, seed + 1), games, seed, device=device)
    get_run_logger().info(result.summary())
    return {**result.to_dict(), "player_a": a.label, "player_b": b.label}
