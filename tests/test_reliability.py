"""Reliability (issue 6): a learner killed with -9 at random points, store faults on a fifth of all calls during a
run with a worker and a learner, and weights in another format version."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import cli_env, example_bytes
from zeb_core.formats.safe_io import sha256_hex
from zeb_core.formats.weights import bundle_to_files
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.mcts.config import SearchConfig
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.selfplay.outbox import Outbox
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
from zeb_core.store import NotFound, StoreError, open_store
from zeb_core.store.store import Lease

REPO = Path(__file__).resolve().parents[1]
ZEB = str(Path(sys.executable).with_name("zeb"))
TINY = {"device": "cpu", "games_per_batch": 8, "simulations": 8, "worlds": 2, "max_nodes": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


# ------------------------------------------------------------------ (a) kill -9 at random points
def resume_point(store) -> tuple[dict | None, bool]:
    """(state of the push a learner must resume from, whether a kill cut the newest push short): the live push,
    or, when the kill fell between its live files, the push as recorded whole in the history."""
    try:
        bundle = store.pull_weights()
        return (None if bundle is None else bundle.state), False
    except StoreError:
        return store.pull_weights(revision=store.history(limit=1)[0].revision).state, True


CHAOS_LEARNER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from zeb_core.learn.learner import Learner, LearnerSettings
    from zeb_core.store import open_store
    from zeb_core.store.local import LocalBackend

    class StopsInsidePushes(LocalBackend):
        \"\"\"The real local backend, which once armed stops inside each push right after writing the live weights
        (the live state still the push before's) and says so: the test's kill -9 lands there, not by luck.\"\"\"
        armed = False

        def _put_live(self, path, data, revision):
            super()._put_live(path, data, revision)
            if self.armed and path == "model.safetensors":
                emit("inside-push")
                time.sleep(600)

    settings = LearnerSettings(store=sys.argv[1], size="small", min_buffer_size=100, training_steps_per_cycle=3,
                               batch_size=32, replay_buffer_size=100_000, push_every=1, eval_games=100, promote=False,
                               device="cpu", learner_id="chaos-learner")
    store = open_store(settings.store)
    store.weights = StopsInsidePushes(store.weights.root)
    lrn = Learner(settings, store=store, echo=lambda message: None)

    def emit(kind, **extra):
        print(json.dumps({"kind": kind, "step": lrn.step, "ingested": lrn.examples_ingested, "games": lrn.total_games,
                          "buffer": len(lrn.buffer), "optimizer_step": lrn.trainer and lrn.trainer.step, **extra}),
              flush=True)

    emit("starting")
    lrn.start()
    emit("start")
    store.weights.armed = sys.argv[2] == "inside-push"
    while True:  # the flow's cycle with push_every=1, until killed
        emit("ingest", files=lrn.ingest()["files"])
        if lrn.train() is None:
            time.sleep(0.05)
            continue
        emit("push", ok=lrn.push())
    """
)
# Where each run's kill -9 lands: at a random point in the cycles, at a random point of the learner's start-up,
# right after an ingest (before its push), or inside a push between its live files. Every kind is required.
KILL_PLANS = ("cycle", "inside-push", "startup", "ingested", "cycle", "startup", "inside-push", "ingested", "startup",
              "cycle")  # fmt: skip


def live_set_is_torn(store) -> bool:
    """Whether the live weights are not those the live state names: a kill fell between a push's live files."""
    state = store.peek_state() or {}
    try:
        live = store.weights.read("model.safetensors")
    except NotFound:
        return False
    return state.get("weights_sha256") != sha256_hex(live)


def wait_for(events: list[dict], proc: subprocess.Popen, err_path: Path, want) -> dict:
    """The first event `want` accepts, once the learner prints it (it must not die first)."""
    deadline = time.monotonic() + 90
    while True:
        found = next((e for e in list(events) if want(e)), None)
        if found is not None:
            return found
        assert proc.poll() is None, f"the learner died: {err_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the learner never got there"
        time.sleep(0.005)


@pytest.mark.long
def test_learner_killed_with_sigkill_10_times_at_random_points_resumes_and_never_ingests_twice(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    script = tmp_path / "chaos_learner.py"
    script.write_text(CHAOS_LEARNER)
    rng = random.Random(42)
    uploaded: dict[str, dict] = {}
    lock = threading.Lock()

    def upload(i: int) -> None:
        data, manifest = example_bytes(20 + (37 * i) % 41, seed=1000 + i, worker=f"w{i % 3}")
        path = store.upload_examples(data, manifest)
        with lock:
            uploaded[path] = manifest

    for i in range(3):
        upload(i)
    stop = threading.Event()

    def uploader() -> None:  # a worker fleet uploading all along
        i = 3
        while not stop.wait(0.4):
            upload(i)
            i += 1

    thread = threading.Thread(target=uploader, daemon=True)
    thread.start()
    resumed, rolled_back, in_startup, torn = 0, 0, 0, 0
    startup_s: list[float] = []  # how long each start-up took, "starting" to "start"
    try:
        for run, plan in enumerate(KILL_PLANS):
            before, _ = resume_point(store)
            err_path = tmp_path / f"run{run}.stderr"
            events: list[dict] = []
            with open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, str(script), url, plan], stdout=subprocess.PIPE, stderr=err, cwd=REPO, text=True
                )
                reader = threading.Thread(
                    target=lambda events=events, proc=proc: [
                        events.append({**json.loads(line), "at": time.monotonic()}) for line in proc.stdout
                    ],
                    daemon=True,
                )
                reader.start()
                starting = wait_for(events, proc, err_path, lambda e: e["kind"] == "starting")
                if plan == "startup":  # a random point of the start-up: lease, weights, repair, replay buffer
                    assert startup_s, "a start-up to time comes first"
                    time.sleep(rng.uniform(0.0, 0.8 * min(startup_s)))
                elif plan == "ingested":  # files ingested, not pushed yet: they must be ingested again, once
                    wait_for(events, proc, err_path, lambda e: e["kind"] == "ingest" and e["files"] > 0)
                elif plan == "inside-push":
                    wait_for(events, proc, err_path, lambda e: e["kind"] == "inside-push")
                else:  # a random point in the cycles
                    wait_for(events, proc, err_path, lambda e: e["kind"] == "start")
                    time.sleep(rng.uniform(0.0, 1.5))
                assert proc.poll() is None, f"run {run} died: {err_path.read_text()[-3000:]}"
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                reader.join(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            started = [e for e in events if e["kind"] == "start"]
            if started and plan != "startup":
                startup_s.append(started[0]["at"] - starting["at"])
            after, _ = resume_point(store)
            torn += live_set_is_torn(store)
            for event in events:
                assert event["buffer"] == event["ingested"], f"the buffer double-counts: {event}"
            events = events[1:]  # "starting"
            if not events:
                in_startup += 1
                continue
            start = events[0]
            assert start["kind"] == "start"
            if before is None:
                assert start["step"] == 0 and start["ingested"] == 0
            else:
                resumed += 1
                assert (start["step"], start["ingested"], start["games"], start["optimizer_step"]) == (
                    before["step"],
                    before["examples_ingested"],
                    before["total_games"],
                    before["optimizer_step"],
                ), f"run {run} did not resume from the last push {before}: {start}"
            pushes = [e for e in events if e["kind"] == "push" and e["ok"]]
            if pushes:  # a confirmed push is durable; at most the push in flight at the kill went further
                assert pushes[-1]["step"] <= after["step"] <= events[-1]["step"] + 1
                assert after["examples_ingested"] >= pushes[-1]["ingested"]
            if events[-1]["kind"] == "ingest" and events[-1]["ingested"] > after["examples_ingested"]:
                rolled_back += 1  # ingested, then killed before the push: must be ingested again, once
    finally:
        stop.set()
        thread.join(timeout=30)

    final = Learner(
        LearnerSettings(
            store=url,
            size="small",
            min_buffer_size=100,
            training_steps_per_cycle=3,
            batch_size=32,
            replay_buffer_size=100_000,
            device="cpu",
            promote=False,
            learner_id="chaos-learner",
        ),
        echo=lambda message: None,
    )
    last, _ = resume_point(store)
    final.start()
    assert (final.step, final.examples_ingested, final.total_games) == (
        last["step"],
        last["examples_ingested"],
        last["total_games"],
    )
    while final.ingest()["files"]:
        pass
    refs = store.list_examples()
    assert sorted(r.path for r in refs) == sorted(uploaded), "every upload is in the store once"
    examples = sum(m["examples"] for m in uploaded.values())
    games = sum(m["games"] for m in uploaded.values())
    assert final.examples_ingested == examples == len(final.buffer), "ingested exactly once"
    assert final.total_games == games
    final.train()
    assert final.push()
    final.close()
    assert store.peek_state()["examples_ingested"] == examples and Lease.peek(store, "model") is None
    assert resumed >= 5
    # Every kind of kill happened: in start-up, after an ingest before its push, and inside a push.
    assert in_startup > 0 and rolled_back > 0 and torn > 0, (in_startup, rolled_back, torn)
    print(
        f"\nkill -9: {len(KILL_PLANS)} kills, {resumed} resumed from a push, {in_startup} during start-up, "
        f"{rolled_back} after an unpushed ingest, {torn} inside a push; "
        f"{len(uploaded)} files, {examples} examples, {games} games, "
        f"final step {store.peek_state()['step']}"
    )


def test_a_learner_killed_inside_a_push_resumes_from_that_push(tmp_path: Path) -> None:
    """A kill -9 between the live files of a push (the history copy is complete, the live state is still the
    previous push's) must not leave a namespace no learner can resume and no worker can read."""
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    settings = LearnerSettings(
        store=url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=3,
        batch_size=32,
        device="cpu",
        promote=False,
        learner_id="torn",
    )
    first = Learner(settings, echo=lambda message: None)
    first.start()
    worker = SelfPlayWorker(
        WorkerSettings(
            store=url,
            device="cpu",
            games_per_batch=8,
            seed=1,
            worker_id="w-torn",
            outbox=str(tmp_path / "outbox"),
            search=SearchConfig(simulations=8, worlds=2, max_nodes=32),
        )
    )
    assert worker.refresh_weights() and worker.model_step == 0
    for i in range(3):
        data, manifest = example_bytes(50, seed=i)
        store.upload_examples(data, manifest)
    first.ingest()
    first.train()
    assert first.push()
    data, manifest = example_bytes(40, seed=9)
    store.upload_examples(data, manifest)
    first.ingest()
    first.train()
    assert first.push()
    pushes = store.history(limit=2)
    assert [p.step for p in pushes] == [2, 1]
    # What a kill after the weights and optimizer were written, before the state, leaves behind:
    old_state = store.weights.read("model-state.json", revision=pushes[1].revision)
    store.weights.commit({"model-state.json": old_state}, message="the state file of the push before")
    assert store.pull_weights().step == 2, "readers take the push from its complete history copy (issue 35)"
    first.lease.stop_keep_alive()  # killed: its renewal thread dies with it; the lease file stays
    del first
    assert worker.refresh_weights() and worker.model_step == 2 and worker.errors == 0, "the copy, not an error"
    assert worker.generate()[1].model_step == 2

    again = Learner(settings, echo=lambda message: None)
    again.start()
    assert (again.step, again.examples_ingested, again.trainer.step) == (2, 190, 6)
    assert again.ingest()["files"] == 0 and len(again.buffer) == 190, "nothing ingested twice"
    repaired = store.pull_weights()
    assert repaired.step == 2 and repaired.state["examples_ingested"] == 190, "the live set is whole again"
    assert worker.refresh_weights() is False and worker.model_step == 2  # the same weights, whole again
    again.close()

    # Live weights that are not those of the newest recorded push are not a torn push: no silent fallback.
    store.weights.commit({"model.safetensors": store.weights.read("model.safetensors", revision=pushes[1].revision)})
    with pytest.raises(StoreError, match="not valid"):
        Learner(settings, echo=lambda message: None).start()
    assert Lease.peek(store, "model") is None


# ------------------------------------------------------------------ (b) store faults on 20% of calls
@pytest.mark.long
def test_store_faults_on_a_fifth_of_calls_during_a_worker_and_learner_run_reconcile(tmp_path: Path) -> None:
    from flows.selfplay_worker import selfplay_worker

    url = f"file://{tmp_path / 'store'}"
    faulty = f"{url}?faults=0.2&fault_seed=7"
    log_path = tmp_path / "learner.log"
    cmd = [
        ZEB,
        "learner",
        "--store",
        faulty,
        "--size",
        "small",
        "--min-buffer-size",
        "100",
        "--training-steps-per-cycle",
        "3",
        "--batch-size",
        "32",
        "--replay-buffer-size",
        "100",  # the newest file refills it, so the prune (3 files kept) removes older ones
        "--push-every",
        "1",
        "--prune-every",
        "2",
        "--keep-example-files",
        "3",
        "--eval-every",
        "1000",
        "--eval-games",
        "100",
        "--no-promote",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    retries: list[str] = []  # the worker's store retries (Prefect reconfigures the root logger's handlers)
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: retries.append(record.getMessage())  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("zeb.store", "zeb.worker")]  # store retries, outbox waits
    saved = [(lg.disabled, lg.level) for lg in loggers]
    for lg in loggers:  # an earlier test in this process may have disabled or quietened them (logging config)
        lg.disabled = False
        lg.setLevel(logging.WARNING)
        lg.addHandler(handler)
    healthy = open_store(url)
    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, env=cli_env(tmp_path, "learner")
        )
        try:
            reports = selfplay_worker(
                WorkerSettings.from_flat(
                    dict(store=faulty, batches=6, worker_id="faulty-w", outbox=str(tmp_path / "outbox"), seed=3, **TINY)
                )
            )
            worker_done = time.monotonic() - started
            generated_games = sum(r["games"] for r in reports)
            generated_examples = sum(r["examples"] for r in reports)
            deadline = time.monotonic() + 120
            while (healthy.peek_state() or {}).get("total_games") != generated_games:
                assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, f"the learner never ingested all {generated_games} games"
                time.sleep(0.5)
            ingested_at = time.monotonic() - started
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            for lg, (disabled, level) in zip(loggers, saved, strict=True):
                lg.removeHandler(handler)
                lg.disabled, lg.level = disabled, level
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]

    # Generated (worker reports) == uploaded (store manifests, pruned files included) == ingested (learner state).
    reported = {r["uploaded"]: r for r in reports}
    assert len(reports) == 6 and len(reported) == 6 and None not in reported
    listed = {r.path: healthy.read_examples(r) for r in healthy.list_examples()}
    assert set(listed) <= set(reported), "nothing in the store that the worker did not report"
    pruned = set(reported) - set(listed)
    for path, ex in listed.items():
        assert ex is not None and ex.manifest["games"] == reported[path]["games"]
        assert ex.examples == reported[path]["examples"]
    uploaded_games = sum(ex.manifest["games"] for ex in listed.values()) + sum(reported[p]["games"] for p in pruned)
    state = healthy.peek_state()
    assert generated_games == uploaded_games == state["total_games"] == 48
    assert state["examples_ingested"] == generated_examples
    assert state["examples_dropped_stale"] == 0 and state["files_quarantined"] == 0
    assert healthy.list_quarantine() == [], "faults must never get a good file quarantined"
    assert len(pruned) >= 1 and len(listed) + len(pruned) == 6
    assert Outbox(tmp_path / "outbox").pending() == []
    assert Lease.peek(healthy, "model") is None
    # The faults were real, on both sides.
    assert "(injected)" in text
    worker_faults = sum("(injected)" in m for m in retries)
    assert worker_faults > 0
    print(
        f"\nfaults 20%: generated {generated_games} games / {generated_examples} examples in 6 files; "
        f"uploaded {uploaded_games} games ({len(listed)} files kept, {len(pruned)} pruned); ingested "
        f"{state['total_games']} games / {state['examples_ingested']} examples; learner step {state['step']}; "
        f"{text.count('(injected)')} injected faults logged by the learner, "
        f"{worker_faults} by the worker; worker done at {worker_done:.0f}s, all ingested at {ingested_at:.0f}s, "
        f"stopped at {time.monotonic() - started:.0f}s"
    )


# ------------------------------------------------------------------ (c) weights format version
@pytest.mark.parametrize("version", [2, 0], ids=["newer", "older"])
def test_weights_in_another_format_version_give_a_clear_version_error(tmp_path: Path, version: int) -> None:
    from flows.selfplay_worker import selfplay_worker

    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    torch.manual_seed(0)
    store.push_weights(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 1}))
    settings = WorkerSettings(
        store=url,
        device="cpu",
        games_per_batch=8,
        seed=1,
        worker_id="versioned",
        outbox=str(tmp_path / "outbox"),
        search=SearchConfig(simulations=8, worlds=2, max_nodes=32),
    )
    loaded = SelfPlayWorker(settings.model_copy(update={"wait_for_weights_s": 0.5}))
    assert loaded.refresh_weights() and loaded.model_step == 1

    # A learner of another Zeb version pushes: new weights, and a state JSON naming its format version.
    torch.manual_seed(1)
    files = bundle_to_files(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 2}), "model")
    state = json.loads(files["model-state.json"])
    assert state["format_version"] == 1
    state["format_version"] = version
    changed = files["model-state.json"] = json.dumps(state).encode()
    store.weights.commit(files, message=f"weights format {version}")
    message = rf"weights format version {version}; this Zeb reads version 1"

    fresh = SelfPlayWorker(settings)
    with pytest.raises(StoreError, match=message):
        fresh.refresh_weights()
    assert fresh.evaluator is None
    # A running worker plays on with the weights it has for a while (a torn push heals), then stops with it.
    assert loaded.refresh_weights() is False and loaded.errors == 1 and loaded.model_step == 1
    time.sleep(0.6)
    with pytest.raises(StoreError, match=message):
        loaded.refresh_weights()
    with pytest.raises(StoreError, match=message):
        selfplay_worker(
            WorkerSettings.from_flat(
                dict(store=url, batches=1, worker_id="versioned", outbox=str(tmp_path / "outbox"), **TINY)
            )
        )
    assert store.list_examples() == [] and Outbox(tmp_path / "outbox").pending() == []

    learner = Learner(
        LearnerSettings(store=url, size="small", min_buffer_size=100, device="cpu", learner_id="v-learner")
    )
    with pytest.raises(StoreError, match=message):
        learner.start()
    assert store.weights.read("model-state.json") == changed, "a learner never overwrites weights it cannot read"
    assert Lease.peek(store, "model") is None, "a learner that cannot start gives its lease back"
