"""The learner (issue 5): resume after a kill from the last push with the optimizer state and no double ingest,
one learner per namespace, store outages mid-cycle, stale and invalid example files, and a clean stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from tests.helpers import cli_env, example_bytes
from tests.prefect_server import MARKER_VAR, kill_marked
from zeb_core.formats.examples import example_filename
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.store import FaultyBackend, LeaseHeld, RetryPolicy, Store, open_store
from zeb_core.store.store import Lease

REPO = Path(__file__).resolve().parents[1]
ZEB = str(Path(sys.executable).with_name("zeb"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def upload(store: Store, n: int, seed: int, step: int = 0, worker: str = "w1") -> dict:
    data, manifest = example_bytes(n, seed, worker=worker, step=step)
    store.upload_examples(data, manifest)
    return manifest


def store_totals(store: Store) -> tuple[int, int, int]:
    """(files, examples, games) over the distinct example files in the store."""
    refs = store.list_examples()
    assert len({r.hash16 for r in refs}) == len(refs), "no content is stored twice"
    manifests = [store.read_examples(r).manifest for r in refs]
    return len(refs), sum(m["examples"] for m in manifests), sum(m["games"] for m in manifests)


def settings(url: str, **kw) -> LearnerSettings:
    base = dict(
        store=url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=3,
        batch_size=32,
        replay_buffer_size=20_000,
        eval_games=100,
        device="cpu",
        promote=False,
        learner_id="learner-A",
    )
    base.update(kw)
    return LearnerSettings(**base)


def cycle(lrn: Learner, evaluate: bool = False) -> dict:
    """One cycle the way flows/learner.py runs it: ingest -> train -> (evaluate, promote) -> push -> prune."""
    out = {"ingest": lrn.ingest(), "train": lrn.train()}
    if evaluate:
        out["eval"] = lrn.evaluate()
        out["promotion"] = lrn.maybe_promote()
    out["pushed"] = lrn.push()
    out["pruned"] = lrn.prune()
    return out


LEARNER_FLAGS = [
    "--size",
    "small",
    "--min-buffer-size",
    "100",
    "--training-steps-per-cycle",
    "3",
    "--batch-size",
    "32",
    "--replay-buffer-size",
    "20000",
    "--eval-games",
    "100",
    "--device",
    "cpu",
    "--threads",
    "1",
]


# ------------------------------------------------------------------ resume
def test_resume_after_a_kill_continues_from_the_last_push_with_the_optimizer(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    first = Learner(settings(url))
    first.start()
    assert first.step == 0 and store.latest_step() == 0  # bootstrap pushed
    for i in range(3):
        upload(store, 60, seed=i)
    first.ingest()
    first.train()
    first.train()
    assert first.push()
    pushed = store.pull_weights()
    assert pushed.step == 2 and pushed.state["examples_ingested"] == 180 and pushed.optimizer is not None
    # More work after the push, then the process dies: no close, no release, nothing pushed.
    for i in range(3, 5):
        upload(store, 50, seed=i)
    assert first.ingest()["files"] == 2 and first.examples_ingested == 280
    first.train()
    first.lease.stop_keep_alive()  # a kill -9 takes the renewal thread with it; the lease file stays as it was
    del first

    second = Learner(settings(url))  # the same learner id restarts at once (another would wait out the lease)
    second.start()
    assert (second.step, second.examples_ingested, second.total_games) == (2, 180, pushed.state["total_games"])
    assert second.trainer.step == pushed.state["optimizer_step"] == 6
    assert len(second.buffer) == 180, "the buffer holds only what the last push had ingested"
    opt = second.trainer.optimizer_state()
    assert set(opt["state"]) == set(pushed.optimizer["state"])
    for pid, pstate in pushed.optimizer["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                assert torch.equal(opt["state"][pid][key].cpu(), value), f"optimizer {pid}.{key} not restored"
    assert any(float(v["exp_avg"].abs().sum()) > 0 for v in opt["state"].values())
    for key, value in second.model.state_dict().items():
        assert torch.equal(value.cpu(), pushed.tensors[key]), "weights are those of the last push"

    # What was ingested after the push is ingested again, exactly once.
    assert second.ingest()["files"] == 2
    assert second.ingest()["files"] == 0
    _files, examples, games = store_totals(store)
    assert (
        (second.examples_ingested, second.total_games, len(second.buffer))
        == (examples, games, examples)
        == (280, games, 280)
    )
    second.train()
    second.close()
    assert store.latest_step() == 3

    third = Learner(settings(url, learner_id="learner-C"))  # released: another learner may take over
    third.start()
    assert third.examples_ingested == 280 and third.ingest()["files"] == 0 and len(third.buffer) == 280
    third.close(push=False)


# ------------------------------------------------------------------ one learner per namespace
@pytest.mark.long
def test_a_second_learner_on_the_namespace_refuses(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    holder = Learner(settings(url, learner_id="holder-A"))
    holder.start()
    upload(store, 120, seed=1)
    intruder = Learner(settings(url, learner_id="intruder-B"))
    with pytest.raises(LeaseHeld, match="held by learner 'holder-A'"):
        intruder.start()
    assert intruder.model is None and store.latest_step() == 0

    proc = subprocess.run(
        [ZEB, "learner", "--store", url, *LEARNER_FLAGS, "--cycles", "3"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=cli_env(tmp_path, "refused"),
    )
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 3, out[-3000:]
    assert "error:" in out and "held by learner 'holder-A'" in out and "another --weights-name" in out, out[-3000:]
    assert store.latest_step() == 0 and Lease.peek(store, "model")["holder"] == "holder-A"

    holder.close()
    assert Lease.peek(store, "model") is None
    intruder.start()  # free now
    assert intruder.step == 0 and Lease.peek(store, "model")["holder"] == "intruder-B"
    intruder.close(push=False)


# ------------------------------------------------------------------ outages
def test_a_store_outage_during_cycles_does_not_crash_the_learner(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    healthy = open_store(url)
    healthy.ensure()
    weights = FaultyBackend(healthy.weights, 0.0, kinds=("500", "timeout", "429"))
    examples = FaultyBackend(healthy.examples, 0.0, kinds=("500", "timeout", "429"))
    # A buffer the two newest files (70 + 70 examples) refill: the prune may then remove the two older ones.
    lrn = Learner(
        settings(url, promote=True, keep_example_files=2, replay_buffer_size=140),
        store=Store(weights, examples, RetryPolicy.fast()),
    )
    lrn.start()
    for i in range(2):
        upload(healthy, 80, seed=i)
    first = cycle(lrn, evaluate=True)
    assert first["pushed"] and first["ingest"]["files"] == 2 and first["promotion"].decision == "first"
    assert healthy.peek_state("model", "best")["step"] == 1

    weights.rate = examples.rate = 0.999999  # the store goes down
    for i in range(2, 4):
        upload(healthy, 70, seed=i)
    for _ in range(2):
        out = cycle(lrn, evaluate=True)
        assert out["ingest"] == {"files": 0, "examples": 0} and out["train"] is not None
        assert out["pushed"] is False and out["pruned"] == 0
    assert lrn.step == 3 and lrn.pushed_step == 1 and healthy.latest_step() == 1
    lrn.close()  # the final push fails too; closing must not raise
    assert healthy.latest_step() == 1

    weights.rate = examples.rate = 0.0  # back: nothing was lost, the books add up
    again = Learner(
        settings(url, keep_example_files=2, replay_buffer_size=140), store=Store(weights, examples, RetryPolicy.fast())
    )
    again.start()
    assert again.step == 1 and again.examples_ingested == 160
    out = cycle(again)
    assert out["pushed"] and out["ingest"]["files"] == 2
    files, n_examples, games = 4, 300, sum(1 + n // 10 for n in (80, 80, 70, 70))
    assert (again.examples_ingested, again.total_games) == (n_examples, games)
    state = healthy.peek_state()
    assert (state["examples_ingested"], state["total_games"], state["step"]) == (n_examples, games, 2)
    assert out["pruned"] == files - 2 and len(healthy.list_examples()) == 2
    assert weights.injected > 0 and examples.injected > 0
    again.close()


def test_a_store_outage_while_starting_up_makes_the_learner_wait(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    healthy = open_store(url)
    healthy.ensure()
    for i in range(2):
        upload(healthy, 60, seed=i)
    first = Learner(settings(url))
    first.start()
    first.ingest()
    first.train()
    first.close()
    weights = FaultyBackend(healthy.weights, 0.0, kinds=("500", "timeout"))
    examples = FaultyBackend(healthy.examples, 0.0, kinds=("500", "timeout"))
    timers = []

    def down_after_resume(message: str) -> None:  # called once the learner has resumed, before the buffer refill
        if message.startswith("Resuming"):
            weights.rate = examples.rate = 0.999999
            timers.append(threading.Timer(1.5, lambda: setattr(weights, "rate", 0.0) or setattr(examples, "rate", 0.0)))
            timers[-1].start()

    lrn = Learner(settings(url), store=Store(weights, examples, RetryPolicy.fast()), echo=down_after_resume)
    start = time.monotonic()
    lrn.start()
    assert timers and time.monotonic() - start >= 1.0 and weights.injected + examples.injected > 0
    timers[0].join()
    assert lrn.step == 1 and len(lrn.buffer) == lrn.examples_ingested == 120, "the buffer is refilled once"
    lrn.close(push=False)


# ------------------------------------------------------------------ stale and invalid files
def test_stale_and_invalid_example_files_are_dropped_and_counted(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url, max_model_lag=1))
    lrn.start()
    upload(store, 150, seed=0)
    for _ in range(3):
        cycle(lrn)
    assert lrn.step == 3 and lrn.examples_ingested == 150

    stale = upload(store, 40, seed=1, step=1)  # 3 - 1 > 1: too old
    upload(store, 30, seed=2, step=2)  # 3 - 2 <= 1: fine
    bad_name = example_filename("evil", "ab" * 32)
    good, _ = example_bytes(20, seed=3, step=3)
    store.examples.commit({bad_name: good[: len(good) // 2]}, message="a truncated upload")
    lying_name = example_filename("liar", "cd" * 32)  # valid content under a name whose hash does not match
    store.examples.commit({lying_name: good}, message="a renamed file")

    out = lrn.ingest()
    assert out == {"files": 1, "examples": 30}
    stats = lrn.stats()
    assert stats["stats/examples_dropped_stale"] == stale["examples"] == 40
    assert stats["stats/files_quarantined"] == 2
    assert stats["stats/examples_ingested"] == 180 and stats["stats/replay_buffer_size"] == 180
    assert {q.path for q in store.list_quarantine()} == {f"quarantine/{bad_name}", f"quarantine/{lying_name}"}
    assert lrn.ingest()["files"] == 0 and lrn.stats()["stats/examples_dropped_stale"] == 40  # counted once
    lrn.train()
    assert lrn.push()
    state = store.peek_state()
    assert (state["examples_dropped_stale"], state["files_quarantined"], state["examples_ingested"]) == (40, 2, 180)
    lrn.close()

    again = Learner(settings(url, max_model_lag=1))
    again.start()
    assert again.stats()["stats/examples_dropped_stale"] == 40 and again.stats()["stats/files_quarantined"] == 2
    assert again.ingest()["files"] == 0 and again.examples_ingested == 180
    again.close(push=False)


# ------------------------------------------------------------------ stop on a signal
@pytest.mark.long
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_pushes_final_weights_and_releases_the_lease(tmp_path: Path, sig: signal.Signals) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    for i in range(3):
        upload(store, 60, seed=10 + i)
    log_path = tmp_path / "learner.log"
    cmd = [
        ZEB,
        "learner",
        "--store",
        url,
        *LEARNER_FLAGS,
        "--push-every",
        "1000",
        "--eval-every",
        "1000",
        "--no-promote",
    ]
    marker = uuid.uuid4().hex  # on the learner and on any Prefect server it starts
    env = {**cli_env(tmp_path, "sig"), MARKER_VAR: marker}
    env.pop("PREFECT_API_URL", None)  # no server configured: the learner provides its own
    with open(log_path, "wb") as log_file:
        # its own process group, signalled whole as a terminal's Ctrl-C is: the learner's Prefect server must not
        # die of it while the learner is still finishing (it did when Prefect's temporary server was in the group)
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 150
            while "Cycle 3:" not in log_path.read_text(errors="replace"):
                assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the learner never got to train"
                time.sleep(0.3)
            holder = Lease.peek(store, "model")
            assert holder is not None and store.latest_step() == 0  # only the bootstrap push so far
            signalled = time.monotonic()
            os.killpg(proc.pid, sig)
            proc.wait(timeout=120)
            stop_s = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            left_running = kill_marked(marker)  # asserted below, after the log's own checks
    text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "stop requested" in text and "Prefect UI:" in text
    assert stop_s < 60, f"the learner took {stop_s:.0f}s to stop"
    assert not left_running, "its Prefect server was stopped with it"
    assert "Error logging to API" not in text and "Traceback" not in text, text[-3000:]
    stopped = [line for line in text.splitlines() if line.startswith("learner stopped at step")]
    assert stopped, text[-3000:]
    final_step = int(stopped[-1].split()[4])
    state = store.peek_state()
    assert final_step >= 3 and state["step"] == final_step, "the final weights were pushed"
    assert state["learner_id"] == holder["holder"]
    assert "(final)" in store.history(limit=1)[0].message
    assert state["examples_ingested"] == 180 and state["optimizer_step"] == 3 * final_step
    assert Lease.peek(store, "model") is None, "the lease was released, not left to expire"
    raw = json.loads(store.weights.read("model-lease.json"))
    assert raw["holder"] is None and raw["expires"] == 0


def test_the_cycle_log_line_says_n_a_for_a_loss_without_examples() -> None:
    """Solver-labelled runs carry Q targets only: their policy loss is NaN, and the log must not print "nan"."""
    from flows.learner import _losses_text

    text = _losses_text({"train/policy_loss": float("nan"), "train/q_loss": 0.0123, "train/value_loss": 0.5})
    assert text == "policy_loss=n/a, q_loss=0.0123, value_loss=0.5000"


def test_loss_text_reads_n_a_for_missing_and_nan_losses() -> None:
    """The one formatter of reported losses, shared by the cycle log and the `zeb train` report table."""
    from zeb_core.learn.learner import loss_text

    assert loss_text(None) == "n/a" and loss_text(float("nan"), 3) == "n/a"
    assert loss_text(0.12345, 3) == "0.123" and loss_text(2.0) == "2.0000"
