"""Issue 37, items 1 and 2: a commit budget the Hub accepts. Workers put their waiting batches in few commits, at
most one per worker per interval (a fleet-wide budget shared among the workers seen uploading), and a 429 from
the Hub lengthens the interval (at least its Retry-After). Against the local Hub server (tests/hf_hub_server.py)
with its commit rate limit on: nothing lost, nothing stored or ingested twice.

Batches are synthetic example files put straight into the workers' outboxes: the upload path under test is the
worker's own (`SelfPlayWorker.upload`), without the cost of playing games."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest
from hf_hub_server import HfHubServer

from tests.helpers import example_bytes
from zeb_core.formats.examples import example_filename
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.selfplay.outbox import BUDGET_SHARE, CommitPacer
from zeb_core.selfplay.worker import BatchReport, SelfPlayWorker, WorkerSettings
from zeb_core.store import RetryPolicy, Store
from zeb_core.store.backend import RateLimited
from zeb_core.store.hf import HfBackend
from zeb_core.store.local import LocalBackend
from zeb_core.store.retry import call_with_retry

pytestmark = pytest.mark.usefixtures("one_torch_thread", "clean_hub")  # conftest.py: no limit left over


def hub_store(hub: HfHubServer, tmp_path: Path, repo: str) -> Store:
    """Weights in a local folder, examples in a dataset repo of the local Hub (where the commit limit bites)."""
    examples = HfBackend(repo, repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    store = Store(LocalBackend(tmp_path / "weights"), examples, RetryPolicy.fast())
    store.ensure()
    return store


def worker(store: Store, tmp_path: Path, worker_id: str, per_hour: float, batches: int = 0) -> SelfPlayWorker:
    settings = WorkerSettings(
        store="hf://tester/unused",
        device="cpu",
        worker_id=worker_id,
        outbox=str(tmp_path / f"outbox-{worker_id}"),
        commits_per_hour=per_hour,
        batches=batches,
    )
    return SelfPlayWorker(settings, store=store)


def play(w: SelfPlayWorker, batch: int, seed: int) -> tuple[BatchReport, int]:
    """A finished batch in the worker's outbox, as `generate` leaves it; returns its report and its games."""
    games = 3 + seed % 5  # not examples // 10: a count that reads a file twice cannot come out right by accident
    data, manifest = example_bytes(20 + seed % 7, seed, worker=w.settings.worker_id, games=games)
    w.outbox.put(data, manifest["sha256"])
    report = BatchReport(batch, games, manifest["examples"], 0.1, 1.0, 0.5, 0, 0)
    return report, games


def examples_commits(hub: HfHubServer, repo: str) -> int:
    """Commits to the examples repo past its creation."""
    return len(hub.commits(repo, "dataset")) - 1


def learner(tmp_path: Path) -> LearnerSettings:
    return LearnerSettings(
        store=f"file://{tmp_path / 'weights'}",
        size="small",
        min_buffer_size=10_000,
        replay_buffer_size=20_000,
        device="cpu",
        promote=False,
        learner_id="budget",
    )


def test_a_fleet_on_a_commit_budget_delivers_every_batch_in_few_commits_each_game_ingested_once(
    hub: HfHubServer, tmp_path: Path
) -> None:
    """Two workers sharing 5,400 commits an hour (1.5 a second) against a Hub that takes 2 a second per repo
    (4 in any 2 s): 20 batches go up in far fewer commits, within the budget, and the learner counts each game
    once."""
    repo = f"tester/budget-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    lrn = Learner(learner(tmp_path), store=store)
    lrn.start()
    hub.limit_commits(4, window_s=2.0)
    per_hour, rounds = 5400.0, 10
    fleet = [worker(store, tmp_path, wid, per_hour, batches=rounds) for wid in ("wa", "wb")]
    played = 0
    start = time.monotonic()
    for batch in range(1, rounds + 1):
        for i, w in enumerate(fleet):
            report, games = play(w, batch, seed=100 * i + batch)
            played += games
            report = w.upload(report)  # the last batch waits for its slot: the run ends delivered
            assert report.waiting == 0 or batch < rounds
        time.sleep(0.1)  # a batch every 0.1 s per worker
    elapsed = time.monotonic() - start

    commits = examples_commits(hub, repo)
    assert all(w.outbox.pending() == [] for w in fleet), "every batch left its outbox"
    assert len(store.list_examples()) == 2 * rounds, "every batch is in the store, once"
    assert commits <= rounds, f"20 batches in {commits} commits: several to a commit"
    # Within the budget, but for each worker's first two commits (made before it saw the other upload).
    assert commits <= per_hour * elapsed / 3600 + 2 * len(fleet)
    assert all(w.pacer.workers == 2 for w in fleet), "each saw the other uploading"
    assert all(w.pacer.interval == pytest.approx(2 * 3600 / (BUDGET_SHARE * per_hour)) for w in fleet)

    stats = lrn.ingest()
    assert stats["files"] == 2 * rounds
    assert lrn.total_games == played, "games counted equal games played: none read twice, none lost"
    assert lrn.ingest()["files"] == 0
    lrn.close(push=False)


def test_a_429_from_the_hub_lengthens_the_interval_and_its_retry_after_is_kept(
    hub: HfHubServer, tmp_path: Path
) -> None:
    """A Hub that takes 1 commit per 2 s refuses the second (HTTP 429, Retry-After 2): the worker plays on with
    its batches in the outbox, tries no commit before the Retry-After is over, waits longer than its interval,
    and delivers everything once the Hub takes commits again."""
    repo = f"tester/refused-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    hub.limit_commits(1, window_s=2.0)
    w = worker(store, tmp_path, "w429", per_hour=45_000.0)  # alone, at 80% of it: a commit every 0.1 s
    play(w, 1, seed=1)
    assert len(w.flush_outbox()) == 1 and examples_commits(hub, repo) == 1  # its first slot: within 0.1 s
    interval = w.pacer.interval
    assert interval == pytest.approx(0.1)

    time.sleep(0.15)  # its next slot is due; the Hub's window is not over
    tries = hub.count_calls()["commit"]
    before = time.monotonic()
    report = w.upload(play(w, 2, seed=2)[0])
    assert time.monotonic() - before < 1.0, "a refused commit does not hold the worker up"
    assert hub.count_calls()["commit"] == tries + 1 and hub.commits_refused[repo] == 1, "the Hub said 429"
    assert report.uploaded is None and report.waiting == 1 and examples_commits(hub, repo) == 1
    wait = w.pacer.wait_s()
    assert wait >= 1.5, f"the Retry-After (2 s, the Hub's window) is kept, not the 0.1 s interval: {wait:.2f}s"
    assert w.pacer.slowdown > 1, "the interval itself is lengthened"

    report = w.upload(play(w, 3, seed=3)[0])
    assert hub.count_calls()["commit"] == tries + 1, "no commit tried before the Retry-After is over"
    assert report.uploaded is None and report.waiting == 2

    stored = w.flush_outbox()  # as the flow's last batch: waits for its slot, then one commit of both
    refused_at = before
    assert time.monotonic() - refused_at >= 1.5
    assert len(stored) == 2 and w.outbox.pending() == []
    assert examples_commits(hub, repo) == 2 and hub.commits_refused[repo] == 1
    assert len(store.list_examples()) == 3
    assert w.pacer.interval * w.pacer.slowdown > interval, "still slower than before the 429"


def test_a_batch_committed_but_not_deleted_is_not_uploaded_again(hub: HfHubServer, tmp_path: Path) -> None:
    """A worker killed between the commit and the outbox's deletion: the next flush finds the file's content in
    the store (its hash is in the name), makes no commit and clears the outbox; the learner reads it once."""
    repo = f"tester/resumed-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    w = worker(store, tmp_path, "wk", per_hour=3600.0)
    play(w, 1, seed=7)
    play(w, 2, seed=8)
    hashes = sorted(p.name[:16] for p in w.outbox.pending())
    loaded = w.outbox.load(w.outbox.pending()[0])
    assert loaded is not None
    store.upload_example_files([(*loaded, "model")])  # the commit went through; the kill came before done()
    assert examples_commits(hub, repo) == 1 and len(w.outbox.pending()) == 2

    again = worker(store, tmp_path, "wk", per_hour=3600.0)  # restarted on the same outbox
    stored = again.flush_outbox()
    assert len(stored) == 2 and again.outbox.pending() == []
    assert examples_commits(hub, repo) == 2, "one commit, holding only the file the store did not have"
    assert sorted(r.hash16 for r in store.list_examples()) == hashes, "each batch in the store once"


def test_the_interval_shares_the_budget_among_the_workers_seen_this_hour(hub: HfHubServer, tmp_path: Path) -> None:
    """Three other workers uploaded in the last hour, a fourth two hours ago: with this one, four share the
    budget."""
    repo = f"tester/shared-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    now = time.time()
    earlier = {}
    for i, (wid, age) in enumerate((("o1", 60), ("o2", 600), ("o3", 3000), ("gone", 7200))):
        data, manifest = example_bytes(10, 50 + i, worker=wid)
        earlier[example_filename(wid, manifest["sha256"], now=now - age)] = data
    store.examples.commit(earlier, message="earlier uploads")
    w = worker(store, tmp_path, "me", per_hour=360.0)
    play(w, 1, seed=9)
    first = w.flush_outbox(due_only=True)  # its first commit: after a random share of the interval
    interval = 4 * 3600 / (BUDGET_SHARE * 360)  # 50 s: the fleet aims at 80% of its budget
    assert w.pacer.workers == 4 and w.pacer.interval == pytest.approx(interval)
    assert (first == []) == (w.pacer.wait_s() > 0) and w.pacer.wait_s() <= interval
    w.pacer.next_at = w.pacer.clock()  # that share over (the clock moved on)
    assert w.flush_outbox(due_only=True), "due: the commit goes"
    assert w.pacer.workers == 4 and 0.85 * interval <= w.pacer.wait_s() <= 1.1 * interval
    play(w, 2, seed=10)
    assert w.flush_outbox(due_only=True) == [], "not due: the batch waits for its slot"
    assert len(w.outbox.pending()) == 1


def test_a_fleet_restarted_together_spreads_its_first_commits_and_its_retries_over_the_interval() -> None:
    """64 workers that see 64 uploading (a fleet redeployed at once): their first commits fall across the whole
    interval, not in its first seconds; refused together by a 429 with a Retry-After, they come back spread
    over the lengthened interval, not together at the Retry-After."""
    per_hour, n = 100.0, 64
    interval = n * 3600 / (BUDGET_SHARE * per_hour)
    clock = [0.0]
    pacers = [CommitPacer(per_hour, clock=lambda: clock[0], rng=random.Random(i)) for i in range(n)]
    firsts = sorted(p.start(n) for p in pacers)
    assert all(0 <= w <= interval for w in firsts)
    in_tenths = {int(10 * w / interval) for w in firsts}
    assert len(in_tenths) >= 9, f"first commits in only {len(in_tenths)} tenths of the interval"
    retries = sorted(p.refused(retry_after=30.0) for p in pacers)
    assert retries[0] >= 30.0, "the Retry-After is a floor"
    assert retries[-1] - retries[0] >= interval, f"refused together, back within {retries[-1] - retries[0]:.0f}s"
    assert retries[-1] <= 30.0 + 2 * interval * 1.1


@pytest.mark.parametrize("kind", ["local", "hf"])
def test_many_example_files_go_up_in_one_commit_on_every_backend(kind: str, hub: HfHubServer, tmp_path: Path) -> None:
    repo = f"tester/many-{uuid.uuid4().hex[:8]}"
    if kind == "local":
        store = Store(LocalBackend(tmp_path / "w"), LocalBackend(tmp_path / "e"), RetryPolicy.fast())
    else:
        store = hub_store(hub, tmp_path, repo)
    files = [(*example_bytes(10, 70 + i, worker="m"), name) for i, name in enumerate(["model", "model", "x"])]
    up = store.upload_example_files(files)
    assert up.committed == 3 and len(set(up.paths)) == 3 and up.listed == {"model": [], "x": []}
    assert [r.path for r in store.list_examples()] == sorted(up.paths[:2], key=lambda p: p.rsplit("_", 1)[-1])
    assert [r.path for r in store.list_examples("x")] == [up.paths[2]] and up.paths[2].startswith("x/")
    if kind == "hf":
        assert examples_commits(hub, repo) == 1
    again = store.upload_example_files(files)
    assert again.committed == 0 and again.paths == up.paths, "the same content again: nothing stored twice"
    if kind == "hf":
        assert examples_commits(hub, repo) == 1


def test_the_hub_server_limits_commits_in_a_sliding_window(hub: HfHubServer) -> None:
    b = HfBackend(f"tester/limit-{uuid.uuid4().hex[:8]}", endpoint=hub.endpoint, token=hub.token)
    b.create()
    hub.limit_commits(2, window_s=30.0)
    b.commit({"a": b"1"})
    b.commit({"a": b"2"})
    with pytest.raises(RateLimited, match="HTTP 429") as info:
        b.commit({"a": b"3"})
    assert info.value.retry_after is not None and 28 <= info.value.retry_after <= 30
    assert b.read("a") == b"2" and hub.commits_refused[b.repo_id] == 1
    hub.limit_commits(None)
    b.commit({"a": b"3"})
    assert b.read("a") == b"3"


def test_a_new_fleet_that_says_its_size_shares_the_budget_from_its_first_commit(
    hub: HfHubServer, tmp_path: Path
) -> None:
    """No worker has uploaded yet (a fresh repo): one told `fleet_size=64` paces its first commit as one of 64,
    not as one alone."""
    repo = f"tester/fleet-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    per_hour = 3600.0
    settings = WorkerSettings(
        store="hf://tester/unused", device="cpu", worker_id="f1", outbox=str(tmp_path / "outbox-f1"),
        commits_per_hour=per_hour, fleet_size=64,
    )  # fmt: skip
    w = SelfPlayWorker(settings, store=store)
    play(w, 1, seed=11)
    w.flush_outbox(due_only=True)
    assert w.pacer.workers == 64 and w.pacer.interval == pytest.approx(64.0 / BUDGET_SHARE)
    w.pacer.next_at = w.pacer.clock()  # its first slot came
    assert w.flush_outbox(due_only=True)
    assert w.pacer.workers == 64, "after its commit, still one of 64, though it alone has uploaded yet"
    alone = worker(store, tmp_path, "f2", per_hour)
    play(alone, 1, seed=12)
    alone.flush_outbox(due_only=True)
    assert alone.pacer.workers == 2 and alone.pacer.interval == pytest.approx(2.0 / BUDGET_SHARE), (
        "unsaid: as many as seen"
    )


def test_a_store_call_refused_with_a_retry_after_waits_that_long_before_trying_again(hub: HfHubServer) -> None:
    """The store's own retries (the learner's pushes, prunes and quarantines) keep a 429's Retry-After: one
    refusal, then a wait of about the Hub's window, then success; not eight quick tries that all meet the 429."""
    b = HfBackend(f"tester/wait-{uuid.uuid4().hex[:8]}", endpoint=hub.endpoint, token=hub.token)
    b.create()
    hub.limit_commits(1, window_s=1.5)
    b.commit({"a": b"1"})
    start = time.monotonic()
    call_with_retry(RetryPolicy.fast(), "commit", b.commit, {"a": b"2"})  # its own backoff: 0.01 s .. 0.05 s
    assert time.monotonic() - start >= 1.0, "the retry came before the Retry-After"
    assert hub.commits_refused[b.repo_id] == 1 and b.read("a") == b"2"
