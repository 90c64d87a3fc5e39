"""The learner reads example files several at a time (`LearnerSettings.ingest_threads`): against a Hub whose every
download is slow, four threads take a quarter of the time one does; against a store that fails reads at random,
every file is still taken once, over as many cycles as it takes, and the games add up."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from hf_hub_server import HfHubServer

from tests.helpers import example_bytes
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.store import FaultyBackend, RetryPolicy, Store
from zeb_core.store.hf import HfBackend
from zeb_core.store.local import LocalBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread", "clean_hub")


def learner(tmp_path: Path, store: Store, threads: int) -> Learner:
    settings = LearnerSettings(
        store=f"file://{tmp_path}", size="small", min_buffer_size=10_000, device="cpu", promote=False,
        learner_id="ingest", ingest_threads=threads,
    )  # fmt: skip
    lrn = Learner(settings, store=store)
    lrn.start()
    return lrn


def fill(store: Store, files: int) -> int:
    """`files` example files of different workers and sizes in the store; returns their games."""
    games = 0
    for i in range(files):
        data, manifest = example_bytes(10 + i % 5, 7000 + i, worker=f"w{i % 3}", games=2 + i % 4)
        store.upload_examples(data, manifest)
        games += 2 + i % 4
    return games


def test_four_threads_read_a_slow_hub_four_times_as_fast(hub: HfHubServer, tmp_path: Path) -> None:
    files, delay = 24, 0.4  # one at a time: at least 24 x 0.4 = 9.6 s of downloads
    examples = HfBackend(f"tester/ingest-{uuid.uuid4().hex[:8]}", "dataset", endpoint=hub.endpoint, token=hub.token)
    store = Store(LocalBackend(tmp_path / "weights"), examples, RetryPolicy.fast())
    store.ensure()
    games = fill(store, files)
    lrn = learner(tmp_path, store, threads=4)
    hub.delay, hub.delay_match = delay, "/resolve/"  # every file's download answers late
    start = time.monotonic()
    stats = lrn.ingest()
    elapsed = time.monotonic() - start
    hub.delay = 0.0
    assert stats["files"] == files and lrn.total_games == games
    assert elapsed < 0.6 * files * delay, f"{elapsed:.1f} s: the downloads did not overlap"
    assert lrn.ingest()["files"] == 0
    lrn.close(push=False)


@pytest.mark.parametrize("threads", [1, 4])
def test_reads_that_fail_at_random_leave_their_files_for_a_later_cycle_and_none_is_taken_twice(
    tmp_path: Path, threads: int
) -> None:
    healthy = Store(LocalBackend(tmp_path / "weights"), LocalBackend(tmp_path / "examples"), RetryPolicy.fast())
    healthy.ensure()
    files = 40
    games = fill(healthy, files)
    flaky = FaultyBackend(healthy.examples, 0.3, seed=threads, kinds=("500",))
    store = Store(healthy.weights, flaky, RetryPolicy(attempts=1, initial_s=0.0, max_wait_s=0.0, deadline_s=1.0))
    lrn = learner(tmp_path, store, threads)
    taken, cycles = 0, 0
    while taken < files:
        cycles += 1
        assert cycles < 200, f"{taken} of {files} files after 200 cycles"
        taken += int(lrn.ingest()["files"])
        assert lrn.total_games <= games
    assert cycles > 1 and flaky.injected > 0, "the faults stopped some cycles early"
    assert (taken, lrn.total_games, lrn.files_quarantined) == (files, games, 0)
    flaky.rate = 0.0
    assert lrn.ingest()["files"] == 0, "nothing is left, and nothing is read again"
    lrn.close(push=False)
