"""Fleet simulation (issue 37 item 4): one learner and N simulated self-play workers against each store backend on
127.0.0.1 (the test Hub with its commit-rate limit, the S3 test server, a local folder), to see where the design
bends as N grows.

What is real. Each simulated worker is a real `SelfPlayWorker` (its own outbox folder, `CommitPacer` and store)
whose batches go up through `SelfPlayWorker.upload`, the worker's own path: `flush_outbox` -> one commit of the
whole outbox by `Store.upload_example_files`, paced by the fleet's budget (`WorkerSettings.commits_per_hour`,
`count_workers` over the store's listing), a 429 lengthening the interval. It also reads the weights' state once
per batch, as `SelfPlayWorker.generate` does (`Store.latest_step`). The learner is the real `Learner`: `start()`
(lease, bootstrap push of a small model, buffer) and then only its `ingest()`, every `learner_cycle_s`; no
training, evaluation, push or prune (they would swamp the 2-core machine and are not what grows with N).

What is simulated. No self-play: a worker puts a small valid example file (`encode_examples`, random but valid
contents, `examples_per_file` examples, the manifest saying `games_per_file` games) in its outbox every
3600 / `files_per_hour` simulated seconds (a random phase each). The files are small (a few KiB, not a real
batch's ~0.6 MiB): bandwidth is not simulated, per-file and per-commit costs are. Workers share a process
(threads) or a few (`hosts`); an S3 worker host shares one boto3 client among its workers (they are thread-safe;
a client costs 0.2 s to build), with a connection pool as large as its workers.

Time compression. `factor` simulated seconds pass per real second. Every rate is multiplied by it: the Hub's limit
of `hub_limit` commits an hour becomes `hub.limit_commits(hub_limit, 3600 / factor)` (the same count in a window
`factor` times shorter, so its Retry-After shrinks with it), the workers' budget `commits_per_hour * factor` per
real hour (so the pacer's interval N * 3600 / budget is in simulated seconds divided by factor), the batches
`files_per_hour * factor`. Not compressed: the time each HTTP call, encode and ingest takes (real CPU on a busy
2-core machine: they count `factor` times heavier here, so lags err on the long side), the pacer's backoff after
a refusal (1, 2, 4 ... 60 real s), the Hub server's Retry-After floor of 1 real s, and the hour over which the
pacer counts workers (a real hour covers the whole run: every worker that uploaded counts, as in a fleet that
has run for an hour).

Run: .venv/bin/python bench/fleet_sim.py [--backends hub s3 local] [--workers 1 8 64 256] [--factor 60]
         [--sim-hours 2] [--files-per-hour 2] [--games-per-file 64] [--hosts -1] [--table] [--json PATH]
     (the defaults shown; about 40 minutes for the 12 settings; deployments/README.md, "Fleet simulation")
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.hf_hub_server, tests.s3_server

HOUR = 3600.0
BACKENDS = ("hub", "s3", "local")
HUB_REPO = "tester/fleet"  # + a random suffix per run; examples in the dataset repo HUB_REPO-examples
S3_BUCKET = "fleet"
INGEST_THREADS = ("zeb-ingest", "zeb-shards")  # the learner's reading threads (Learner._read), its shard listings
AUTO_HOSTS, AUTO_HOSTS_FROM = 2, 64  # hosts -1: worker processes from this many workers up


class SimConfig(BaseModel):
    """One setting of the simulation (simulated seconds and hours unless said otherwise)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    backend: str
    """hub (the test Hub server with its commit limit), s3 (the S3 test server) or local (a folder)."""
    workers: int
    """Simulated self-play workers."""
    factor: float = 60.0
    """Time compression: simulated seconds per real second (60: a simulated hour in a real minute)."""
    sim_hours: float = 2.0
    """Simulated hours the workers produce for."""
    files_per_hour: float = 2.0
    """Example files (batches) each worker produces per simulated hour."""
    games_per_file: int = 64
    """Games each file's manifest counts (what the learner adds to its total; WorkerSettings.games_per_batch)."""
    examples_per_file: int = 8
    """Examples in each file (small: the bytes are not what is simulated)."""
    hub_limit: int = 128
    """The Hub's commits per repo per simulated hour (tests/hf_hub_server.py limit_commits)."""
    shards: int = 1
    """Hub examples repos the workers spread over (`hf://...?shards=K`), each with its own limit and budget."""
    commits_per_hour: float = 100.0
    """The workers' shared budget per simulated hour (WorkerSettings.commits_per_hour)."""
    learner_cycle_s: float = 60.0
    """Simulated seconds between the learner's ingests (its training cycle on a GPU, assumed)."""
    hosts: int = 0
    """Processes hosting the workers (0: threads in this process, beside the servers; -1: 0 below AUTO_HOSTS_FROM
    workers, else AUTO_HOSTS, so that hundreds of worker threads do not hold the servers' GIL)."""
    learner_process: bool = True
    """Run the learner in a process of its own (its memory alone); False: a thread here (fast start, tests)."""
    peek: bool = True
    """Each worker reads the weights' state once per batch, as SelfPlayWorker.generate does."""
    fleet_size_set: bool = True
    """The workers' `fleet_size` is N, as a deployment of N replicas sets it (False: 1, a fleet that does not say,
    whose first commits are spread only over the interval of the workers seen uploading)."""
    drain: bool = False
    """After the run, each worker waits for its slot and commits what its outbox holds (a finite run's end)."""
    seed: int = 0
    """Seed of the files' contents and the workers' phases."""
    size: str = "small"
    """The learner's model size (only its start-up bootstrap uses it)."""

    def real(self, sim_s: float) -> float:
        """Real seconds of `sim_s` simulated seconds."""
        return sim_s / self.factor


# ------------------------------------------------------------------ stores
@contextmanager
def _env(values: dict[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """os.environ with `values` set and `unset` removed while the block runs (child processes inherit it)."""
    before = {k: os.environ.get(k) for k in [*values, *unset]}
    os.environ.update(values)
    for key in unset:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Target:
    """Where a run's store is, and the Hub server's handle (None off the Hub)."""

    backend: str
    url: str
    hub: Any = None
    examples_repos: tuple[str, ...] = ()


@contextmanager
def serving(cfg: SimConfig, tmp: Path) -> Iterator[Target]:
    """The backend's server on 127.0.0.1 (none for a folder) and its store URL; the environment points at it."""
    if cfg.backend == "hub":
        from tests.hf_hub_server import hf_hub_server

        with hf_hub_server(seed=cfg.seed) as hub:
            repo = f"{HUB_REPO}-{uuid.uuid4().hex[:8]}"
            env = {
                "HF_ENDPOINT": hub.endpoint,
                "HF_TOKEN": hub.token,
                "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            }
            with _env(env):
                repos = (f"{repo}-examples", *(f"{repo}-examples-{i}" for i in range(1, cfg.shards)))
                yield Target("hub", f"hf://{repo}?shards={cfg.shards}", hub, repos)
    elif cfg.backend == "s3":
        from tests.s3_server import S3_ENV_UNSET, s3_env, s3_server

        with s3_server() as endpoint, _env(s3_env(endpoint), S3_ENV_UNSET):
            yield Target("s3", f"s3://{S3_BUCKET}/sim")
    elif cfg.backend == "local":
        yield Target("local", f"file://{tmp / 'store'}")
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, not {cfg.backend!r}")


def open_sim_store(url: str, shared: dict[str, Any] | None = None, pool: int = 10) -> Any:
    """A worker's store, as `open_store(url)` gives it; S3 workers of one host share `shared["s3"]`'s client, made
    as S3Backend makes its own but with `pool` connections (a real worker's client has its own pool: botocore's
    default of 10 shared by a host's hundred workers would make them queue for connections here)."""
    from zeb_core.store import Store, open_store

    if shared is None or not url.startswith("s3://"):
        return open_store(url)
    import boto3
    from botocore.config import Config

    from zeb_core.store import s3

    if "s3" not in shared:
        retries = {"max_attempts": s3.MAX_ATTEMPTS, "mode": "standard"}
        config = Config(
            connect_timeout=s3.CONNECT_TIMEOUT, read_timeout=s3.READ_TIMEOUT, retries=retries, max_pool_connections=pool
        )
        shared["s3"] = boto3.session.Session().client("s3", config=config)
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = shared["s3"]
    return Store(
        s3.S3Backend(bucket, f"{prefix}/weights", client=client),
        s3.S3Backend(bucket, f"{prefix}/examples", client=client),
    )


# ------------------------------------------------------------------ example files
def example_file(cfg: SimConfig, worker_id: str, seed: int) -> tuple[bytes, dict[str, Any]]:
    """A valid example file (the real encoder) of `examples_per_file` random examples counting `games_per_file`."""
    from tests.helpers import example_bytes

    return example_bytes(cfg.examples_per_file, seed, worker=worker_id, games=cfg.games_per_file)


def _quiet() -> None:
    """Only errors from zeb's loggers (256 workers' 429 warnings would drown the figures), none from the S3
    server's request log."""
    logging.getLogger("zeb").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


# ------------------------------------------------------------------ workers
@dataclass
class WorkerLog:
    """What one host's workers did, by content hash (the first 16 hex digits, as in the store's file names)."""

    produced: list[tuple[str, int, float]] = field(default_factory=list)  # (hash16, games, real time)
    uploaded: dict[str, float] = field(default_factory=dict)  # hash16 -> when it left the outbox (real time)
    commits: list[float] = field(default_factory=list)  # real times of uploads that emptied outbox files
    refusals: list[float] = field(default_factory=list)  # real times of uploads the store refused (429, outage)
    late_s: float = 0.0  # the most a batch came after its schedule (real s): the host could not keep up
    errors: list[str] = field(default_factory=list)
    waiting_games: int = 0  # games still in outboxes at the end

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> WorkerLog:
        data = json.loads(text)
        data["produced"] = [tuple(p) for p in data["produced"]]
        return cls(**data)


def _make_worker(cfg: SimConfig, url: str, index: int, outboxes: Path, shared: dict[str, Any], pool: int) -> Any:
    from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings

    settings = WorkerSettings(
        store=url,
        worker_id=f"sim{index:04d}",
        device="cpu",
        outbox=str(outboxes / f"w{index:04d}"),
        commits_per_hour=cfg.commits_per_hour * cfg.factor,  # the budget per simulated hour, compressed
        fleet_size=cfg.workers if cfg.fleet_size_set else 1,
        seed=cfg.seed + index,
    )
    return SelfPlayWorker(settings, store=open_sim_store(url, shared, pool))


def _worker_loop(cfg: SimConfig, w: Any, index: int, t0: float, log: WorkerLog, lock: threading.Lock) -> None:
    """One simulated worker: a batch into the outbox on schedule, then `upload` (the real worker's batch loop)."""
    from zeb_core.selfplay.worker import BatchReport
    from zeb_core.store import StoreError

    period = cfg.real(HOUR / cfg.files_per_hour)
    end = t0 + cfg.real(cfg.sim_hours * HOUR)
    due = t0 + random.Random(cfg.seed * 100_003 + index).uniform(0, period)
    batch = 0
    games: dict[str, int] = {}
    while due < end:
        time.sleep(max(0.0, due - time.time()))
        late = time.time() - due
        batch += 1
        data, manifest = example_file(cfg, w.settings.worker_id, (cfg.seed * 100_003 + index) * 1_000_003 + batch)
        sha16 = manifest["sha256"][:16]
        w.outbox.put(data, manifest["sha256"])
        games[sha16] = manifest["games"]
        with lock:
            log.produced.append((sha16, manifest["games"], time.time()))
            log.late_s = max(log.late_s, late)
        try:
            if cfg.peek:
                w.store.latest_step(w.settings.name, w.settings.follow)  # as generate() does after each batch
            _upload(w, log, lock, w.upload, BatchReport(batch, cfg.games_per_file, 0, 0.0, 0.0, 0.0, 0, 0))
        except StoreError as exc:
            with lock:
                log.errors.append(f"{w.settings.worker_id}: {exc}")
        due += period
    if cfg.drain:
        try:
            _upload(w, log, lock, w.flush_outbox)  # waits for its slot, 429s waited out
        except StoreError as exc:
            with lock:
                log.errors.append(f"{w.settings.worker_id} drain: {exc}")
    left = [p.name[:16] for p in w.outbox.pending()]
    with lock:
        log.waiting_games += sum(games.get(h, 0) for h in left)


def _upload(w: Any, log: WorkerLog, lock: threading.Lock, call: Any, *args: Any) -> None:
    """`call(*args)`, an upload of the worker's; the files that left its outbox went up in its commit."""
    before, refused = {p.name[:16] for p in w.outbox.pending()}, w.pacer.refusals
    call(*args)
    gone = before - {p.name[:16] for p in w.outbox.pending()}
    now = time.time()
    with lock:
        if gone:
            log.commits.append(now)
            log.uploaded.update(dict.fromkeys(gone, now))
        if w.pacer.refusals > refused:
            log.refusals.append(now)  # refused (a 429): the batch loop's upload tries one commit at most


def host_main(cfg_json: str, url: str, indices: list[int], outboxes: str, conn: Connection) -> None:
    """A host of simulated workers (a process, or a thread of the main one): builds them, says "ready", waits for
    the start time, runs them in threads, and sends back their log as JSON."""
    cfg = SimConfig.model_validate_json(cfg_json)
    _quiet()
    try:
        import torch

        torch.set_num_threads(1)
        shared: dict[str, Any] = {}
        fleet = [_make_worker(cfg, url, i, Path(outboxes), shared, max(10, len(indices))) for i in indices]
        conn.send("ready")
        t0 = float(conn.recv())
        log, lock = WorkerLog(), threading.Lock()
        threads = [
            threading.Thread(target=_worker_loop, args=(cfg, w, i, t0, log, lock), name=f"sim-worker-{i}", daemon=True)
            for w, i in zip(fleet, indices, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conn.send(log.to_json())
    except BaseException as exc:  # the main process must hear of it rather than wait for ever
        conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise


# ------------------------------------------------------------------ the learner
class CallCounter:
    """HTTP requests made by one thread (the learner's loop; not its lease-renewal thread): every request and
    redirect hop on huggingface_hub's shared client, every attempt of the S3 clients."""

    def __init__(self, store: Any) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self.owner = threading.current_thread()
        self.store = store
        self.install()

    def _seen(self, *args: Any, **kwargs: Any) -> None:
        thread = threading.current_thread()
        if thread is self.owner or thread.name.startswith(INGEST_THREADS):  # the learner's reads are in threads
            with self._lock:
                self.count += 1

    def install(self) -> None:
        """(Again) hook the clients: huggingface_hub's shared client may be recreated."""
        url = self.store.url
        if url.startswith("hf://"):
            from huggingface_hub.utils import get_session

            hooks = get_session().event_hooks["request"]
            if self._seen not in hooks:
                hooks.append(self._seen)
        elif url.startswith("s3://") and not getattr(self, "_s3", False):
            for backend in (self.store.weights, self.store.examples):
                backend.client.meta.events.register("before-send.s3", self._seen)
            self._s3 = True


def _memory_mib() -> dict[str, float]:
    """This process's resident memory now and at its peak (Linux /proc)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return {"rss_mib": out.get("VmRSS", 0.0), "peak_mib": out.get("VmHWM", 0.0)}


def learner_main(cfg_json: str, url: str, conn: Connection) -> None:
    """The learner (a process, or a thread of the main one): start, say "ready", then ingest every
    `learner_cycle_s` until told "stop", ingest once more, and send back what it took, when, and what it cost."""
    cfg = SimConfig.model_validate_json(cfg_json)
    _quiet()
    try:
        import torch

        from zeb_core.formats.examples import parse_example_filename
        from zeb_core.learn.learner import Learner, LearnerSettings
        from zeb_core.store import open_store
        from zeb_core.store.cursor import timestamp_seconds

        torch.set_num_threads(1)
        store = open_store(url)
        settings = LearnerSettings(store=url, size=cfg.size, device="cpu", promote=False, learner_id="fleet-sim")
        lrn = Learner(settings, store=store, echo=lambda _: None)
        lrn.start()
        counter = CallCounter(store)
        conn.send("ready")
        period = cfg.real(cfg.learner_cycle_s)
        cycles: list[dict[str, float]] = []
        ingested: dict[str, list[float]] = {}  # hash16 -> [ingest time, upload stamp]
        stopping = False
        while True:
            start = time.time()
            counter.install()
            calls, seen = counter.count, set(lrn.cursor.seen)
            got = lrn.ingest()
            done = time.time()
            for name in lrn.cursor.seen - seen:
                parsed = parse_example_filename(name)
                if parsed is not None:
                    ingested[parsed[2]] = [done, timestamp_seconds(parsed[1])]
            cycles.append({"start": start, "end": done, "files": got["files"], "calls": counter.count - calls})
            if stopping:
                break
            if conn.poll(max(0.0, start + period - time.time())):
                conn.recv()  # "stop": one more ingest takes what the last commits brought
                stopping = True
        result = {
            "cycles": cycles,
            "ingested": ingested,
            "files_taken": sum(c["files"] for c in cycles),
            "total_games": lrn.total_games,
            "quarantined": lrn.files_quarantined,
            **_memory_mib(),
        }
        lrn.close(push=False)
        conn.send(json.dumps(result))
    except BaseException as exc:
        conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise


# ------------------------------------------------------------------ one run
class Party:
    """A learner or a worker host, as a spawned process or a thread, spoken to over a pipe."""

    def __init__(self, target: Any, args: tuple[Any, ...], process: bool, name: str) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        runner: Any = ctx.Process if process else threading.Thread
        self.proc = runner(target=target, args=(*args, child), name=name, daemon=True)
        self.proc.start()
        self.name = name

    def expect(self, what: str | None, timeout: float) -> str:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"{self.name}: nothing heard in {timeout:.0f}s")
        text: str = self.conn.recv()
        if text.startswith("{") and '"error"' in text[:12]:
            raise RuntimeError(f"{self.name} failed: {json.loads(text)['error']}")
        if what is not None and text != what:
            raise RuntimeError(f"{self.name}: expected {what!r}, got {text[:80]!r}")
        return text

    def join(self) -> None:
        self.proc.join(timeout=30)


def run_sim(cfg: SimConfig) -> dict[str, Any]:
    """One setting: servers up, the learner started, the workers run for `sim_hours`, the learner's last ingest;
    returns the figures (`figures`) and the raw logs."""
    _quiet()
    with tempfile.TemporaryDirectory(prefix="zeb-fleet-") as tmp, serving(cfg, Path(tmp)) as target:
        learner = Party(learner_main, (cfg.model_dump_json(), target.url), cfg.learner_process, "learner")
        with ExitStack() as stack:
            stack.callback(learner.join)
            learner.expect("ready", 300)
            if target.hub is not None:
                target.hub.limit_commits(cfg.hub_limit, HOUR / cfg.factor)
            hosts_n = cfg.hosts if cfg.hosts >= 0 else (AUTO_HOSTS if cfg.workers >= AUTO_HOSTS_FROM else 0)
            groups = _split(cfg.workers, hosts_n)
            hosts = [
                Party(
                    host_main, (cfg.model_dump_json(), target.url, g, str(Path(tmp) / "outbox")), hosts_n > 0, f"h{k}"
                )
                for k, g in enumerate(groups)
            ]
            for h in hosts:
                stack.callback(h.join)
                h.expect("ready", 600)
            calls_before = target.hub.count_calls() if target.hub is not None else None
            t0 = time.time() + 0.2
            for h in hosts:
                h.conn.send(repr(t0))
            wait = cfg.real(cfg.sim_hours * HOUR) + 600
            logs = [WorkerLog.from_json(h.expect(None, wait)) for h in hosts]
            t_end = time.time()
            learner.conn.send("stop")
            learned = json.loads(learner.expect(None, 300))
            hub_info = _hub_info(target, t0, calls_before) if target.hub is not None else None
            listed = len(open_sim_store(target.url).list_examples())
        return figures(cfg, _merge(logs), learned, hub_info, listed, t0, t_end)


def _split(n: int, hosts: int) -> list[list[int]]:
    """The workers' indices per host (one host, in this process, for hosts 0)."""
    parts = max(1, min(hosts, n))
    return [list(range(k, n, parts)) for k in range(parts)]


def _merge(logs: list[WorkerLog]) -> WorkerLog:
    out = WorkerLog()
    for log in logs:
        out.produced += log.produced
        out.uploaded.update(log.uploaded)
        out.commits += log.commits
        out.refusals += log.refusals
        out.late_s = max(out.late_s, log.late_s)
        out.errors += log.errors
        out.waiting_games += log.waiting_games
    out.commits.sort()
    return out


def _hub_info(target: Target, t0: float, calls_before: Any) -> dict[str, Any]:
    hub = target.hub
    per_repo = [[c.time for c in hub.commits(r, "dataset") if c.time >= t0] for r in target.examples_repos]
    calls = hub.count_calls() - calls_before
    return {
        "commits": sorted(t for times in per_repo for t in times),
        "per_repo": per_repo,
        "refused": sum(hub.commits_refused[r] for r in target.examples_repos),
        "calls": dict(calls),
    }


# ------------------------------------------------------------------ figures and goals
def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _max_per_window(times: list[float], window: float) -> int:
    """The most of `times` in any window of `window` seconds (a sliding window, as the Hub's limit)."""
    times, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _rate(cycles: list[dict[str, float]], key: str) -> float:
    """`key` per real second of the cycles' ingest time."""
    seconds = sum(c["end"] - c["start"] for c in cycles)
    return sum(c[key] for c in cycles) / seconds if seconds > 0 else 0.0


def _per_hour(times: list[float], t0: float, cfg: SimConfig, weights: list[int] | None = None) -> list[int]:
    """Counts (or sums of `weights`) per simulated hour of the run; later events (the last ingest, the drain)
    count in the last hour."""
    hours = max(1, round(cfg.sim_hours)) if cfg.sim_hours >= 1 else 1
    out = [0] * hours
    for i, t in enumerate(times):
        out[min(hours - 1, max(0, int((t - t0) * cfg.factor // HOUR)))] += 1 if weights is None else weights[i]
    return out


def figures(
    cfg: SimConfig,
    log: WorkerLog,
    learned: dict[str, Any],
    hub: dict[str, Any] | None,
    listed: int,
    t0: float,
    t_end: float,
) -> dict[str, Any]:
    """The run's figures (rates per simulated hour, lags in simulated seconds) and its goals' verdicts."""
    f, hours = cfg.factor, cfg.sim_hours
    games_of = {h: g for h, g, _ in log.produced}
    produced_at = {h: t for h, _, t in log.produced}
    ingested: dict[str, list[float]] = learned["ingested"]  # hash16 -> [ingest time, the file name's stamp]
    uploaded = set(log.uploaded)
    # From the upload's return (the commit is in the store; the learner may see it a moment before: 0).
    lag = [max(0.0, done - log.uploaded[h]) * f for h, (done, _) in ingested.items() if h in log.uploaded]
    fresh = [(ingested[h][0] - produced_at[h]) * f for h in ingested if h in produced_at]
    # Real seconds from the commit's start (the name's stamp, taken after the listing) to the upload's return.
    commit_s = [log.uploaded[h] - stamp for h, (_, stamp) in ingested.items() if h in log.uploaded]
    commit_times = hub["commits"] if hub is not None else log.commits
    cycles = [c for c in learned["cycles"] if c["end"] >= t0]
    calls = [c["calls"] for c in cycles]
    produced_games = sum(games_of.values())
    uploaded_games = sum(games_of.get(h, 0) for h in uploaded)
    up = sorted(uploaded)
    took = sorted(h for h in ingested if h in games_of)
    # Throughput once every worker has had its first slot (one interval, N * 3600 / budget): a Hub worker's
    # batches wait up to an interval in its outbox, so a run shorter than that measures the start, not the rate.
    from zeb_core.selfplay.outbox import BUDGET_SHARE

    workers_per_repo = math.ceil(cfg.workers / cfg.shards)  # the workers of one repo, as the pacers' fleet_size floor
    paced = hub is not None and cfg.commits_per_hour > 0
    warm_s = workers_per_repo * HOUR / (BUDGET_SHARE * cfg.commits_per_hour) if paced else 0.0
    steady_from = t0 + cfg.real(warm_s)
    steady_h = hours - warm_s / HOUR
    steady_produced = sum(g for _, g, t in log.produced if t >= steady_from)
    steady_accepted = sum(games_of[h] for h in took if ingested[h][0] >= steady_from)
    out: dict[str, Any] = {
        "backend": cfg.backend,
        "workers": cfg.workers,
        "produced_games_h": produced_games / hours,
        "uploaded_games_h": uploaded_games / hours,
        "accepted_games_h": learned["total_games"] / hours,
        "steady_from_h": warm_s / HOUR,
        "steady_produced_games_h": steady_produced / steady_h if steady_h > 0 else None,
        "steady_accepted_games_h": steady_accepted / steady_h if steady_h > 0 else None,
        "hourly_produced": _per_hour([t for *_, t in log.produced], t0, cfg, [g for _, g, _ in log.produced]),
        "hourly_accepted": _per_hour([ingested[h][0] for h in took], t0, cfg, [games_of[h] for h in took]),
        "hourly_uploaded": _per_hour([log.uploaded[h] for h in up], t0, cfg, [games_of.get(h, 0) for h in up]),
        "hourly_commits": _per_hour(commit_times, t0, cfg),
        "hourly_refusals": _per_hour(log.refusals, t0, cfg),
        "files_produced": len(games_of),
        "files_uploaded": len(uploaded),
        "files_ingested": len(ingested),
        "files_taken": learned["files_taken"],
        "files_listed": listed,
        "waiting_games": log.waiting_games,
        "commits": len(commit_times),
        "commits_h": len(commit_times) / hours,
        # The Hub's limit and the budget are per repo: the busiest repo's busiest hour.
        "commits_max_h": max(_max_per_window(t, HOUR / f) for t in (hub["per_repo"] if hub else [commit_times])),
        "shards": cfg.shards,
        "commits_per_repo": [len(t) for t in hub["per_repo"]] if hub else None,
        "worker_commits": len(log.commits),
        "refused_429": hub["refused"] if hub is not None else len(log.refusals),
        "hub_calls_h": {k: v / hours for k, v in sorted(hub["calls"].items())} if hub is not None else None,
        "lag_median_s": _pct(lag, 0.5),
        "lag_p95_s": _pct(lag, 0.95),
        "fresh_median_s": _pct(fresh, 0.5),
        "fresh_p95_s": _pct(fresh, 0.95),
        "commit_median_real_s": _pct(commit_s, 0.5),
        "commit_p95_real_s": _pct(commit_s, 0.95),
        "cycles": len(cycles),
        "calls_cycle_mean": statistics.fmean(calls) if calls else 0.0,
        "calls_cycle_max": max(calls, default=0),
        "ingest_files_s": _rate([c for c in cycles if c["files"]], "files"),
        "ingest_calls_file": sum(calls) / max(1, sum(c["files"] for c in cycles)),
        "learner_rss_mib": learned["rss_mib"],
        "learner_peak_mib": learned["peak_mib"],
        "late_s": log.late_s * f,
        "wall_s": t_end - t0,
        "errors": log.errors[:5],
        "quarantined": learned["quarantined"],
    }
    out["goals"] = {
        "commits within the budget": (  # None: no limit, no budget (a commit per batch, by design)
            out["commits_max_h"] <= cfg.commits_per_hour and out["refused_429"] == 0 if hub is not None else None
        ),
        "every uploaded game ingested exactly once": (
            set(ingested) == uploaded
            and learned["files_taken"] == len(uploaded) == listed
            and learned["total_games"] == uploaded_games
            and learned["quarantined"] == 0
            and not log.errors
        ),
        "ingest lag p95 under 5 minutes": bool(lag) and out["lag_p95_s"] < 300,
        "accepted games/h within 10% of produced": produced_games > 0
        and abs(learned["total_games"] - produced_games) <= 0.1 * produced_games,
        "after the first interval, accepted games/h within 10% of produced": (
            abs(steady_accepted - steady_produced) <= 0.1 * steady_produced if steady_produced > 0 else None
        ),
    }
    return out


def print_figures(cfg: SimConfig, out: dict[str, Any]) -> None:
    """One figure a line, each prefixed with its setting."""
    tag = f"{out['backend']} N={out['workers']}:"
    per = "simulated"
    lines = [
        f"setting: factor {cfg.factor:g} (a simulated hour in {HOUR / cfg.factor:.0f} real s), {cfg.sim_hours:g} "
        f"simulated hours, {cfg.files_per_hour:g} files/h per worker of {cfg.games_per_file} games, learner every "
        f"{cfg.learner_cycle_s:g} s, Hub limit {cfg.hub_limit}/h and budget "
        f"{cfg.commits_per_hour:g}/h per repo, {cfg.shards} repo(s)",
        f"games/h produced: {out['produced_games_h']:,.0f}",
        f"games/h uploaded: {out['uploaded_games_h']:,.0f}",
        f"games/h accepted into the learner's buffer: {out['accepted_games_h']:,.0f} "
        f"({_share(out['accepted_games_h'], out['produced_games_h'])} of produced)",
        f"games/h after the first interval ({out['steady_from_h']:.1f} h on), produced / accepted: "
        + (
            f"{out['steady_produced_games_h']:,.0f} / {out['steady_accepted_games_h']:,.0f}"
            if out["steady_produced_games_h"] is not None
            else "n/a (the run is shorter than one interval)"
        ),
        f"games per {per} hour, produced / uploaded / accepted: {out['hourly_produced']} / "
        f"{out['hourly_uploaded']} / {out['hourly_accepted']}",
        f"games waiting in outboxes at the end: {out['waiting_games']:,}",
        f"commits/h: {out['commits_h']:.1f} (most in any {per} hour: {out['commits_max_h']}; per hour "
        f"{out['hourly_commits']})",
        f"429s: {out['refused_429']} (per hour, as the workers saw them: {out['hourly_refusals']})",
        f"ingest lag, upload to ingest ({per} s): median {out['lag_median_s']:.0f}, p95 {out['lag_p95_s']:.0f}",
        f"batch to ingest ({per} s, outbox wait included): median {out['fresh_median_s']:.0f}, "
        f"p95 {out['fresh_p95_s']:.0f}",
        f"commit time, its start to the upload's return (real s, not compressed): median "
        f"{out['commit_median_real_s']:.2f}, p95 {out['commit_p95_real_s']:.2f}",
        f"HTTP calls per learner cycle: mean {out['calls_cycle_mean']:.1f}, max {out['calls_cycle_max']} "
        f"({out['cycles']} cycles; {out['ingest_calls_file']:.1f} per file ingested)",
        f"learner ingest speed while it had files (real, not compressed): {out['ingest_files_s']:.1f} files/s, "
        f"{out['ingest_files_s'] * HOUR / cfg.factor:,.0f} files per {per} hour against "
        f"{cfg.workers * cfg.files_per_hour:,.0f} produced",
        f"learner memory: RSS {out['learner_rss_mib']:.0f} MiB, peak {out['learner_peak_mib']:.0f} MiB"
        + ("" if cfg.learner_process else " (whole process: learner in a thread)"),
        f"files produced / uploaded / listed / ingested: {out['files_produced']} / {out['files_uploaded']} / "
        f"{out['files_listed']} / {out['files_ingested']}",
        f"batches late by at most ({per} s): {out['late_s']:.0f} (wall {out['wall_s']:.0f} s)",
    ]
    if out["hub_calls_h"]:
        calls = ", ".join(f"{k} {v:,.0f}" for k, v in out["hub_calls_h"].items())
        lines.append(f"Hub server requests per {per} hour: {calls}")
    if out["errors"]:
        lines.append(f"worker errors: {out['errors']}")
    lines += [f"goal {name}: {_verdict(ok)}" for name, ok in out["goals"].items()]
    for line in lines:
        print(tag, line, flush=True)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "FAIL"


def _share(a: float, b: float) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


def _steady(r: dict[str, Any]) -> str:
    if r["steady_produced_games_h"] is None:
        return "n/a"
    return f"{r['steady_accepted_games_h']:,.0f} of {r['steady_produced_games_h']:,.0f} from {r['steady_from_h']:.1f} h"


def _shards(r: dict[str, Any]) -> str:
    return f" ({r['shards']} repos)" if r.get("shards", 1) > 1 else ""


def table(rows: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table (rates per simulated hour, lags in simulated seconds)."""
    head = (
        "| store | N | games/h produced | accepted | accepted after 1st interval | commits/h (max) | 429s "
        "| lag median / p95 s | batch to ingest median / p95 s | HTTP/cycle | learner RSS MiB "
        "| goals: budget, once, lag, accepted, accepted after 1st interval |"
    )
    out = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        goals = " ".join(_verdict(ok) for ok in r["goals"].values())
        out.append(
            f"| {r['backend']}{_shards(r)} | {r['workers']} | {r['produced_games_h']:,.0f} "
            f"| {r['accepted_games_h']:,.0f} "
            f"({_share(r['accepted_games_h'], r['produced_games_h'])}) | {_steady(r)} "
            f"| {r['commits_h']:.0f} ({r['commits_max_h']}) "
            f"| {r['refused_429']} | {r['lag_median_s']:.0f} / {r['lag_p95_s']:.0f} "
            f"| {r['fresh_median_s']:.0f} / {r['fresh_p95_s']:.0f} | {r['calls_cycle_mean']:.1f} "
            f"| {r['learner_rss_mib']:.0f} | {goals} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 8, 64, 256])
    fields = SimConfig.model_fields
    for name in ("factor", "sim_hours", "files_per_hour", "games_per_file", "examples_per_file", "hub_limit",
                 "commits_per_hour", "learner_cycle_s", "seed", "shards"):  # fmt: skip
        info = fields[name]
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(info.default), default=info.default,
                            help=f"{info.description} (default {info.default})")  # fmt: skip
    parser.add_argument("--hosts", type=int, default=-1, help=f"{fields['hosts'].description} (default -1)")
    parser.add_argument("--learner-thread", action="store_true", help="the learner in a thread of this process")
    parser.add_argument("--drain", action="store_true", help=fields["drain"].description)
    parser.add_argument("--no-fleet-size", action="store_true", help="workers' fleet_size 1 (not N): unannounced")
    parser.add_argument("--no-peek", action="store_true", help="workers do not read the weights' state per batch")
    parser.add_argument("--table", action="store_true", help="print a Markdown table of all runs at the end")
    parser.add_argument("--json", type=Path, help="write every run's figures to this JSON file")
    args = parser.parse_args()
    keys = {k: getattr(args, k) for k in fields if hasattr(args, k) and k not in ("backend", "workers", "drain")}
    rows = []
    for backend in args.backends:
        for n in args.workers:
            cfg = SimConfig(backend=backend, workers=n, learner_process=not args.learner_thread, drain=args.drain,
                            peek=not args.no_peek, fleet_size_set=not args.no_fleet_size, **keys)  # fmt: skip
            out = run_sim(cfg)
            print_figures(cfg, out)
            rows.append(out)
    if args.table:
        print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
