"""A self-play worker: pull the newest weights, play a batch of games with search, put the examples in the
outbox, upload them, and now and then load newer weights in place. The Prefect flow in flows/ drives these
steps as tasks; nothing here knows about Prefect.

Never lose a game: a batch reaches the store only through the outbox, and a store outage makes the worker wait
and retry (with backoff and a log line), never die. On a store that limits commits (the Hub) the batches wait in
the outbox while the worker plays on, and go up several to a commit as the fleet's budget allows
(`WorkerSettings.commits_per_hour`, `zeb_core.selfplay.outbox.CommitPacer`).
"""

from __future__ import annotations

import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zeb_core.engine.state import check_full_game_target
from zeb_core.formats.examples import encode_examples, sanitize_worker_id
from zeb_core.formats.weights import DEFAULT_NAME, WeightsBundle
from zeb_core.fullgame.bid_learning import WorkerBids
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.evaluator import Evaluator
from zeb_core.model.checkpoint import model_from_bundle
from zeb_core.ops.device import resolve_device
from zeb_core.ops.memory import release_free_memory
from zeb_core.selfplay.games import play_selfplay
from zeb_core.selfplay.outbox import CommitPacer, Outbox, count_workers, default_outbox_dir
from zeb_core.store import Store, StoreError, StoreUnavailable, open_store
from zeb_core.store.backend import RateLimited
from zeb_core.store.shards import shard_of_worker
from zeb_core.store.store import ExampleRef, Namespace, check_name

log = logging.getLogger("zeb.worker")
MAX_COMMIT_FILES = 200  # outbox files in one commit at most (the rest wait for the next)
MAX_COMMIT_BYTES = 512 * 1024 * 1024  # and their bytes, held in memory while they are committed


def default_worker_id() -> str:
    return sanitize_worker_id(f"{socket.gethostname()}-{uuid.uuid4().hex[:4]}")


# Help for the search settings `zeb worker` exposes (SearchConfig's own comments say more); defaults: SearchConfig.
SEARCH_OPTIONS: dict[str, str] = {
    "simulations": "Simulations per searched move.",
    "max_nodes": "Nodes per search tree.",
    "worlds": "Hidden-hand worlds sampled per move.",
    "c_puct": "PUCT exploration weight.",
    "temperature": "Move sampling temperature on visit counts.",
    "greedy_after": "Plays after which moves are greedy.",
    "dirichlet_alpha": "Root noise alpha.",
    "dirichlet_fraction": "Root noise share (0 disables).",
    "clairvoyant": "Search the true deal (mk5-main forge/zeb's way; comparison only).",
    "policy_target": "Example policy target: improved (prior tilted by the searched Q values) or visits (root visit "
    "shares, as mk5-main forge/zeb).",
    "value_target": "Value target: points (the benchmark: more than 21 points), points-margin (same sign, "
    "margin-shaped), contract (the bid made or set, margin-shaped) or contract-sign (its sign).",
    "teacher": "Who labels the examples: mcts (the search), solver (exact solutions in --worlds deals; the network "
    "only picks the moves), posterior (the solver's exact values in --worlds deals weighted by the network's "
    "likelihood of the other seats' plays), rollout (the current network's rollouts in those weighted deals, the "
    "solver finishing the last --solve-plays plays) or schedule (solver, then rollout once the weights were trained "
    "on --handover-games games).",
    "rollout_share": "Rollout teacher: share of the non-forced positions labelled by rollouts (the rest by the "
    "solver).",
    "rollout_candidates": "Rollout and posterior teachers: uniform candidate worlds per world kept, weighted by the "
    "network's likelihood of the other seats' plays (1: uniform worlds).",
    "handover_games": "Teacher schedule: games the weights were trained on before --handover-teacher takes over from "
    "the solver.",
    "handover_teacher": "Teacher schedule: who takes over from the solver (rollout or posterior).",
    "solve_plays": "Plays left at which the solver takes over (search leaves, rollouts).",
}


class WorkerSettings(BaseModel):
    """Everything a self-play worker process is told: the one definition of `zeb worker`'s options, the worker
    flow's parameter (a form in the Prefect UI) and `zeb train`'s workers; prefect.yaml lists only overrides."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    store: str
    """Weights store: file://DIR, hf://OWNER/REPO, s3://BUCKET/PREFIX."""
    name: Namespace = DEFAULT_NAME
    """Namespace (must match the learner's)."""
    examples_url: str | None = None
    """Examples store, if not beside the weights."""
    worker_id: str = Field(default_factory=default_worker_id)
    """Worker id in file names (default: host and a random suffix)."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    games_per_batch: int = 64
    """Games played in parallel per batch (one example file per batch)."""
    reload_every: int = 1
    """Check for newer weights every N batches."""
    follow: str = "latest"
    """Weights to play with: latest or best."""
    seed: int | None = None
    """Seed of the games (default: a random one)."""
    outbox: str | None = None
    """Folder where finished batches wait until the store has them, on storage that outlives the run (default: a
    folder per store and namespace under $ZEB_OUTBOX_DIR, which the job templates put on a persistent volume, else
    under ~/.cache/zeb/outbox)."""
    commits_per_hour: float = Field(default=100.0, ge=0)
    """Commits an hour all the namespace's workers together may make to an examples store that limits commits
    (the Hub takes about 128 an hour per repo; the learner's prune and quarantine commits need the rest). Each
    worker puts all its waiting batches in one commit, at most once every N * 3600 / (0.8 * commits_per_hour)
    seconds with N the workers that uploaded to the namespace in the last hour (the fleet aims at 80% of the
    budget, so that its busiest hour stays within it), and waits longer after a 429 (at least its Retry-After).
    With examples sharded over K Hub repos (`hf://OWNER/REPO?shards=K`) the budget is each repo's, shared by the
    workers writing to that repo. Local and S3 stores have no limit: a commit per batch there. 0: no budget on
    the Hub either."""
    fleet_size: int = Field(default=1, ge=1)
    """The workers you run together on this namespace (e.g. the work pool's replicas). On a store that limits
    commits the budget is shared among at least this many, from the first commit on (which falls at a random
    point of that interval): a new fleet of hundreds spreads its commits instead of meeting the Hub's 429s, and
    its first committers do not take short intervals before the others have uploaded. More workers seen
    uploading count whatever this says."""
    wait_for_weights_s: float = 600.0
    """How long to wait for a learner's first push before giving up."""
    search: SearchConfig = Field(default_factory=SearchConfig)
    """How moves are searched and examples labelled (zeb_core/mcts/config.py)."""
    full_game: bool = False
    """The full game (issue 16): each batch deals and bids `bid_hands_per_batch` hands with the store's newest
    BidNet (namespace NAME-bid), uploads their bid examples there, and plays the won hands with their real
    contract for the play examples (search.value_target must be contract or contract-sign)."""
    bid_hands_per_batch: int = 256
    """With full_game: hands dealt and bid per batch (their bid examples); the first games_per_batch won ones
    are the games played by the teacher. Each is also labelled under all ten declarations, which costs more than
    the teacher's 32 games of zeb train (3.5 s a batch with 256 hands, 1.8 s with 64: bench/worker_memory.py
    --bid-hands N); a 60-minute run with 64 played 2.6 times the games but its BidNet, fed a third fewer hands,
    made fewer of its bids (docs/fullgame.md), so 256 stays."""
    # How long the process runs: read by the worker flow, not by SelfPlayWorker.
    batches: int = 0
    """Batches to play; 0 runs until stopped."""

    @model_validator(mode="after")
    def _check(self) -> WorkerSettings:
        if self.games_per_batch < 1:
            raise ValueError(f"games per batch must be >= 1, got {self.games_per_batch}")
        if self.reload_every < 1:
            raise ValueError(f"reload-every must be >= 1, got {self.reload_every}")
        if self.follow not in ("latest", "best"):
            raise ValueError(f"follow must be latest or best, not {self.follow!r}")
        if self.full_game:
            check_full_game_target(self.search.value_target)
        if self.bid_hands_per_batch < 1:
            raise ValueError(f"bid hands per batch must be >= 1, got {self.bid_hands_per_batch}")
        self.worker_id = sanitize_worker_id(self.worker_id)
        return self

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> WorkerSettings:
        """Settings from one flat mapping, SearchConfig's fields among the others (how `zeb worker` takes them)."""
        search_keys = {f.name for f in fields(SearchConfig)}
        search = {k: v for k, v in values.items() if k in search_keys}
        rest = {k: v for k, v in values.items() if k not in search_keys}
        base = rest.pop("search", {})  # a SearchConfig, or its fields (from JSON)
        base = asdict(base) if isinstance(base, SearchConfig) else dict(base)
        return cls(**rest, search=SearchConfig(**{**base, **search}))


@dataclass
class BatchReport:
    batch: int
    games: int
    examples: int
    seconds: float
    games_per_s: float
    forward_share: float
    model_step: int
    model_lag: int | None
    teacher: str = ""  # who labelled the batch (SearchConfig.active_teacher: "schedule" names the one it chose)
    upload_seconds: float = 0.0
    uploaded: str | None = None  # the last play-example file stored by this upload (None: none, it waits)
    errors: int = 0
    waiting: int = 0  # files left in the outbox after the upload (for the next commit slot, or the store back)


def wait_and_retry(
    what: str, fn: Callable[[], Any], patience_s: float | None, sleep: Callable[[float], None] = time.sleep
) -> Any:
    """Call `fn` until it stops raising StoreUnavailable; back off up to a minute between tries."""
    start = time.monotonic()
    delay = 1.0
    while True:
        try:
            return fn()
        except StoreUnavailable as exc:
            if patience_s is not None and time.monotonic() - start > patience_s:
                raise
            log.warning("%s: store unavailable (%s); waiting %.0fs and trying again", what, exc, delay)
            sleep(delay * (0.5 + random.random()))
            delay = min(60.0, delay * 2)


class SelfPlayWorker:
    def __init__(self, settings: WorkerSettings, store: Store | None = None) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.store = store or open_store(settings.store, settings.examples_url)
        self.outbox = Outbox(settings.outbox or default_outbox_dir(self.store.url, settings.name))
        # A store that limits commits (the Hub) gets the outbox in few commits, paced by the fleet's budget;
        # elsewhere each batch is committed at once (the pacer then only backs off after failures).
        self.paced = self.store.examples.commit_limited and settings.commits_per_hour > 0
        self.pacer = CommitPacer(settings.commits_per_hour if self.paced else 0.0)
        log.info(
            "worker %s: outbox %s (%d batches waiting)",
            settings.worker_id,
            self.outbox.folder,
            len(self.outbox.pending()),
        )
        self.bids: WorkerBids | None = None
        if settings.full_game:
            bid_outbox = self.outbox.folder / "bid"
            self.bids = WorkerBids(self.store, settings.name, bid_outbox, self.device, settings.worker_id)
        self.evaluator: Evaluator | None = None
        self.weights_sha: str | None = None
        self.model_step = -1
        self.trained_games = 0  # the games our weights were trained on (their state's total_games): the schedule
        self.batches_done = 0
        self.errors = 0
        self.unreadable_since: float | None = None  # when the store's newest weights became unreadable to us
        self.seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)

    # ------------------------------------------------------------ weights
    def refresh_weights(self) -> bool:
        """Load the store's newest weights when they differ from ours; True if new ones were loaded.

        Before the learner's first push there are none: wait (bounded by `wait_for_weights_s`). A push a kill cut
        short is read from its history copy (the store warns). Newest weights that do not validate otherwise (a
        bad push, another format version) are an error for a worker without weights; one with weights plays on
        with them for up to `wait_for_weights_s`. A reserved namespace (NAME-bid, quarantine) is refused."""
        check_name(self.settings.name)
        deadline = time.monotonic() + self.settings.wait_for_weights_s
        while True:
            try:
                bundle = wait_and_retry(
                    "pull weights",
                    lambda: self.store.pull_weights(
                        self.settings.name, self.settings.follow, unless_sha=self.weights_sha
                    ),
                    None,
                )
            except StoreError as exc:
                now = time.monotonic()
                self.unreadable_since = self.unreadable_since or now
                if self.evaluator is None or now - self.unreadable_since > self.settings.wait_for_weights_s:
                    raise
                self.errors += 1
                log.warning("newest weights are unreadable (%s); playing on with step %d", exc, self.model_step)
                return False
            self.unreadable_since = None
            if bundle is not None:
                self._load(bundle)
                return True
            if self.evaluator is not None:
                return False
            if time.monotonic() > deadline:
                raise StoreError(
                    f"no weights named {self.settings.name!r} ({self.settings.follow}) in {self.store.url} after "
                    f"{self.settings.wait_for_weights_s:.0f}s; start the learner first"
                )
            log.info("waiting for the learner's first push of %r in %s", self.settings.name, self.store.url)
            time.sleep(2.0)

    def _load(self, bundle: WeightsBundle) -> None:
        model = model_from_bundle(bundle, self.device)
        self.evaluator = Evaluator(model, self.device)
        self.weights_sha = bundle.state.get("weights_sha256")
        self.model_step = bundle.step
        before = self.settings.search.active_teacher(self.trained_games)
        self.trained_games = int(bundle.state.get("total_games", 0))  # validated: a non-negative integer
        log.info("worker %s loaded weights step %d", self.settings.worker_id, bundle.step)
        teacher = self.settings.search.active_teacher(self.trained_games)
        if teacher != before:
            log.info(
                "weights trained on %d games: the %s teacher takes over from %s", self.trained_games, teacher, before
            )

    # ------------------------------------------------------------ outbox
    def flush_outbox(self, patience_s: float | None = None, *, due_only: bool = False) -> list[str]:
        """Upload the outbox (an earlier run's batches too) in one commit; returns the stored paths, bid files
        first. Waits for the pacer's slot, and out store outages and 429s (at least their Retry-After), for at
        most `patience_s` after a failure (None: for ever). With `due_only` (the batch loop on a store that
        limits commits): nothing unless a commit is due now, and a refused commit leaves the files for a later
        call, the pacer's interval lengthened."""
        start = time.monotonic()
        stored: list[str] = []
        if self.paced and not self.pacer.started and self._pending():
            wait = self.pacer.start(self._workers_seen())
            log.info("first commit in %.0fs (a random share of the interval: a fleet restarted together spreads)", wait)
        while self._pending():
            if not self.pacer.due():
                if due_only:
                    break
                time.sleep(self.pacer.wait_s())
            try:
                paths, more = self._commit_outbox()
            except StoreUnavailable as exc:
                if self.paced and isinstance(exc, RateLimited):  # spread over the interval of the fleet seen now
                    self.pacer.seen(self._workers_seen())
                wait = self.pacer.refused(exc.retry_after if isinstance(exc, RateLimited) else None)
                if due_only:
                    log.warning(
                        "upload examples: store unavailable (%s); %d batch(es) wait in the outbox, next try in %.0fs",
                        exc,
                        self._pending(),
                        wait,
                    )
                    break
                if patience_s is not None and time.monotonic() - start > patience_s:
                    raise
                log.warning("upload examples: store unavailable (%s); waiting %.0fs and trying again", exc, wait)
                continue
            stored += paths
            if due_only or not more:
                break  # more than one commit holds: the next waits for its slot (or the next batch)
        return stored

    def _workers_seen(self) -> int:
        """Workers uploading to this namespace lately (one listing of recent hour folders), and at least the
        fleet_size the settings say; that alone if the listing fails."""
        try:
            refs = self.store.recent_examples(self.settings.name, self.pacer.window_s())
        except StoreUnavailable as exc:
            floor = self._fleet_floor()
            log.warning("could not count the workers uploading (%s); pacing as 1 of %d", exc, floor)
            return floor
        return self._fleet(refs)

    def _fleet_floor(self) -> int:
        """The least number of workers counted as sharing this worker's repo: `fleet_size`, spread over the
        examples' shards (`hf://...?shards=K`: each repo has its own commit limit)."""
        return math.ceil(self.settings.fleet_size / self.store.examples.shards)

    def _fleet(self, refs: list[ExampleRef]) -> int:
        """The workers that share the budget: those of `refs` uploading lately to this worker's repo (its shard),
        and at least `_fleet_floor`."""
        shards = self.store.examples.shards
        mine = shard_of_worker(self.settings.worker_id, shards)
        refs = [r for r in refs if shard_of_worker(r.worker, shards) == mine]
        return max(self._fleet_floor(), count_workers(refs, self.settings.worker_id, self.pacer.window_s()))

    def _boxes(self) -> list[tuple[Outbox, str]]:
        """(outbox, namespace): bid examples first, so the last path stored is the play examples' (the report's)."""
        boxes = [(self.outbox, self.settings.name)]
        if self.bids is not None:
            boxes.insert(0, (self.bids.outbox, self.bids.name))
        return boxes

    def _pending(self) -> int:
        return sum(len(outbox.pending()) for outbox, _ in self._boxes())

    def _commit_outbox(self) -> tuple[list[str], bool]:
        """One commit of the outbox files this process can claim, up to MAX_COMMIT_FILES / MAX_COMMIT_BYTES
        (then True: more are left); each file is deleted only once the commit holding it is confirmed. Raises
        StoreUnavailable (RateLimited on a 429, not retried here) with every file still in the outbox."""
        more = False
        with ExitStack() as held:
            claimed: list[tuple[Outbox, Path, bytes, dict, str]] = []
            size = 0
            for outbox, name, path in [(o, n, p) for o, n in self._boxes() for p in o.pending()]:
                if len(claimed) >= MAX_COMMIT_FILES or size >= MAX_COMMIT_BYTES:
                    more = True
                    break
                if not held.enter_context(outbox.claim(path)):
                    continue  # another worker on this host is uploading it
                loaded = outbox.load(path)
                if loaded is None:
                    log.error("outbox file %s is damaged; kept aside as .bad", path)
                    self.errors += 1
                    continue
                data, manifest = loaded
                claimed.append((outbox, path, data, manifest, name))
                size += len(data)
            if not claimed:
                return [], False
            upload = self.store.upload_example_files(
                [(data, manifest, name) for _, _, data, manifest, name in claimed], retry_rate_limited=False
            )
            for outbox, path, *_ in claimed:
                outbox.done(path)
        if upload.committed:
            refs = upload.listed.get(self.settings.name, [])
            workers = self._fleet(refs)
            wait = self.pacer.committed(workers)
            if self.paced:
                log.info(
                    "committed %d batch(es) in one commit; %d worker(s) seen share %g commits/h: next in %.0fs",
                    upload.committed,
                    workers,
                    self.settings.commits_per_hour,
                    wait,
                )
        return upload.paths, more

    # ------------------------------------------------------------ one batch
    def generate(self) -> tuple[Path, BatchReport]:
        """Play one batch of games and put its examples in the outbox."""
        if self.evaluator is None:
            self.refresh_weights()
        assert self.evaluator is not None
        seed = self.seed + 7919 * self.batches_done
        deals = None
        if self.bids is not None:  # the full game: hands dealt and bid by the BidNet
            self.bids.refresh(self.settings.wait_for_weights_s)
            s = self.settings
            info = {"play_model_step": self.model_step}
            deals = self.bids.play(self.evaluator.model, s.bid_hands_per_batch, s.games_per_batch, seed, info)
        batch = play_selfplay(
            self.evaluator,
            self.settings.games_per_batch,
            self.settings.search,
            seed=seed,
            device=self.device,
            state=deals,
            trained_games=self.trained_games,
        )
        teacher = str(batch.stats.get("teacher", self.settings.search.teacher))
        data, manifest = encode_examples(
            batch.obs,
            batch.legal,
            batch.policy,
            batch.value,
            model_step=self.model_step,
            worker_id=self.settings.worker_id,
            games=batch.games,
            settings={**asdict(self.settings.search), "device": str(self.device), "active_teacher": teacher},
            value_target=self.settings.search.value_target,
            q=batch.q,
        )
        path = self.outbox.put(data, manifest["sha256"])
        self.batches_done += 1
        newest = None
        try:
            newest = self.store.latest_step(self.settings.name, self.settings.follow)
        except StoreError:
            self.errors += 1
        report = BatchReport(
            batch=self.batches_done,
            games=batch.games,
            examples=batch.examples,
            seconds=batch.seconds,
            games_per_s=batch.stats["games_per_s"],
            forward_share=batch.stats["forward_share"],
            model_step=self.model_step,
            model_lag=None if newest is None else max(0, newest - self.model_step),
            teacher=teacher,
        )
        release_free_memory()  # without it the C heap kept each batch's freed pages: +15-20 MB a batch
        return path, report

    def upload(self, report: BatchReport) -> BatchReport:
        """Upload the outbox (this batch and anything left before) in one commit. A store without a commit limit
        gets it at once (outages waited out); the Hub when the pacer's slot is due, else it waits in the outbox
        while the worker plays on. The last batch of a finite run waits for its slot, so the run ends with the
        outbox delivered."""
        start = time.perf_counter()
        errors_before = self.errors
        last = self.settings.batches > 0 and report.batch >= self.settings.batches
        stored = self.flush_outbox(due_only=self.paced and not last)
        report.upload_seconds = time.perf_counter() - start
        report.uploaded = stored[-1] if stored else None
        report.errors = self.errors - errors_before
        report.waiting = self._pending()
        return report
