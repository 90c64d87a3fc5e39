"""The learner: examples in, better weights out, cycle after cycle (ingest -> train -> evaluate -> push -> prune).

Everything the learner must not lose lives in the store: weights, optimizer state, step, game and example
counts and the ingest cursor are pushed together in one commit. A restart (after a crash, a kill -9 or a clean
stop) resumes from the last push: examples ingested after it were never counted, so they are ingested again
exactly once. One learner per namespace, enforced by the store's lease.
"""

from __future__ import annotations

import logging
import math
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from zeb_core.engine.state import VALUE_TARGETS, check_full_game_target
from zeb_core.evaluation.strength import BASELINES, EVAL_SEED, benchmark, eval_metrics, percent
from zeb_core.formats.examples import ExampleFile
from zeb_core.formats.weights import DEFAULT_NAME, WeightsBundle, load_bundle_dir
from zeb_core.fullgame.bid_learning import BidLearning
from zeb_core.learn.buffer import ReplayBuffer
from zeb_core.learn.promotion import (
    PromotionResult,
    SprtConfig,
    benchmark_gain,
    push_promotion,
    regression,
    sequential_match,
)
from zeb_core.learn.state import BufferFiles, LearnerState, prune_sparing_buffer, refill_newest
from zeb_core.learn.step import TrainConfig, Trainer
from zeb_core.model.checkpoint import bundle_from_model, model_from_bundle
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.ops.device import resolve_device
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.selfplay.worker import wait_and_retry
from zeb_core.store import ExampleCursor, ExampleRef, Lease, Store, StoreError, StoreUnavailable, open_store
from zeb_core.store.cards import HubCards
from zeb_core.store.store import Namespace

log = logging.getLogger("zeb.learner")
KEEP_PUSHES = 50  # revertable pushes kept in a local or S3 store's history


# The losses a cycle reports to the run history (the report table and the curve read them).
REPORTED_LOSSES = ("train/policy_loss", "train/q_loss", "train/value_loss")


def loss_text(value: float | None, digits: int = 4) -> str:
    """A reported loss for people: "n/a" where this cycle had no examples for it (NaN, e.g. no policy loss when
    every example carries solver Q values) or it was never recorded, rather than "nan"."""
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


class LearnerSettings(BaseModel):
    """Everything a learner process is told: the one definition of `zeb learner`'s options, the learner flow's
    parameter (a form in the Prefect UI) and `zeb train`'s learner; prefect.yaml lists only overrides. Flags mirror
    mk5-main forge/zeb learner's runbook, with its defaults where they make sense."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    store: str
    """Weights store: file://DIR, hf://OWNER/REPO, s3://BUCKET/PREFIX."""
    examples_url: str | None = None
    """Examples store, if not beside the weights (hf://OWNER/REPO is a dataset repo)."""
    name: Namespace = DEFAULT_NAME
    """Namespace: weights NAME.*, examples under NAME/ (root for `model`); not quarantine, nor ending in -best,
    -bid or -optimizer (the store's own names)."""
    checkpoint: str | None = None
    """Bootstrap checkpoint folder when the store has no weights for the namespace."""
    size: str = "medium"
    """Fresh model size when there is neither store weights nor a checkpoint: small, medium, large."""
    lr: float = 1e-4
    """AdamW learning rate."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up over this many optimizer steps."""
    cosine_steps: int | None = None
    """Cosine decay to 0.1 x lr by this optimizer step (default: constant)."""
    batch_size: int = 64
    """Training batch size."""
    replay_buffer_size: int = 200_000
    """Replay buffer capacity (examples, on the training device)."""
    training_steps_per_cycle: int = 100
    """Gradient steps per cycle."""
    push_every: int = 25
    """Push weights every N cycles (workers pick up new weights then)."""
    eval_every: int = 50
    """Evaluate vs random and heuristic every N cycles (and try a promotion)."""
    eval_games: int = 2000
    """Games per evaluation match (team-symmetric)."""
    prune_every: int = 50
    """Prune example files every N cycles."""
    keep_example_files: int = 15
    """Example files kept by pruning, at least (the newest). Pruning also keeps every file the replay buffer needs
    to refill after a restart (the newest that hold --replay-buffer-size examples), however many that is."""
    min_buffer_size: int = 5000
    """No training until the buffer holds this many examples."""
    max_model_lag: int | None = None
    """Drop (and count) examples played with weights more than N learner steps old (default: keep all)."""
    replay_ratio: float | None = None
    """Train at most this many samples per example received (waits for data beyond; default: no limit)."""
    ingest_threads: int = Field(default=4, ge=1, le=32)
    """Example files read at once (each file's download and checks in a thread; taken into the buffer in the
    listing's order). On the Hub or S3 a file costs a round trip or two: one at a time, a learner far from its
    store reads a few files a second, fewer than a large fleet uploads. 1: one at a time."""
    promote: bool = True
    """Promote to NAME-best when a new model beats the best (benchmark gain or SPRT)."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    run_name: str | None = None
    """W&B display name (default: the namespace)."""
    seed: int = 0
    """Seed for a fresh model and for sampling."""
    value_target: str = "points"
    """Value target the learner trains (points, points-margin or contract; engine.VALUE_TARGETS); example files
    labelled for another are refused and counted."""
    full_game: bool = False
    """The full game (issue 16): also train the BidNet (namespace NAME-bid: its weights, pushed after each push
    of the play network, and the bid-example files of full-game workers); value_target must be contract."""
    bid_steps_per_cycle: int = 8
    """With full_game: BidNet training steps (batch 512) per learner cycle, at most."""
    bid_replay_ratio: float = 4.0
    """With full_game: BidNet samples trained per bid example received, at most (the standalone loop's reuse).
    Without it the BidNet's steps follow the learner's cycles, and a faster learner replays each bid example
    about 29 times: its bid values then overfit the rare high bids (fg7: 75.5% vs baseline+heuristic against 94.0%
    for a BidNet retrained at 4 on the same examples with the same policy)."""
    lease_ttl_s: float = 600.0
    """Seconds the namespace's lease lasts without renewal (renewed every third of it while the learner lives)."""
    startup_patience_s: float | None = None
    """Give up start-up after this many seconds of an unreachable store (default: retry until it answers)."""
    learner_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
    """Lease holder id (default: host and a random suffix). A restart with the same id takes its own lease back at
    once instead of waiting for it to expire."""
    # How long the process runs: read by the learner flow, not by Learner.
    cycles: int = 1_000_000
    """Training cycles in this run, then it stops (a deployment's run then queues the next: continue_as_new)."""
    minutes: float | None = None
    """Stop after this many minutes (default: no limit)."""
    idle_sleep_s: float = 2.0
    """Seconds between polls of the store while there is not enough data to train."""
    wandb_project: str = "zeb"
    """Weights & Biases project of the metrics."""
    continue_as_new: bool = True
    """Under a deployment, queue the next run with the same parameters after `cycles` cycles."""

    @model_validator(mode="after")
    def _check(self) -> LearnerSettings:
        positive = (
            "batch_size",
            "replay_buffer_size",
            "training_steps_per_cycle",
            "push_every",
            "eval_every",
            "eval_games",
            "prune_every",
            "cycles",
            "bid_steps_per_cycle",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if not 0 < self.bid_replay_ratio < math.inf:
            raise ValueError(f"--bid-replay-ratio must be > 0 and finite, got {self.bid_replay_ratio}")
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(f"--value-target must be one of {', '.join(VALUE_TARGETS)}, got {self.value_target!r}")
        if self.full_game:
            check_full_game_target(self.value_target)
        if self.min_buffer_size < 0 or self.keep_example_files < 0:
            raise ValueError("--min-buffer-size and --keep-example-files must be >= 0")
        if self.min_buffer_size > self.replay_buffer_size:
            raise ValueError(
                f"--min-buffer-size {self.min_buffer_size} exceeds --replay-buffer-size {self.replay_buffer_size}: "
                "training would never start"
            )
        if self.size not in ("small", "medium", "large"):
            raise ValueError(f"--size must be small, medium or large, not {self.size!r}")
        return self


class Learner:
    def __init__(
        self, settings: LearnerSettings, store: Store | None = None, echo: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.store = store or open_store(settings.store, settings.examples_url)
        self.echo = echo or log.info
        self.lease: Lease | None = None
        self.model: ZebNet | None = None
        self.trainer: Trainer | None = None
        self.buffer = ReplayBuffer(settings.replay_buffer_size, self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(settings.seed)
        self.step = 0
        self.total_games = 0
        self.examples_ingested = 0
        self.cursor = ExampleCursor()
        self.buffer_files = BufferFiles(settings.replay_buffer_size)  # what a restart reads back (its floor)
        self.dropped_stale = 0
        self.dropped_other_target = 0  # examples of files labelled for another value target (never trained on)
        self.files_quarantined = 0
        self.files_kept_unread = 0  # by the last prune: files it would have removed that were not ingested yet
        self.last_eval: dict[str, float] = {}
        self.best_vs_random: float | None = None
        self.history: list[dict[str, float]] = []  # per-cycle metrics for the curve
        self.pushed_step = -1
        self.last_ingest_rate = 0.0
        self.samples_trained = 0  # in this process, for --replay-ratio
        self.last_metrics: dict[str, float] = {}
        self.bids: BidLearning | None = None  # the BidNet, with full_game
        self.cards = HubCards(self.store)  # the Hub's model and dataset cards, written on promotion

    # ================================================================ start-up
    def start(self) -> None:
        s = self.settings
        patience = s.startup_patience_s
        wait_and_retry("open the store", self.store.ensure, patience)
        self.lease = wait_and_retry(
            "take the lease", lambda: self.store.acquire_lease(s.name, s.learner_id, s.lease_ttl_s), patience
        )
        self.lease.keep_alive()  # renewed every ttl/3 while we live, however long a cycle takes
        try:
            self._resume(patience)
        except BaseException:
            self.close(push=False)  # a start that fails after taking the lease (bad weights, ...) gives it back
            raise

    def _resume(self, patience: float | None) -> None:
        s = self.settings
        wait_and_retry("finish pushes cut short", lambda: self.store.heal(s.name), patience)  # latest, best, bid
        bundle = wait_and_retry("pull weights", lambda: self.store.pull_weights(s.name), patience)
        if bundle is not None:
            self._restore(bundle)
            self.echo(
                f"Resuming {s.name} from the store: step {self.step}, {self.total_games:,} games, "
                f"{self.examples_ingested:,} examples ingested"
            )
        else:
            bundle = self._bootstrap()
            self._restore(bundle)
            self.push("bootstrap")
            self.echo(
                f"Fresh start for {s.name}: pushed step 0 ({self._param_count():,} parameters) to {self.store.url}"
            )
        best = wait_and_retry("read the best model's state", lambda: self.store.peek_state(s.name, "best"), patience)
        if best is not None:
            self.best_vs_random = LearnerState.from_json(best).last_eval.get("eval/vs_random_win_rate")
        wait_and_retry(
            "rebuild the replay buffer", self._rebuild_buffer, patience
        )  # adds to the buffer only at the end
        if s.full_game:
            self.bids = BidLearning(self.store, s.name, self.device, s.seed, s.bid_steps_per_cycle,
                                    replay_ratio=s.bid_replay_ratio, echo=self.echo)  # fmt: skip
            wait_and_retry("restore the BidNet", self.bids.restore, patience)

    def _bootstrap(self) -> WeightsBundle:
        s = self.settings
        if s.checkpoint:
            self.echo(f"Loading bootstrap checkpoint: {s.checkpoint}")
            bundle = load_bundle_dir(s.checkpoint)
            bundle.state = {**bundle.state, "step": 0, "total_games": 0, "examples_ingested": 0}
            bundle.optimizer = None
            return bundle
        torch.manual_seed(s.seed)
        config = ModelConfig.preset(s.size).model_copy(update={"value_target": s.value_target})
        return bundle_from_model(ZebNet(config), {"step": 0})

    def _restore(self, bundle: WeightsBundle) -> None:
        s = self.settings
        self.model = model_from_bundle(bundle, self.device)
        if self.model.config.value_target != s.value_target:
            log.warning(
                "weights were trained for the %r value target; this learner trains %r from here on",
                self.model.config.value_target,
                s.value_target,
            )
            self.model.config = self.model.config.model_copy(update={"value_target": s.value_target})
        state = LearnerState.from_json(bundle.state)
        self.step = state.step
        self.total_games = state.total_games
        self.examples_ingested = state.examples_ingested
        self.dropped_stale = state.examples_dropped_stale
        self.dropped_other_target = state.examples_dropped_other_target
        self.files_quarantined = state.files_quarantined
        self.cursor = state.cursor
        self.last_eval = state.last_eval
        config = TrainConfig(lr=s.lr, batch_size=s.batch_size, warmup_steps=s.warmup_steps, total_steps=s.cosine_steps)
        optimizer = bundle.optimizer
        try:
            self.trainer = Trainer(self.model, config, self.device, optimizer, state.optimizer_step)
        except (ValueError, KeyError) as exc:  # an optimizer state for another model: start the optimizer fresh
            log.warning("optimizer state does not fit this model (%s); starting a fresh optimizer", exc)
            self.trainer = Trainer(self.model, config, self.device, None, 0)

    def _rebuild_buffer(self) -> None:
        """Refill the replay buffer from the newest already-ingested files (not counted again)."""

        def read(ref: ExampleRef) -> tuple[ExampleFile, int] | None:
            ex = self.store.read_examples(ref)
            return None if ex is None or ex.value_target != self.settings.value_target else (ex, ex.examples)

        chosen = refill_newest(self.store, self.settings.name, self.cursor, self.buffer_files, read)
        for ex in chosen:
            self.buffer.add(ex.obs, ex.legal, ex.policy, ex.value, ex.model_step, ex.q)
        self.echo(
            f"Replay buffer: {len(self.buffer):,}/{self.settings.replay_buffer_size:,} examples "
            f"from {len(chosen)} files"
        )

    def _param_count(self) -> int:
        assert self.model is not None
        return sum(p.numel() for p in self.model.parameters())

    # ================================================================ one cycle
    def ingest(self) -> dict[str, float]:
        """New example files since the cursor: validated, stale ones dropped and counted, the rest buffered.

        Each file moves the counts and the cursor together (`_take`): a store error between two files ends the
        run here, and the final push then records exactly the files counted, so a restart reads none twice."""
        self._check_lease()
        start = time.perf_counter()
        try:
            new, late = self.store.new_examples(self.cursor, self.settings.name)
        except StoreUnavailable as exc:
            log.warning("ingest skipped this cycle: store unavailable (%s)", exc)
            return {"files": 0, "examples": 0}
        if late:
            log.warning("%d example files arrived later than the cursor window; not ingested", len(late))
            self.cursor.advance(r.name for r in late)
        files = examples = 0
        for ref, ex in self._read(new):
            added = self._take(ref, ex)
            files += 1 if added else 0
            examples += added
        if self.bids is not None:
            self.bids.ingest()
        seconds = time.perf_counter() - start
        self.last_ingest_rate = examples / seconds if seconds > 0 and examples else 0.0
        if files:
            self.echo(f"Ingested {examples:,} examples from {files} files [buffer: {len(self.buffer):,}]")
        return {"files": files, "examples": examples}

    def _read(self, refs: list[ExampleRef]) -> Iterator[tuple[ExampleRef, ExampleFile | None]]:
        """The files of `refs` read (None: quarantined), `ingest_threads` at a time and at most twice that many
        ahead, in their order. A store that stops answering ends the cycle: no file is started after the first
        read that failed, those already read are still taken, and the failed ones are left for the next cycle
        (the cursor marks names read, not a position, so a gap is harmless)."""
        threads = self.settings.ingest_threads
        failed: str | None = None
        with ThreadPoolExecutor(threads, thread_name_prefix="zeb-ingest") as pool:
            pending: deque[tuple[ExampleRef, Future[ExampleFile | None]]] = deque()
            queue = iter(refs)
            while True:
                while failed is None and len(pending) < 2 * threads and (ref := next(queue, None)) is not None:
                    pending.append((ref, pool.submit(self.store.read_examples, ref)))
                if not pending:
                    return
                ref, future = pending.popleft()
                try:
                    ex = future.result()
                except StoreUnavailable as exc:
                    if failed is None:
                        failed = ref.name
                        log.warning("stopped ingesting at %s: store unavailable (%s); the rest next cycle", failed, exc)
                    continue
                yield ref, ex

    def _take(self, ref: ExampleRef, ex: ExampleFile | None) -> int:
        """One file read: buffered and counted, or counted as refused (quarantined, another value target, stale),
        and marked read in the same step, so the counts and the cursor a push records always agree. Returns the
        examples added to the buffer."""
        s = self.settings
        if ex is None:
            self.files_quarantined += 1
        elif ex.value_target != s.value_target:
            self.dropped_other_target += ex.examples
            log.warning(
                "not training on %s from worker %s: its values are for the %r target, this learner trains %r",
                ref.name,
                ex.manifest.get("worker_id"),
                ex.value_target,
                s.value_target,
            )
        elif s.max_model_lag is not None and self.step - ex.model_step > s.max_model_lag:
            self.dropped_stale += ex.examples
        else:
            self.buffer.add(ex.obs, ex.legal, ex.policy, ex.value, ex.model_step, ex.q)  # may raise: nothing moved
            self.total_games += int(ex.manifest["games"])
            self.examples_ingested += ex.examples
            self.buffer_files.add(ref.name, ex.examples)
            self.cursor.advance([ref.name])
            return ex.examples
        self.cursor.advance([ref.name])
        return 0

    def can_train(self) -> bool:
        """Enough examples, and (with --replay-ratio) enough fresh ones for another cycle."""
        s = self.settings
        if len(self.buffer) < max(1, s.min_buffer_size):
            return False
        samples = s.training_steps_per_cycle * s.batch_size
        return s.replay_ratio is None or self.samples_trained + samples <= s.replay_ratio * self.buffer.total_added

    def train(self) -> dict[str, float] | None:
        s = self.settings
        self._check_lease()
        if not self.can_train():
            return None
        assert self.trainer is not None
        samples = s.training_steps_per_cycle * s.batch_size
        metrics = self.trainer.train_steps(self.buffer, s.training_steps_per_cycle, self.generator)
        if self.bids is not None:
            metrics.update(self.bids.train())
        self.samples_trained += samples
        self.step += 1
        self.last_metrics = {k: v for k, v in metrics.items() if k in REPORTED_LOSSES and v == v}  # NaN: not produced
        return metrics

    def stats(self) -> dict[str, float]:
        return {
            "stats/total_games": self.total_games,
            "stats/replay_buffer_size": len(self.buffer),
            "stats/examples_dropped_stale": self.dropped_stale,
            "stats/examples_dropped_other_target": self.dropped_other_target,
            "stats/files_quarantined": self.files_quarantined,
            "stats/prune_kept_unread": self.files_kept_unread,
            "stats/examples_ingested": self.examples_ingested,
            "perf/ingest_examples_per_s": self.last_ingest_rate,
        }

    def evaluate(self, games: int | None = None) -> dict[str, float]:
        """The greedy policy against random and heuristic, team-symmetric."""
        assert self.model is not None
        games = games or self.settings.eval_games
        self.model.eval()
        player = PolicyPlayer(self.model, self.device, name=f"{self.settings.name}@{self.step}")
        matches = benchmark(
            player, BASELINES, games, seed=EVAL_SEED + self.step, device=self.device, opponent_seed=self.step
        )
        for r in matches:
            self.echo(r.summary())
        results = eval_metrics(matches, BASELINES)
        self.model.train()
        counts = {f"eval/vs_{spec}_games": r.games for spec, r in zip(BASELINES, matches, strict=True)}  # the card's
        self.last_eval = {**results, **counts, "step": self.step}
        return results

    def push(self, message: str = "") -> bool:
        """One atomic push of weights, optimizer and state; False (logged) when the store is down."""
        assert self.model is not None and self.trainer is not None
        bundle = bundle_from_model(self.model, self.state().to_json(), self.trainer.optimizer_state())
        evals = ", ".join(
            f"{k.split('/')[1]} {percent(v)}" for k, v in self.last_eval.items() if k.endswith("win_rate")
        )
        title = (
            f"step {self.step}, {self.total_games:,} games"
            + (f", {evals}" if evals else "")
            + (f" ({message})" if message else "")
        )
        try:
            self._renew_lease()
            self.store.push_weights(bundle, self.settings.name, message=title)
        except StoreUnavailable as exc:
            log.warning("push failed (%s); will retry next cycle", exc)
            return False
        self.pushed_step = self.step
        if self.bids is not None:
            self.bids.push()
        return True

    def state(self) -> LearnerState:
        """What a push records beside the weights, as of now."""
        assert self.trainer is not None
        return LearnerState(
            step=self.step,
            total_games=self.total_games,
            examples_ingested=self.examples_ingested,
            examples_dropped_stale=self.dropped_stale,
            examples_dropped_other_target=self.dropped_other_target,
            files_quarantined=self.files_quarantined,
            value_target=self.settings.value_target,
            optimizer_step=self.trainer.step,
            learner_id=self.settings.learner_id,
            cursor=self.cursor,
            last_eval=self.last_eval,
            last_metrics=self.last_metrics,
            buffer_floor=self.buffer_files.floor(),
        )

    def record(self, row: dict[str, Any]) -> None:
        """One cycle's row for the training curve: its numeric values."""
        self.history.append({k: v for k, v in row.items() if isinstance(v, (int, float))})

    def _renew_lease(self) -> None:
        """Before any write: raises LeaseHeld when the lease was lost (another learner may own the namespace)."""
        if self.lease is not None:
            self.lease.renew()

    def _check_lease(self) -> None:
        """Each cycle: a lease the renewal thread found lost stops the learner here, before it trains on."""
        if self.lease is not None:
            self.lease.check()

    def maybe_promote(self) -> PromotionResult | None:
        """After an evaluation: promote when there is no best yet, when the candidate's benchmark score is clearly
        above the best's (promotion.benchmark_gain), or when it beats the best head to head (SPRT)."""
        assert self.model is not None and self.trainer is not None
        s = self.settings
        vs_random = self.last_eval.get("eval/vs_random_win_rate")
        try:
            best = self.store.pull_weights(s.name, "best")
        except StoreUnavailable as exc:  # an outage must not end the run: try again at the next evaluation
            log.warning("promotion skipped: store unavailable (%s)", exc)
            return None
        best_eval = LearnerState.from_json(best.state).last_eval if best is not None else {}
        if self.best_vs_random is None and best_eval:
            self.best_vs_random = best_eval.get("eval/vs_random_win_rate")  # after a restart
        if best is not None and benchmark_gain(self.last_eval, best_eval):
            result = PromotionResult(True, "benchmark", 0, 0.0, 0.0)
        elif best is not None:
            if regression(vs_random, self.best_vs_random):
                return PromotionResult(False, "regression", 0, 0.0, 0.0)
            candidate = PolicyPlayer(self.model, self.device, name="candidate")
            incumbent = PolicyPlayer(model_from_bundle(best, self.device), self.device, name="best")
            self.model.eval()
            result = sequential_match(candidate, incumbent, SprtConfig(), seed=self.step, device=self.device)
            self.model.train()
            if not result.promote:
                return result
        else:
            result = PromotionResult(True, "first", 0, 1.0, 0.0)
        state = replace(self.state(), promotion=asdict(result))
        card = self.cards.model_card_files(s.name, self.model.config, state, s.model_dump())  # {} off the Hub
        try:
            self._renew_lease()  # a promotion match can outlast the TTL: is the namespace still ours?
            push_promotion(
                self.store, bundle_from_model(self.model, state.to_json(), None), s.name, result.summary(), card
            )
        except StoreUnavailable as exc:
            log.warning("promotion (%s) not pushed: store unavailable (%s)", result.summary(), exc)
            return None
        self.best_vs_random = vs_random
        self.cards.write_dataset_card()  # once per process; a failure is logged and tried at the next promotion
        return result

    def prune(self) -> int:
        """Old example files beyond --keep-example-files and older than the files the replay buffer needs to refill
        after a restart (never one our last push has not ingested: the store's rule), and pushes beyond the newest
        KEEP_PUSHES. Returns the files removed; counts the ones kept back unread."""
        s = self.settings
        try:
            self.store.prune_history(s.name, keep=KEEP_PUSHES)
            report = prune_sparing_buffer(self.store, s.name, s.keep_example_files, None, self.buffer_files.floor())
        except StoreUnavailable as exc:
            log.warning("prune skipped: %s", exc)
            return 0
        self.files_kept_unread = report.kept_unread
        if self.bids is not None:
            self.bids.prune(self.settings.keep_example_files)
        if report.kept_unread:
            self.echo(
                f"Pruned {len(report.removed)} example files; kept back {report.kept_unread} not ingested yet "
                f"({report.unread} unread in all)"
            )
        return len(report.removed)

    def close(self, push: bool = True) -> None:
        """Push what we have (if anything changed) and release the lease; with a lost lease, neither."""
        if self.lease is not None and self.lease.lost is not None:
            self.echo(f"Not pushing step {self.step}: {self.lease.lost}")
            push = False
        try:
            if push and self.model is not None and self.lease is not None and self.step != self.pushed_step:
                self.push("final")
        finally:
            if self.lease is not None:
                try:
                    self.lease.release()
                except StoreError as exc:
                    log.warning("could not release the lease (%s); it expires by itself", exc)
                self.lease = None
