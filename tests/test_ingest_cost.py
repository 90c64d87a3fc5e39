"""Issue 37 item 3: a learner cycle with many example files read costs the same as with few, on every backend
(a local folder, S3: moto's server on 127.0.0.1, the Hub: tests/hf_hub_server.py), and bounding it skips no
file: one uploaded late by a slow clock, an outbox flushed late, a flat file of a worker not upgraded are each
read exactly once, and a state written before hour folders loads and reads both layouts.

Listings page at 10 entries here (the servers' and the backends' page size), so a few dozen files stand for the
thousands of bench/ingest_cost.py, whose figures deployments/README.md quotes."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import example_bytes
from zeb_core.formats.examples import example_filename
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.store import ExampleCursor, RetryPolicy, Store, StoreUnavailable
from zeb_core.store.cursor import SETTLE_S, hour_folder
from zeb_core.store.local import LocalBackend
from zeb_core.store.store import HOUR_MARKER

BACKENDS = ("local", "s3", "hf")
PAGE = 10
HOUR = 3600.0
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def hf_hub(hub: Any) -> Any:
    """conftest's Hub server, paging its tree listings by PAGE entries (so a listing's calls show at small sizes)."""
    hub.tree_page_size = PAGE
    return hub


def counted_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, Callable[[], int]]:
    """Weights in a local folder, examples on `kind`, and a count of what listing the examples costs: HTTP
    requests (at the Hub server; S3: each request botocore sends), or directory entries read (a local folder)."""
    weights = LocalBackend(tmp_path / "weights")
    if kind == "local":
        entries = [0]
        real = os.scandir

        class Scandir:
            """os.scandir, counting the entries it yields (os.walk scans through it too)."""

            def __init__(self, path: str = ".") -> None:
                self.it = real(path)

            def __enter__(self) -> Scandir:
                return self

            def __exit__(self, *exc: object) -> None:
                self.it.close()

            def __iter__(self) -> Scandir:
                return self

            def __next__(self) -> os.DirEntry[str]:
                entry = next(self.it)
                entries[0] += 1
                return entry

            def close(self) -> None:
                self.it.close()

        request.getfixturevalue("monkeypatch").setattr(os, "scandir", Scandir)
        return Store(weights, LocalBackend(tmp_path / "examples"), RetryPolicy.fast()), lambda: entries[0]
    if kind == "s3":
        from s3_server import s3_env

        from zeb_core.store.s3 import S3Backend

        mp = request.getfixturevalue("monkeypatch")
        for key, value in s3_env(request.getfixturevalue("s3_endpoint")).items():
            mp.setenv(key, value)
        s3 = S3Backend("zeb-test", f"{uuid.uuid4().hex[:8]}/examples")
        s3.listing_page = PAGE
        sent = [0]

        def count(**_: object) -> None:
            sent[0] += 1

        s3.client.meta.events.register("before-send.s3", count)
        return Store(weights, s3, RetryPolicy.fast()), lambda: sent[0]
    from zeb_core.store.hf import HfBackend

    hub = request.getfixturevalue("hf_hub")
    hf = HfBackend(f"tester/e{uuid.uuid4().hex[:8]}", repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    hf.listing_page = PAGE
    return Store(weights, hf, RetryPolicy.fast()), lambda: sum(hub.count_calls().values())


def files(count: int, seed: int, worker: str = "w1") -> list[tuple[bytes, dict, str]]:
    return [(*example_bytes(1, seed + i, worker, games=1), "model") for i in range(count)]


def settled(store: Store, cursor: ExampleCursor) -> float:
    """A cursor that has read every file listed, as the learner's is an hour after it read them: returns that
    time."""
    new, _ = store.new_examples(cursor)
    cursor.advance(r.name for r in new)
    later = time.time() + SETTLE_S + 1
    store.new_examples(cursor, now=later)
    return later


def test_a_folder_closes_once_read_and_a_newer_one_has_been_listed_for_the_settling_time() -> None:
    a, b, c = "20261122_10", "20261122_11", "20261122_12"
    names = [example_filename("w", f"{i:064x}", now=1_800_000_000 + i) for i in range(4)]
    keys = [f"{a}/{names[0]}", f"{b}/{names[1]}", f"{c}/{names[2]}"]
    cursor = ExampleCursor()
    cursor.observe(keys, [a, b, c], now=0.0)
    cursor.advance(names[1:3])
    cursor.observe(keys, [a, b, c], now=SETTLE_S + 1)
    assert cursor.closed is None, "the oldest folder holds an unread file: neither it nor any newer one closes"
    cursor.advance(names[:1])
    cursor.observe(keys, [a, b, c], now=SETTLE_S - 1)
    assert cursor.closed is None, "no newer folder has been listed for the settling time yet"
    cursor.observe(keys, [a, b, c], now=SETTLE_S)
    assert cursor.closed == b and cursor.opened == {c: 0.0} and cursor.seen == {names[2]}
    assert not cursor.is_new(names[0], a) and not cursor.is_new(names[2], c) and cursor.is_new(names[3], c)
    assert cursor.is_new(names[0]), "a flat file of that name was never read"
    assert ExampleCursor.from_json(cursor.to_json()) == cursor


@pytest.mark.parametrize("kind", BACKENDS)
def test_an_idle_cycle_costs_the_same_however_many_read_files_the_store_keeps(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    t = time.time()
    costs = []
    for per_hour in (2, 12):  # 3 past hours of uploads, then 3 files this hour
        store, count = counted_store(kind, request, tmp_path / f"{per_hour}")
        store.ensure()
        for hours_ago in (3, 2, 1):
            store.upload_example_files(files(per_hour, 100 * hours_ago), now=t - hours_ago * HOUR)
        store.upload_example_files(files(3, 1000), now=t)
        cursor = ExampleCursor()
        later = settled(store, cursor)
        assert cursor.closed == hour_folder(t - HOUR) and set(cursor.opened) == {hour_folder(t)}
        before = count()
        assert store.new_examples(cursor, now=later + 1) == ([], [])
        idle = count() - before
        before = count()
        assert len(store.list_examples()) == 3 * per_hour + 3
        costs.append((idle, count() - before, len(cursor.to_json()["seen"])))
    (small_idle, small_all, small_seen), (big_idle, big_all, big_seen) = costs
    assert big_all > small_all, "listing every file costs more with more files (so the count can tell)"
    assert big_idle == small_idle and big_seen == small_seen == 3, "an idle cycle does not"
    if kind != "local":
        assert big_idle == 2, "the folder's own level, then the open hour folder"


@pytest.mark.parametrize("kind", BACKENDS)
def test_files_arriving_late_are_read_exactly_once(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A slow clock, an outbox flushed hours late (many files in one commit), a worker of the flat layout: all
    after the learner closed the older hour folders, each read once, before and after a restart."""
    store, _ = counted_store(kind, request, tmp_path)
    settings = LearnerSettings(
        store=f"file://{tmp_path / 'weights'}",
        size="small",
        min_buffer_size=1,
        replay_buffer_size=100,
        device="cpu",
        promote=False,
        learner_id="late",
    )
    t = time.time()
    lrn = Learner(settings, store=store, echo=lambda _: None)
    lrn.start()
    for hours_ago in (3, 2, 1):
        store.upload_example_files(files(2, 10 * hours_ago), now=t - hours_ago * HOUR)
    assert lrn.ingest()["files"] == 6
    store.new_examples(lrn.cursor, now=time.time() + SETTLE_S + 1)  # the learner an hour on
    assert lrn.cursor.closed == hour_folder(t - 2 * HOUR)

    slow = store.upload_example_files(files(1, 50, "slow"), now=t - 3 * HOUR)  # its own hour is closed
    assert slow.paths[0].startswith(f"{hour_folder(t - HOUR)}/"), "it goes to the newest folder, not its own hour"
    flushed = files(3, 60, "flushed")
    for _, manifest, _ in flushed:
        manifest["created"] = t - 5 * HOUR  # made five hours ago, uploaded now in one commit
    late = store.upload_example_files(flushed)
    assert store.upload_example_files(flushed).committed == 0, "uploaded again: found, not stored twice"
    data, manifest = example_bytes(1, 70, "flat-w", games=1)
    old_name = example_filename("flat-w", manifest["sha256"], now=t - 5 * HOUR)
    store.examples.commit({old_name: data}, message="a worker of the flat layout, with a slow clock")

    games, examples = lrn.total_games, lrn.examples_ingested
    assert lrn.ingest() == {"files": 5, "examples": 5}
    assert (lrn.total_games - games, lrn.examples_ingested - examples) == (5, 5)
    assert lrn.ingest()["files"] == 0
    assert lrn.push()
    lrn.close()
    again = Learner(settings, store=store, echo=lambda _: None)
    again.start()
    assert again.ingest()["files"] == 0 and again.total_games == games + 5 and again.cursor == lrn.cursor
    read = {r.name for r in store.list_examples()} - {r.name for r in store.unread_examples()}
    assert {p.rsplit("/", 1)[-1] for p in [*slow.paths, *late.paths]} <= read
    again.close(push=False)


def test_a_state_from_before_hour_folders_loads_and_reads_both_layouts(tmp_path: Path) -> None:
    """The state a learner of the flat layout pushed (version 2: a set of names, no hour folders) resumes: the
    flat files it read are not read again, its unread flat file and the new hour folder's files are read once."""
    store = Store(LocalBackend(tmp_path / "weights"), LocalBackend(tmp_path / "examples"), RetryPolicy.fast())
    flat = {
        example_filename("old-w", m["sha256"], now=time.time() - 600 + i): d for i, (d, m, _) in enumerate(files(3, 0))
    }
    store.examples.commit(flat, message="the flat layout")
    settings = LearnerSettings(
        store=f"file://{tmp_path / 'weights'}", size="small", min_buffer_size=1, device="cpu", promote=False
    )
    first = Learner(settings, store=store, echo=lambda _: None)
    first.start()
    first.close()
    bundle = store.pull_weights()
    assert bundle is not None
    read = sorted(flat)[:2]
    bundle.state = {**bundle.state, "total_games": 2, "cursor": {"version": 2, "seen": read}}
    store.push_weights(bundle, message="as a learner of the flat layout pushed it")
    now = time.time()
    new = store.upload_example_files(files(2, 10), now=now)
    assert all(p.startswith(f"{hour_folder(now)}/") for p in new.paths)
    assert sorted(r.name for r in store.unread_examples()) == sorted(
        [sorted(flat)[2], *(p.rsplit("/", 1)[-1] for p in new.paths)]
    ), "the prune rule reads the old state too"
    lrn = Learner(settings, store=store, echo=lambda _: None)
    lrn.start()
    assert lrn.cursor.closed is None and lrn.cursor.opened == {}
    assert lrn.ingest() == {"files": 3, "examples": 3} and lrn.total_games == 5
    assert lrn.ingest()["files"] == 0
    saved = lrn.state().to_json()["cursor"]
    assert saved["version"] == 2 and set(saved["opened"]) == {hour_folder(now)}
    lrn.close(push=False)


@pytest.mark.parametrize("kind", BACKENDS)
def test_prune_keeps_the_newest_hour_folder_so_a_slow_clock_still_writes_above_closed_ones(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store, _ = counted_store(kind, request, tmp_path)
    store.ensure()
    t = time.time()
    for hours_ago in (2, 1):
        store.upload_example_files(files(2, 10 * hours_ago), now=t - hours_ago * HOUR)
    cursor = ExampleCursor()
    settled(store, cursor)
    assert cursor.closed == hour_folder(t - 2 * HOUR)
    report = store.prune_examples(keep=0, spare_unread=False)
    assert len(report.removed) == 4 and store.list_examples() == []
    markers = [f.path for f in store.examples.list() if f.path.endswith(HOUR_MARKER)]
    assert markers == [f"{hour_folder(t - HOUR)}/{HOUR_MARKER}"], "the older folder's marker went with its files"
    slow = store.upload_example_files(files(1, 90, "slow"), now=t - 2 * HOUR)
    assert slow.paths[0].startswith(f"{hour_folder(t - HOUR)}/")
    assert [r.path for r in store.new_examples(cursor)[0]] == slow.paths


def test_an_upload_does_not_commit_on_a_listing_older_than_half_the_settling_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else a folder closed meanwhile could get a file no listing will show the learner."""
    import zeb_core.store.store as store_module

    store = Store(LocalBackend(tmp_path / "weights"), LocalBackend(tmp_path / "examples"), RetryPolicy.fast())
    monkeypatch.setattr(store_module, "SETTLE_S", -1.0)  # any listing is too old
    with pytest.raises(StoreUnavailable, match=r"listing is .* old"):
        store.upload_example_files(files(1, 0))
    assert store.list_examples() == []
