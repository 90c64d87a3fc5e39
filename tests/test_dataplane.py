"""The data plane between workers and the learner (issue 12): pruning never deletes an unread file, whoever
prunes; no clock decides what is new; the lease outlives long cycles and a lost one stops the learner cleanly;
stale examples are dropped by default where the docs say so. Real local stores, real learners."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers import example_bytes
from zeb_core.formats.examples import example_filename
from zeb_core.learn.learner import KEEP_PUSHES, Learner, LearnerSettings
from zeb_core.store import ExampleCursor, LeaseHeld, Store, open_store
from zeb_core.store.store import Lease

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def upload(store: Store, n: int, seed: int, worker: str = "w1", clock_offset_s: float = 0.0) -> str:
    """An example file as a worker uploads it; `clock_offset_s` is how far that worker's clock is off."""
    data, manifest = example_bytes(n, seed, worker)
    if not clock_offset_s:
        return store.upload_examples(data, manifest)
    name = example_filename(worker, manifest["sha256"], now=time.time() + clock_offset_s)
    store.examples.commit({name: data}, message=f"{worker}, clock {clock_offset_s:+.0f}s")
    return name


def settings(url: str, **kw) -> LearnerSettings:
    base = dict(
        store=url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=2,
        batch_size=32,
        replay_buffer_size=20_000,
        eval_games=100,
        device="cpu",
        promote=False,
        learner_id="learner-A",
    )
    base.update(kw)
    return LearnerSettings(**base)


def take_over(store: Store, holder: str = "usurper") -> None:
    """Another learner takes the namespace (as after a partition outlasting our TTL), by compare-and-swap."""
    for _ in range(50):  # our renewal thread may swap the file between the read and the write: read again
        _, token = store.weights.read_versioned("model-lease.json")
        record = {"holder": holder, "acquired": time.time(), "expires": time.time() + 600}
        if store.weights.write_if("model-lease.json", json.dumps(record).encode(), token):
            return
    raise AssertionError("could not take the lease over")


# ------------------------------------------------------------------ item 1: pruning spares unread files
def test_the_learners_prune_keeps_files_that_arrived_after_its_ingest(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    messages: list[str] = []
    # A buffer the newest file refills (120 examples): the two read before it are the prune's (issue 35).
    lrn = Learner(settings(url, keep_example_files=1, replay_buffer_size=100), echo=messages.append)
    lrn.start()
    read = [upload(store, n, seed=i) for i, n in enumerate((80, 80, 120))]
    assert lrn.ingest()["files"] == 3 and lrn.train() is not None and lrn.push()
    # Arrive during a long evaluation and promotion, from a worker whose clock is an hour slow: stamped before
    # every file read, they are what the rules would remove.
    late = [upload(store, 30, seed=10 + i, worker="slow-w", clock_offset_s=-3600) for i in range(3)]
    removed = lrn.prune()
    assert removed == 2, "only the two files the last push ingested (and the buffer does not need) may go"
    assert [r.path for r in store.list_examples()] == [*late, read[2]]
    assert lrn.stats()["stats/prune_kept_unread"] == 3 and any("kept back 3" in m for m in messages)
    assert lrn.ingest()["files"] == 3 and lrn.examples_ingested == 2 * 80 + 120 + 3 * 30, "nothing lost unread"
    lrn.close()


def test_zeb_store_prune_keeps_unread_files_and_says_so(tmp_path: Path) -> None:
    from zeb_cli.main import app

    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    paths = [upload(store, 20, seed=i) for i in range(3)]
    result = CliRunner().invoke(app, ["store", "prune", url, "--keep", "0"])
    assert result.exit_code == 0, result.output
    assert "removed 0 example files" in result.output and "kept back 3" in result.output
    assert [r.path for r in store.list_examples()] == paths


# ------------------------------------------------------------------ item 3: no clock decides what is new
def test_one_fast_clock_does_not_stop_ingest_and_the_worker_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url))
    lrn.start()
    with caplog.at_level(logging.WARNING, logger="zeb.store"):
        upload(store, 50, seed=1, worker="fast-w", clock_offset_s=2 * 3600)
        assert lrn.ingest()["files"] == 1
        for i in range(3):
            upload(store, 40, seed=2 + i, worker=f"honest-{i}")
        upload(store, 30, seed=9, worker="slow-w", clock_offset_s=-2 * 3600)
        out = lrn.ingest()
        assert (out["files"], out["examples"]) == (4, 150), "every honest (and slow) file is read"
    named = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert any("'fast-w'" in m and "ahead" in m for m in named)
    assert any("'slow-w'" in m and "behind" in m for m in named)
    assert not any("honest" in m for m in named)
    assert lrn.push()
    lrn.close()
    again = Learner(settings(url))
    again.start()
    assert again.examples_ingested == 200 and again.ingest()["files"] == 0, "the cursor survives a restart"
    again.close(push=False)


def test_a_state_with_the_old_watermark_cursor_still_loads(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    first = Learner(settings(url))
    first.start()
    first.close()
    old = upload(store, 20, seed=1, clock_offset_s=-3 * 3600)  # read long ago: below the old window
    recent = upload(store, 20, seed=2, clock_offset_s=-60)  # read: in the old cursor's names
    unread = upload(store, 20, seed=3).rsplit("/", 1)[-1]  # in the window, not among its names: unread
    bundle = store.pull_weights()
    now = time.time()
    bundle.state = {
        **bundle.state,
        "examples_ingested": 40,
        "cursor": {"watermark": now - 30, "recent": [recent], "slack_s": 3600.0},
    }
    store.push_weights(bundle, message="written by the version-1 cursor")
    assert [r.name for r in store.unread_examples()] == [unread]  # the prune rule reads the old format too
    lrn = Learner(settings(url))
    lrn.start()
    out = lrn.ingest()
    assert (out["files"], out["examples"], lrn.examples_ingested) == (1, 20, 60)
    assert lrn.push()
    cursor = store.peek_state()["cursor"]
    assert cursor["version"] == 2 and set(cursor["seen"]) == {old, recent, unread} and "legacy_floor" not in cursor
    lrn.close()


def test_the_cursor_forgets_names_the_store_no_longer_lists() -> None:
    names = [example_filename("w", f"{i:064x}", now=1_800_000_000 + i) for i in range(4)]
    cursor = ExampleCursor()
    cursor.advance(names)
    cursor.advance([], listed=names[2:])  # the first two were pruned
    assert cursor.seen == set(names[2:]) and not cursor.is_new(names[3]) and cursor.is_new("not-an-example") is False
    assert ExampleCursor.from_json(cursor.to_json()) == cursor


# ------------------------------------------------------------------ item 5: the lease
def test_the_lease_is_renewed_on_a_timer_while_the_learner_lives(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    before = set(threading.enumerate())  # only this learner's thread: an earlier test's is not ours to judge
    lrn = Learner(settings(url, lease_ttl_s=3.0))
    lrn.start()
    assert [t for t in threading.enumerate() if t.name.startswith("lease-") and t not in before], "renewed by a thread"
    time.sleep(6.5)  # a long evaluation, over twice the TTL: no push, no renewal by hand
    with pytest.raises(LeaseHeld, match="held by learner 'learner-A'"):
        store.acquire_lease(holder="intruder-B", ttl_s=60)
    lrn.close()
    assert Lease.peek(store, "model") is None
    left = [t for t in threading.enumerate() if t.name.startswith("lease-") and t not in before]
    assert not left, "the renewal thread stopped"


def test_a_lost_lease_stops_the_learner_without_writing(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    messages: list[str] = []
    lrn = Learner(settings(url, lease_ttl_s=0.9), echo=messages.append)
    lrn.start()
    upload(store, 150, seed=1)
    lrn.ingest()
    lrn.train()
    take_over(store)
    deadline = time.monotonic() + 10
    while lrn.lease.lost is None:
        assert time.monotonic() < deadline, "the renewal thread never noticed"
        time.sleep(0.05)
    for method in (lrn.train, lrn.ingest, lrn.push, lrn.maybe_promote):
        with pytest.raises(LeaseHeld, match=r"held by learner 'usurper'.*stops without writing"):
            method()
    lrn.close()  # no final push, and the usurper's lease stays
    assert store.latest_step() == 0 and store.peek_state("model", "best") is None
    assert Lease.peek(store, "model")["holder"] == "usurper"
    assert any(m.startswith("Not pushing step 1") for m in messages)


def test_the_lease_is_renewed_before_writing_the_best_model(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url, promote=True))  # a 600 s TTL: the timer would not notice in time
    lrn.start()
    upload(store, 150, seed=1)
    lrn.ingest()
    lrn.train()
    take_over(store)  # during the promotion match
    with pytest.raises(LeaseHeld, match="usurper"):
        lrn.maybe_promote()
    assert store.peek_state("model", "best") is None
    lrn.close()


# ------------------------------------------------------------------ item 8: defaults the docs state
def test_stale_examples_are_dropped_by_default_on_the_fleet_and_in_zeb_train() -> None:
    from zeb_cli.train_cmd import default_max_model_lag

    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    from zeb_core.learn.learner import LearnerSettings

    learner = LearnerSettings(**deployments["learner"]["parameters"]["settings"])  # the fleet's overrides
    monitor = deployments["monitor"]["parameters"]
    lag = learner.max_model_lag
    assert isinstance(lag, int) and lag >= 4 * learner.push_every and lag > monitor["max_model_lag"]
    # zeb train's defaults: 1 worker, 32 games a batch, replay ratio 8, 10 x 256 samples a cycle, 100k buffer.
    small = default_max_model_lag(1, 32, 8.0, 2560, 100_000)
    assert small >= 2 * (2 + 100_000 * 8 / 2560 + 2) and small < 1000
    assert default_max_model_lag(64, 32, 8.0, 2560, 100_000) > small
    docs = "".join((REPO / "docs" / page).read_text() for page in ("training.md", "stores.md"))
    assert f"{lag} on the fleet" in docs and f"newest {KEEP_PUSHES} pushes" in docs
    assert "A push is one atomic commit" not in docs and "every push stays" not in docs
