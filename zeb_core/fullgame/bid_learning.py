"""The BidNet in the pipeline: what a full-game worker plays and uploads, and what the learner trains and pushes.

Everything of the auction lives in the namespace NAME-bid of the same store (`bid_namespace`): the BidNet's
weights bundle (`NAME-bid.safetensors`, `-config.json`, `-state.json` with the step, the hands seen, the ingest
cursor of the bid-example files, their buffer floor and the optimizer), pushed by the learner right after each
push of the play network, and the bid-example files (`zeb_core.formats.bid_examples`) in the examples folder
`NAME-bid/`. The store's and the play learner's rules hold for it unchanged: validated reads, quarantine, counts
and cursor moved together file by file, pruning that spares unread files (by the cursor in NAME-bid's state) and
the files its replay buffer refills from after a restart (`learn.state.prune_sparing_buffer`). NAME-bid has no
lease of its own: NAME's learner pushes it under NAME's lease (a revert of NAME-bid takes NAME's), and no learner
or worker may be named NAME-bid. A push of it cut short by a kill is read from its history copy by workers (with
a warning) and finished by the learner's start (`Store.heal`).

Worker (`deal_full_hands`): B hands are dealt and bid by the current BidNet with exploration; the play network's
greedy policy plays every won hand under all ten declarations (the labels of the bid examples, as in the
standalone loop); the won hands, with their real bid, declaration and bidder, are also the deals the play
teacher plays for the play examples, whose value target is then `contract`.

Learner (`BidLearning`): ingest new bid-example files, a few BidNet steps per learner cycle, push.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from zeb_core.engine.state import GameState
from zeb_core.formats import bid_examples as bid_format
from zeb_core.formats.bid_examples import BidExampleFile, decode_bid_examples, encode_bid_examples
from zeb_core.formats.weights import WeightsBundle
from zeb_core.fullgame.auction import points_needed
from zeb_core.fullgame.bidnet import VIEW_FEATURES, BidNet, bidnet_bundle, bidnet_from_bundle
from zeb_core.fullgame.bidtrain import BidBuffer, BidTrainer, TrainConfig
from zeb_core.fullgame.selfplay import HandExamples, SelfPlayConfig, play_hands
from zeb_core.learn.state import BufferFiles, prune_sparing_buffer, refill_newest
from zeb_core.model.net import ZebNet
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.players.interface import Player
from zeb_core.selfplay.outbox import Outbox
from zeb_core.store import ExampleCursor, ExampleRef, Store, StoreError, StoreUnavailable
from zeb_core.store.store import bid_namespace

log = logging.getLogger("zeb.bids")
assert VIEW_FEATURES == bid_format.VIEW_FEATURES, "the bid-example format and the BidNet encoding disagree"


def examples_to_tensors(ex: HandExamples) -> dict[str, torch.Tensor]:
    return {"bid_x": ex.bid_x, "bid_action": ex.bid_action, "bid_marks": ex.bid_marks, "decl_x": ex.decl_x,
            "decl_points": ex.decl_points}  # fmt: skip


def examples_from_file(f: BidExampleFile) -> HandExamples:
    return HandExamples(**{k: f.tensors[k] for k in bid_format.TENSORS})


def buffered_count(ex: HandExamples) -> int:
    """What a file counts for in the BidNet's buffer floor (`BufferFiles`): the smaller of its bid and declaration
    examples (one per won hand), as the buffer keeps `capacity` of each and a restart must refill both."""
    return min(len(ex), ex.decl_x.shape[0])


# ================================================================ worker side
def deal_full_hands(
    bidnet: BidNet, play_player: Player, hands: int, gen: torch.Generator, config: SelfPlayConfig | None = None
) -> tuple[HandExamples, GameState | None]:
    """(bid examples of `hands` hands, the won hands as play-phase states with their real contract or None)."""
    ex, rec = play_hands(bidnet, play_player, hands, gen, config)
    won = (rec.bidder >= 0).nonzero().flatten()
    if not won.numel():
        return ex, None
    bidder = rec.bidder[won]
    state = GameState.from_deal(rec.hands[won], rec.decl[won], bidder, bid=points_needed(rec.value[won]),
                                leader=bidder)  # fmt: skip
    return ex, state


class WorkerBids:
    """A full-game worker's auction: the store's newest BidNet, the hands it deals and bids, its outbox."""

    def __init__(self, store: Store, name: str, outbox_folder: Path, device: torch.device, worker_id: str) -> None:
        self.store, self.name, self.device, self.worker_id = store, bid_namespace(name), device, worker_id
        self.outbox = Outbox(outbox_folder, decode=decode_bid_examples)
        self.net: BidNet | None = None
        self.sha: str | None = None
        self.step = -1

    def refresh(self, patience_s: float) -> bool:
        """Load NAME-bid's newest BidNet when it changed; waits up to `patience_s` for the learner's first push."""
        deadline = time.monotonic() + patience_s
        while True:
            bundle = self.store.pull_weights(self.name, unless_sha=self.sha)
            if bundle is not None:
                self.net = bidnet_from_bundle(bundle).to(self.device).eval()
                self.sha, self.step = bundle.state.get("weights_sha256"), bundle.step
                return True
            if self.net is not None:
                return False
            if time.monotonic() > deadline:
                raise StoreError(f"no BidNet {self.name!r} in {self.store.url} after {patience_s:.0f}s; a learner "
                                 "with full_game pushes one at its start")  # fmt: skip
            log.info("waiting for the learner's first push of %r", self.name)
            time.sleep(2.0)

    def play(self, model: ZebNet, hands: int, games: int, seed: int, settings: dict[str, Any]) -> GameState | None:
        """Deal and bid `hands` hands, put their bid examples in the outbox; up to `games` won hands to play."""
        assert self.net is not None
        gen = torch.Generator(device=self.device).manual_seed(seed)
        player = PolicyPlayer(model, self.device, name="play-labels")
        ex, state = deal_full_hands(self.net, player, hands, gen)
        data, manifest = encode_bid_examples(examples_to_tensors(ex), model_step=self.step, worker_id=self.worker_id,
                                             hands=hands, settings=settings)  # fmt: skip
        self.outbox.put(data, manifest["sha256"])
        if state is None:
            return None
        return state.index(torch.arange(min(games, state.batch_size), device=state.device))


# ================================================================ learner side
class BidLearning:
    """The learner's BidNet: restored from (or started in) the store, fed by bid-example files, pushed."""

    def __init__(
        self,
        store: Store,
        name: str,
        device: torch.device,
        seed: int = 0,
        steps_per_cycle: int = 8,
        batch_size: int = 512,
        lr: float = 1e-3,
        buffer_size: int = 200_000,
        min_examples: int = 64,
        replay_ratio: float | None = None,
        echo=log.info,
    ) -> None:
        self.store, self.name, self.device = store, bid_namespace(name), device
        self.steps_per_cycle, self.min_examples = steps_per_cycle, min_examples
        self.replay_ratio = replay_ratio
        self.samples_trained = 0  # in this process; the buffer's total_added (the rebuilt part too) is the credit
        self.train_config = TrainConfig(lr=lr, batch=batch_size)
        self.gen = torch.Generator().manual_seed(seed)
        self.buffer = BidBuffer(buffer_size)
        self.buffer_files = BufferFiles(buffer_size)  # what a restart reads back (its floor)
        self.cursor = ExampleCursor()
        self.step = self.hands = self.files_quarantined = 0
        self.net: BidNet | None = None
        self.trainer: BidTrainer | None = None
        self.echo = echo
        self.pushed_step = -1
        self.seed = seed

    def restore(self) -> None:
        """From NAME-bid's newest push; a fresh BidNet (pushed at once, so workers can start) when there is none."""
        bundle = self.store.pull_weights(self.name)
        if bundle is None:
            torch.manual_seed(self.seed)
            self._load(BidNet(), {}, None)
            self.push()
            self.echo(f"Fresh BidNet: pushed {self.name} step 0")
            return
        self._load(bidnet_from_bundle(bundle), bundle.state, bundle.optimizer)
        self._rebuild_buffer()
        self.echo(f"BidNet resumed from {self.name}: step {self.step}, {self.hands:,} hands, "
                  f"{len(self.buffer):,} examples in its buffer")  # fmt: skip

    def _rebuild_buffer(self) -> None:
        """Refill the buffer from the newest files already read (not counted again), as the learner does."""

        def read(ref: ExampleRef) -> tuple[HandExamples, int] | None:
            f = self.store.read_examples(ref, decode=decode_bid_examples)
            return None if f is None else (ex := examples_from_file(f), buffered_count(ex))

        for ex in refill_newest(self.store, self.name, self.cursor, self.buffer_files, read):
            self.buffer.add(ex)

    def _load(self, net: BidNet, state: dict[str, Any], optimizer: dict[str, Any] | None) -> None:
        self.net = net.to(self.device)
        self.trainer = BidTrainer(self.net, self.train_config)
        if optimizer is not None:
            try:
                self.trainer.opt.load_state_dict(optimizer)
            except (ValueError, KeyError) as exc:
                log.warning("BidNet optimizer state does not fit (%s); a fresh optimizer", exc)
        self.step = int(state.get("step", 0))
        self.hands = int(state.get("total_games", 0))
        self.files_quarantined = int(state.get("files_quarantined", 0))
        cursor = state.get("cursor")
        self.cursor = ExampleCursor.from_json(cursor if isinstance(cursor, dict) else None)

    def ingest(self) -> int:
        """New bid-example files (validated; bad ones quarantined by the store); returns the examples added.

        Each file moves the counts and the cursor together (`_take`, as the play learner's): a store error
        between two files ends the run, and the final push records exactly the files counted."""
        try:
            new, late = self.store.new_examples(self.cursor, self.name)
        except StoreUnavailable as exc:
            log.warning("bid ingest skipped: store unavailable (%s)", exc)
            return 0
        if late:
            log.warning("%d bid-example files arrived later than the cursor window; not ingested", len(late))
            self.cursor.advance(r.name for r in late)
        added = 0
        for ref in new:
            try:
                f = self.store.read_examples(ref, decode=decode_bid_examples)
            except StoreUnavailable as exc:
                log.warning("stopped ingesting bids at %s: store unavailable (%s); the rest next cycle", ref.name, exc)
                break
            added += self._take(ref, f)
        return added

    def _take(self, ref: ExampleRef, f: BidExampleFile | None) -> int:
        """One file read: buffered and counted (or counted as quarantined) and marked read in the same step.
        Returns the bid examples added."""
        if f is None:
            self.files_quarantined += 1
            self.cursor.advance([ref.name])
            return 0
        ex = examples_from_file(f)
        self.buffer.add(ex)
        self.hands += int(f.manifest["hands"])
        self.buffer_files.add(ref.name, buffered_count(ex))
        self.cursor.advance([ref.name])
        return len(ex)

    def steps_due(self) -> int:
        """BidNet steps this cycle: `steps_per_cycle`, fewer where `replay_ratio` samples per example received
        would be exceeded (each hand is then replayed about `replay_ratio` times however fast the learner is)."""
        if self.replay_ratio is None:
            return self.steps_per_cycle
        batch = self.train_config.batch
        credit = self.replay_ratio * self.buffer.total_added - self.samples_trained
        return max(0, min(self.steps_per_cycle, int(credit // batch)))

    def train(self) -> dict[str, float]:
        """The due BidNet steps once the buffer holds enough; the mean losses (empty when none was due)."""
        n = self.steps_due()
        if self.trainer is None or len(self.buffer) < self.min_examples or n == 0:
            return {}
        acc = {"decl": 0.0, "q": 0.0}
        for _ in range(n):
            losses = self.trainer.step(self.buffer.sample(self.train_config.batch, self.gen))
            acc = {k: acc[k] + losses[k] / n for k in acc}
        self.samples_trained += n * self.train_config.batch
        self.step += 1
        return {"train/bid_decl_loss": acc["decl"], "train/bid_q_loss": acc["q"], "stats/bid_hands": self.hands,
                "stats/bid_buffer": len(self.buffer)}  # fmt: skip

    def bundle(self) -> WeightsBundle:
        assert self.net is not None and self.trainer is not None
        state = {"step": self.step, "total_games": self.hands, "cursor": self.cursor.to_json(),
                 "files_quarantined": self.files_quarantined,
                 "buffer_floor": self.buffer_files.floor()}  # fmt: skip
        bundle = bidnet_bundle(self.net, state)
        bundle.optimizer = self.trainer.opt.state_dict()
        return bundle

    def push(self) -> bool:
        try:
            self.store.push_weights(self.bundle(), self.name, message=f"BidNet step {self.step}")
        except StoreUnavailable as exc:
            log.warning("BidNet push failed (%s); next cycle", exc)
            return False
        self.pushed_step = self.step
        return True

    def prune(self, keep: int) -> None:
        """Bid-example files beyond the newest `keep`, never one not read yet nor one the buffer refills from after
        a restart (the play learner's rule), and BidNet pushes beyond the newest 50."""
        try:
            self.store.prune_history(self.name, keep=50)
            prune_sparing_buffer(self.store, self.name, keep, None, self.buffer_files.floor())
        except StoreUnavailable as exc:
            log.warning("bid prune skipped: %s", exc)
