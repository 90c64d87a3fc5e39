"""Issue 35: every pointer a learner writes (latest, best, the BidNet NAME-bid) survives a kill -9 between any two
writes of its push; revert holds the lease; reserved namespace names; pruning of unrecorded and promoted copies.

A child process (PUSHER) forks one process per push, which kills itself with SIGKILL right after its k-th write
(the local store's atomic writes, lease files aside): a real kill at each point of a real push, on copies of one
store, in seconds."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from tests.helpers import example_bytes, play_out_checking_legality
from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.formats.safe_io import sha256_hex
from zeb_core.formats.weights import weights_filenames
from zeb_core.fullgame.bid_learning import BidLearning, WorkerBids
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.mcts.config import SearchConfig
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
from zeb_core.store import LeaseHeld, StoreError, open_store
from zeb_core.store.store import Lease, check_name

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

# kind of push -> (namespace, which): the three pointers a learner writes
POINTERS = {"latest": ("model", "latest"), "best": ("model", "best"), "bid": ("model-bid", "latest")}

PUSHER = textwrap.dedent(
    """
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import zeb_core.store.local as local
    from zeb_core.formats.weights import default_state
    from zeb_core.fullgame.bidnet import BidNet, bidnet_bundle
    from zeb_core.model.checkpoint import bundle_from_model
    from zeb_core.model.config import ModelConfig
    from zeb_core.model.net import ZebNet
    from zeb_core.store import open_store

    real_write = local.write_atomic
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])  # its first use imports for seconds: once, not per fork

    def push(cmd):
        store = open_store(cmd["url"])
        store.ensure()
        kind, step = cmd["kind"], cmd["step"]
        torch.manual_seed(step)
        if kind == "revert":
            store.revert("model", cmd["to"], reason="kill test", lease_ttl_s=cmd["ttl"])
        elif kind == "bid":
            net = BidNet()
            bundle = bidnet_bundle(net, default_state(step, total_games=100 * step))
            bundle.optimizer = torch.optim.AdamW(net.parameters()).state_dict()
            store.push_weights(bundle, "model-bid", message=f"BidNet step {step}")
        else:
            model = ZebNet(ModelConfig.preset("small").model_copy(update={"value_target": "contract"}))
            if kind == "latest":
                state = default_state(step, total_games=10 * step, value_target="contract")
                optimizer = torch.optim.AdamW(model.parameters()).state_dict()
                store.push_weights(bundle_from_model(model, state, optimizer), "model", message=f"step {step}")
            else:  # a best no later candidate regresses below: promotion returns at once
                state = default_state(step, last_eval={"eval/vs_random_win_rate": 1.0, "step": step})
                store.promote(bundle_from_model(model, state, None), "model", message=f"best step {step}")

    for line in sys.stdin:
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:
            writes = [0]

            def write_then_maybe_die(path, data):
                real_write(path, data)
                if path.name.endswith("-lease.json"):
                    return
                writes[0] += 1
                if writes[0] == cmd["kill_after"]:
                    os.kill(os.getpid(), signal.SIGKILL)

            local.write_atomic = write_then_maybe_die
            try:
                push(cmd)
            except BaseException as exc:
                print(repr(exc), file=sys.stderr, flush=True)
                os._exit(255)
            os._exit(writes[0])
        _, status = os.waitpid(pid, 0)
        killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        print(json.dumps({"signal": killed, "writes": code}), flush=True)
    """
)

Push = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def pusher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Push]:
    """push(url, kind, step, kill_after=0, **extra): one push in a forked child, SIGKILLed after its k-th write
    (0: never); returns {"signal": ..., "writes": writes of a whole push}."""
    folder = tmp_path_factory.mktemp("pusher")
    script, errors = folder / "pusher.py", folder / "pusher.stderr"
    script.write_text(PUSHER)
    with open(errors, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=REPO,
            text=True,
        )

    def push(url: str, kind: str, step: int, kill_after: int = 0, **extra: Any) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"url": url, "kind": kind, "step": step, "kill_after": kill_after, **extra}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"the pusher died: {errors.read_text()[-3000:]}"
        out = json.loads(line)
        if kill_after:
            assert out["signal"] == signal.SIGKILL, f"not killed after write {kill_after}: {out} {errors.read_text()}"
        else:
            assert out["signal"] is None and out["writes"] != 255, errors.read_text()[-3000:]
        return out

    try:
        yield push
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def torn(store, name: str, which: str) -> bool:
    """Whether the live weights are not the ones the live state names (what a kill inside a push leaves)."""
    prefix = name if which == "latest" else f"{name}-best"
    live = store.weights.read(weights_filenames(prefix)["weights"])
    return store.peek_state(name, which)["weights_sha256"] != sha256_hex(live)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def revisions(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "weights" / ".history").iterdir())


def test_a_push_killed_between_any_two_of_its_writes_reads_whole_and_is_finished_by_heal(
    tmp_path: Path, pusher: Push, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "base"
    writes = {kind: pusher(f"file://{base}", kind, 1)["writes"] for kind in POINTERS}
    # each file copied under .history, the record, then the live files (the state last); best has no optimizer
    assert writes == {"latest": 9, "best": 7, "bid": 9}
    for kind, (name, which) in POINTERS.items():
        files = (writes[kind] - 1) // 2
        for k in range(1, writes[kind]):
            folder = tmp_path / f"{kind}-{k}"
            shutil.copytree(base, folder)
            pusher(f"file://{folder}", kind, 2, kill_after=k)
            store = open_store(f"file://{folder}")
            cut = k > files + 1  # the copy and the record were written, then some live files but not the state
            assert torn(store, name, which) == cut, (kind, k)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="zeb.store"):
                assert store.pull_weights(name, which).step == (2 if cut else 1), (kind, k)
                assert bool(warnings_about(caplog, "cut short")) == cut, (kind, k)
                assert [p.step for p in store.heal("model")] == ([2] if cut else []), (kind, k)
                caplog.clear()
                assert store.pull_weights(name, which).step == (2 if cut else 1) and not caplog.records, (kind, k)
            assert not torn(store, name, which)
            # a copy with no record (killed before it) is forgotten by the prune, once it cannot be a push in flight
            before = revisions(folder)
            unrecorded = int(k <= files)
            assert store.prune_history("model") == 0 and revisions(folder) == before
            assert store.prune_history("model", now=time.time() + 2 * 3600) == unrecorded, (kind, k)
            assert len(revisions(folder)) == len(before) - unrecorded
            assert [p.step for p in store.history(name, which)][-1] == 1, "the recorded pushes stay"
            shutil.rmtree(folder)


def test_learner_worker_and_server_start_on_a_store_whose_every_pointer_was_cut_short(
    tmp_path: Path, pusher: Push, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"file://{tmp_path / 'store'}"
    writes = {kind: pusher(url, kind, 1)["writes"] for kind in POINTERS}
    for kind in POINTERS:  # killed right after the live weights: the copy, the record and the weights written
        pusher(url, kind, 2, kill_after=(writes[kind] - 1) // 2 + 2)
    store = open_store(url)
    assert all(torn(store, name, which) for name, which in POINTERS.values())
    caplog.set_level(logging.WARNING, logger="zeb.store")

    # A worker following best, and a full-game worker's BidNet: the pushes' complete copies, with a warning.
    search = SearchConfig(simulations=4, worlds=1, max_nodes=8, value_target="contract")
    settings = WorkerSettings(store=url, device="cpu", follow="best", worker_id="w-heal", seed=1,
                              outbox=str(tmp_path / "outbox"), wait_for_weights_s=1.0, search=search)  # fmt: skip
    worker = SelfPlayWorker(settings)
    assert worker.refresh_weights() and worker.model_step == 2 and worker.errors == 0
    bids = WorkerBids(store, "model", tmp_path / "bid-outbox", torch.device("cpu"), "w-heal")
    assert bids.refresh(1.0) and bids.step == 2
    assert len(warnings_about(caplog, "cut short")) >= 2

    # The server: its default player is the store's best, which plays legal moves.
    from fastapi.testclient import TestClient

    from zeb_core.serve.app import create_app

    caplog.clear()
    app = create_app(store_url=url)  # before issue 35, `zeb serve --store` did not start here
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        assert "which=best" in app.state.pool.default  # the store's best is the default player
        player = app.state.pool.get(None)
        assert player.name == "store(best model, step 2)"
        dealt = deal_benchmark(2, make_generator(5))
        state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
        assert play_out_checking_legality(state, player) > 0
    assert warnings_about(caplog, "cut short")

    # The full-game learner: finishes all three pushes at start, then runs its cycles, promotion included.
    caplog.clear()
    learner = Learner(LearnerSettings(store=url, size="small", min_buffer_size=20, training_steps_per_cycle=2,
                                      batch_size=16, device="cpu", value_target="contract", full_game=True,
                                      eval_games=8, learner_id="healer"), echo=lambda message: None)  # fmt: skip
    learner.start()
    try:
        assert learner.step == 2 and learner.bids is not None and learner.bids.step == 2
        assert len(warnings_about(caplog, "finished it from its history copy")) == 3
        assert not any(torn(store, name, which) for name, which in POINTERS.values())
        caplog.clear()
        assert [store.pull_weights(name, which).step for name, which in POINTERS.values()] == [2, 2, 2]
        assert not warnings_about(caplog, "cut short"), "whole again: no reader needs the copy now"
        for cycle in range(2):
            data, manifest = example_bytes(30, seed=cycle, value_target="contract")
            store.upload_examples(data, manifest)
            assert learner.ingest()["files"] == 1 and learner.train() is not None and learner.push()
        learner.evaluate(games=8)
        result = learner.maybe_promote()
        assert result is not None and result.decision == "regression"  # the best read, whole, and kept
        assert store.latest_step() == 4 and store.latest_step(which="best") == 2
    finally:
        learner.close()
    assert store.latest_step("model-bid") == 2
    assert worker.refresh_weights() is False and worker.model_step == 2  # the same best, whole now


def test_a_revert_holds_the_lease_while_it_writes(tmp_path: Path, pusher: Push) -> None:
    """A learner starting while a revert writes would resume from the old weights and push over the revert."""
    url = f"file://{tmp_path / 'store'}"
    writes = pusher(url, "latest", 1)["writes"]
    pusher(url, "latest", 2)
    # The revert killed right after its live weights: its lease outlives it until it expires.
    pusher(url, "revert", 0, kill_after=(writes - 1) // 2 + 2, to="step:1", ttl=2.0)
    store = open_store(url)
    held = Lease.peek(store, "model")
    assert held is not None and held["holder"].startswith("revert-")
    settings = LearnerSettings(store=url, size="small", device="cpu", value_target="contract", learner_id="after")
    with pytest.raises(LeaseHeld, match="revert-"):
        Learner(settings, echo=lambda message: None).start()
    time.sleep(max(0.0, held["expires"] - time.time()) + 0.1)
    learner = Learner(settings, echo=lambda message: None)
    learner.start()  # finishes the revert's push and resumes from it
    try:
        assert learner.step == 1
        state = store.peek_state()
        assert state["step"] == 1 and state["revert_reason"] == "kill test"
        # A learner holding the lease: a revert is refused; a forced one takes the lease, and the learner stops
        # without pushing over it.
        with pytest.raises(LeaseHeld, match="after"):
            store.revert("model", "step:2")
        store.revert("model", "step:2", reason="forced", force=True)
        with pytest.raises(LeaseHeld):
            learner.push("would overwrite the revert")
    finally:
        learner.close()
    assert store.peek_state()["step"] == 2 and store.peek_state()["revert_reason"] == "forced"
    assert Lease.peek(store, "model") is None


def test_reserved_namespace_names_are_refused_and_the_bidnet_shares_its_learners_lease(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    for bad, why in (
        ("quarantine", "quarantine"),
        ("Quarantine", "quarantine"),
        ("model-bid", "-bid"),
        ("x-BID", "-bid"),
        ("model-best", "-best"),
        ("model-optimizer", "-optimizer"),
    ):
        with pytest.raises(StoreError, match=why):
            check_name(bad)
        with pytest.raises(StoreError, match=why):
            store.acquire_lease(bad)
    with pytest.raises(ValidationError, match="quarantine"):  # the settings refuse them (tests/test_settings.py)
        LearnerSettings(store=url, name="quarantine", size="small", device="cpu")
    with pytest.raises(ValidationError, match="-bid"):
        WorkerSettings(store=url, name="model-bid", device="cpu", outbox=str(tmp_path / "box"))
    assert Lease.peek(store, "model") is None, "nothing took a lease"

    # NAME-bid is the store's to read and write as NAME's BidNet, under NAME's lease.
    bids = BidLearning(store, "model", torch.device("cpu"))
    bids.restore()
    bids.step = 1
    assert bids.push() and [p.step for p in store.history("model-bid")] == [1, 0]
    lease = store.acquire_lease("model", "learner-x")
    try:
        assert Lease.peek(store, "model-bid")["holder"] == "learner-x"
        with pytest.raises(LeaseHeld, match="learner-x"):
            store.revert("model-bid", "step:0")
        assert store.latest_step("model-bid") == 1
    finally:
        lease.release()
    store.revert("model-bid", "step:0")
    assert store.latest_step("model-bid") == 0
