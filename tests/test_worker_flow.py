"""The self-play worker (issue 4): what it reports is what the store holds, example files round-trip and validate,
a worker killed between generating and uploading loses nothing, and a store outage makes it wait, not die."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from tests.prefect_server import MARKER_VAR, kill_marked
from zeb_core.formats.examples import decode_examples
from zeb_core.formats.safe_io import FormatError
from zeb_core.mcts.config import SearchConfig
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.selfplay.outbox import SUFFIX, Outbox
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
from zeb_core.store import FaultyBackend, RetryPolicy, Store, open_store

REPO = Path(__file__).resolve().parents[1]
SEARCH = SearchConfig(simulations=8, worlds=2, max_nodes=32)
TINY = {"device": "cpu", "games_per_batch": 8, "simulations": 8, "worlds": 2, "max_nodes": 32}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: the small model gains nothing from more, and on a busy 2-core machine spinning
    threads make it many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def push_fresh_weights(store: Store, step: int = 0, seed: int = 0) -> None:
    torch.manual_seed(seed)
    store.ensure()
    store.push_weights(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": step}))


def tiny_worker(
    url: str, outbox: Path, store: Store | None = None, worker_id: str = "w-test", seed: int = 1
) -> SelfPlayWorker:
    settings = WorkerSettings(
        store=url, device="cpu", games_per_batch=8, seed=seed, worker_id=worker_id, outbox=str(outbox), search=SEARCH
    )
    return SelfPlayWorker(settings, store=store)


def check_examples(data: bytes) -> dict:
    """Decode (which validates everything) and check the policy targets by hand too."""
    ex = decode_examples(data)
    assert ex.examples == ex.manifest["examples"] > 0
    sums = (ex.policy * ex.legal).sum(1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5), "policy targets must sum to 1 over legal moves"
    assert bool((ex.policy[~ex.legal] == 0).all()), "no policy mass on illegal moves"
    forced = ex.legal.sum(1) == 1  # value-only examples: their policy target is the one legal slot
    assert bool((ex.policy[forced] == ex.legal[forced].float()).all())
    assert 0 < int(forced.sum()) < ex.examples and ex.examples == 28 * ex.manifest["games"], "every position is one"
    assert ex.manifest["value_target"] == "points"
    assert bool((ex.value.abs() <= 1).all())
    return ex.manifest


def test_worker_flow_uploads_exactly_what_it_reports(tmp_path: Path) -> None:
    from flows.selfplay_worker import selfplay_worker

    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    push_fresh_weights(store, step=3)
    outbox = tmp_path / "outbox"
    reports = selfplay_worker(
        WorkerSettings.from_flat(dict(store=url, batches=2, worker_id="w-flow", outbox=str(outbox), seed=7, **TINY))
    )

    assert len(reports) == 2
    paths = [r["uploaded"] for r in reports]
    assert None not in paths and len(set(paths)) == 2
    listed = store.list_examples()
    assert sorted(paths) == sorted(r.path for r in listed), "the store holds exactly the files the worker reported"
    by_path = {r.path: r for r in listed}
    for report in reports:
        ref = by_path[report["uploaded"]]
        assert ref.worker == "w-flow"
        manifest = check_examples(store.examples.read(ref.path))
        assert manifest["games"] == report["games"] == 8
        assert manifest["examples"] == report["examples"]
        assert manifest["model_step"] == report["model_step"] == 3 and report["model_lag"] == 0
        assert manifest["worker_id"] == "w-flow" and report["errors"] == 0
        assert manifest["settings"]["simulations"] == 8 and manifest["settings"]["worlds"] == 2
        parsed = store.read_examples(ref)
        assert parsed is not None and parsed.examples == report["examples"]
    assert Outbox(outbox).pending() == [], "uploaded batches leave the outbox"
    assert store.list_quarantine() == []


def test_example_file_roundtrips_through_the_store_and_validates(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    push_fresh_weights(store)
    worker = tiny_worker(url, tmp_path / "outbox")
    path, report = worker.generate()
    written = path.read_bytes()
    manifest = check_examples(written)
    assert path.name == manifest["sha256"][:32] + SUFFIX
    assert manifest["games"] == report.games == 8 and manifest["examples"] == report.examples

    report = worker.upload(report)
    assert not path.exists() and report.uploaded is not None
    [ref] = store.list_examples()
    assert ref.path == report.uploaded and ref.hash16 == manifest["sha256"][:16]
    assert store.examples.read(ref.path) == written, "the store holds the outbox bytes unchanged"
    parsed = store.read_examples(ref)
    assert parsed is not None and parsed.manifest == manifest
    direct = decode_examples(written)
    for key in ("obs", "legal", "policy", "value"):
        assert torch.equal(getattr(parsed, key), getattr(direct, key))
    # The same content again is stored once; a damaged copy is refused.
    assert store.upload_examples(written, manifest) == ref.path and len(store.list_examples()) == 1
    damaged = bytearray(written)
    damaged[-5] ^= 0xFF
    with pytest.raises(FormatError):
        decode_examples(bytes(damaged))


KILLED_WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from zeb_core.mcts.config import SearchConfig
    from zeb_core.store import FaultyBackend, RetryPolicy, Store, open_store
    from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings

    url, outbox = sys.argv[1], sys.argv[2]
    healthy = open_store(url)
    # The weights are reachable, the examples store is down (injected 500s and timeouts on every call).
    store = Store(healthy.weights, FaultyBackend(healthy.examples, 0.999999, seed=3), RetryPolicy.fast())
    settings = WorkerSettings(store=url, device="cpu", games_per_batch=8, seed=11, worker_id="doomed", outbox=outbox,
                              search=SearchConfig(simulations=8, worlds=2, max_nodes=32))
    worker = SelfPlayWorker(settings, store=store)
    path, report = worker.generate()
    print(json.dumps({"path": str(path), "games": report.games, "examples": report.examples}), flush=True)
    worker.upload(report)
    print("UPLOADED", flush=True)
    """
)


def test_worker_killed_before_upload_uploads_the_batch_when_restarted(tmp_path: Path) -> None:
    from flows.selfplay_worker import selfplay_worker

    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    push_fresh_weights(store)
    outbox = tmp_path / "outbox"
    script = tmp_path / "killed_worker.py"
    script.write_text(KILLED_WORKER)
    err_path = tmp_path / "killed.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), url, str(outbox)], stdout=subprocess.PIPE, stderr=err, cwd=REPO, text=True
        )
        try:
            line = proc.stdout.readline()
            assert line, f"the worker died before generating: {err_path.read_text()[-2000:]}"
            generated = json.loads(line)
            deadline = time.monotonic() + 60
            while "store unavailable" not in err_path.read_text():  # it is waiting out the outage, not dead
                assert proc.poll() is None, f"worker exited during the outage: {err_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "worker never reported waiting for the store"
                time.sleep(0.2)
            assert proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    left = Path(generated["path"])
    assert Outbox(outbox).pending() == [left], "the killed worker's batch is still in the outbox"
    hash16 = left.name[:16]

    # A new worker (another id, another process's flow) on the same outbox and a healthy store uploads it.
    reports = selfplay_worker(
        WorkerSettings.from_flat(dict(store=url, batches=1, worker_id="rescuer", outbox=str(outbox), seed=8, **TINY))
    )
    assert len(reports) == 1
    listed = store.list_examples()
    mine = [r for r in listed if r.hash16 == hash16]
    assert len(mine) == 1, f"the killed worker's games must be in the store exactly once, got {mine}"
    assert mine[0].worker == "doomed"
    ex = store.read_examples(mine[0])
    assert ex is not None and ex.manifest["games"] == generated["games"] and ex.examples == generated["examples"]
    assert sorted(r.path for r in listed) == sorted([mine[0].path, reports[0]["uploaded"]])
    assert Outbox(outbox).pending() == []


def test_store_outage_makes_the_worker_wait_and_retry(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"file://{tmp_path / 'store'}"
    healthy = open_store(url)
    push_fresh_weights(healthy)
    weights = FaultyBackend(healthy.weights, 0.0, kinds=("500", "timeout"))
    examples = FaultyBackend(healthy.examples, 0.0, kinds=("500", "timeout"))
    worker = tiny_worker(url, tmp_path / "outbox", store=Store(weights, examples, RetryPolicy.fast()))
    assert worker.refresh_weights() and worker.model_step == 0

    def outage(seconds: float) -> threading.Timer:
        weights.rate = examples.rate = 0.999999
        timer = threading.Timer(seconds, lambda: setattr(weights, "rate", 0.0) or setattr(examples, "rate", 0.0))
        timer.start()
        return timer

    caplog.set_level(logging.WARNING, logger="zeb.worker")
    # The store goes down after the batch is generated: the upload waits, then succeeds once it is back.
    path, report = worker.generate()
    timer = outage(2.0)
    start = time.monotonic()
    report = worker.upload(report)
    waited = time.monotonic() - start
    timer.join()
    assert waited >= 1.5 and report.uploaded is not None
    assert [r.path for r in healthy.list_examples()] == [report.uploaded] and not path.exists()
    waits = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert waits, "the worker logs that it is waiting for the store"

    # Down while a newer push arrives: the weights pull waits too, then loads the new weights.
    torch.manual_seed(5)
    healthy.push_weights(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 4}))
    caplog.clear()
    timer = outage(1.0)
    assert worker.refresh_weights() is True
    timer.join()
    assert worker.model_step == 4
    assert any("pull weights" in r.getMessage() for r in caplog.records)
    # And the next batch carries the new step all the way to the store.
    _, report = worker.generate()
    report = worker.upload(report)
    assert report.model_step == 4 and len(healthy.list_examples()) == 2
    assert weights.injected > 0 and examples.injected > 0


# ---------------------------------------------------------------- the outbox setting (issue 12, item 4)
@pytest.mark.long
def test_worker_flow_outbox_setting_survives_a_killed_worker(tmp_path: Path) -> None:
    """`zeb worker --outbox DIR` (the flow's `outbox` parameter) with the examples store down: the finished batch
    lands in DIR (not under $ZEB_OUTBOX_DIR, which the parameter overrides); the worker is killed; a restarted
    worker flow given the same folder uploads it."""
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    push_fresh_weights(store)
    outbox, decoy = tmp_path / "volume" / "outbox", tmp_path / "decoy"
    marker = uuid.uuid4().hex  # on the worker and on the Prefect server it starts for itself
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "ZEB_OUTBOX_DIR": str(decoy),
        "PYTHONUNBUFFERED": "1",
        MARKER_VAR: marker,
    }
    env.pop("PREFECT_API_URL", None)
    cmd = [
        str(Path(sys.executable).with_name("zeb")),
        "worker",
        "--store",
        url,
        "--examples-url",
        f"{url}?faults=0.999999",
        "--outbox",
        str(outbox),
        "--worker-id",
        "killed",
        "--device",
        "cpu",
        "--games-per-batch",
        "4",
        "--sims",
        "4",
        "--worlds",
        "1",
        "--max-nodes",
        "16",
        "--batches",
        "1",
        "--threads",
        "1",
    ]
    err_path = tmp_path / "worker.log"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not Outbox(outbox).pending():
                assert proc.poll() is None, f"the worker exited: {err_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no batch in the outbox: {err_path.read_text()[-2000:]}"
                time.sleep(0.2)
            time.sleep(2.0)  # it keeps trying the store, and keeps the batch
            assert proc.poll() is None, f"the worker died during the outage: {err_path.read_text()[-2000:]}"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the machine lost the worker: its process group, at once
            proc.wait(30)
    left_running = kill_marked(marker, wait_s=30)  # its Prefect server (its own session) follows it within 30 s
    assert not left_running, "the killed worker's Prefect server was left running"
    [left] = Outbox(outbox).pending()
    assert store.list_examples() == [], "nothing reached the store while it was down"
    assert not list(decoy.glob(f"**/*{SUFFIX}")), "the outbox parameter wins over ZEB_OUTBOX_DIR"

    reports = selfplay_worker_in_process(url, outbox, worker_id="restarted")
    mine = [r for r in store.list_examples() if r.hash16 == left.name[:16]]
    assert len(mine) == 1 and mine[0].worker == "killed", "the killed worker's batch is in the store, once"
    assert sorted(r.path for r in store.list_examples()) == sorted([mine[0].path, reports[0]["uploaded"]])
    assert Outbox(outbox).pending() == []


def test_worker_flow_default_outbox_is_under_zeb_outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the job templates rely on: with no `outbox` setting the batches go under $ZEB_OUTBOX_DIR (their
    persistent volume), and a later worker flow on the same volume uploads what an earlier worker left there."""
    url = f"file://{tmp_path / 'store'}"
    healthy = open_store(url)
    push_fresh_weights(healthy)
    volume = tmp_path / "volume"
    monkeypatch.setenv("ZEB_OUTBOX_DIR", str(volume))
    down = Store(healthy.weights, FaultyBackend(healthy.examples, 0.999999, seed=5), RetryPolicy.fast())
    settings = WorkerSettings(store=url, device="cpu", games_per_batch=8, seed=3, worker_id="first", search=SEARCH)
    first = SelfPlayWorker(settings, store=down)
    path, _ = first.generate()  # the store is down: the batch stays here (the pod would now be replaced)
    assert path.is_relative_to(volume) and first.outbox.pending() == [path]

    reports = selfplay_worker_in_process(url, None, worker_id="second")
    assert {r.worker for r in healthy.list_examples()} == {"first", "second"} and len(reports) == 1
    assert not path.exists() and first.outbox.pending() == []


def selfplay_worker_in_process(url: str, outbox: Path | None, worker_id: str) -> list[dict]:
    from flows.selfplay_worker import selfplay_worker

    return selfplay_worker(
        WorkerSettings.from_flat(
            dict(store=url, batches=1, worker_id=worker_id, outbox=str(outbox) if outbox else None, seed=8, **TINY)
        )
    )
