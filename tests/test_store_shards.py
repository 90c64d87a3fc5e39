"""Examples sharded over several Hub repos (`hf://OWNER/REPO?shards=K`, zeb_core/store/shards.py): each worker's
files go to the repo its id hashes to, each repo has its own commit limit, and the learner reads them all as one
store, every game once. Against the local Hub server (tests/hf_hub_server.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from hf_hub_server import HfHubServer

from tests.helpers import example_bytes
from zeb_core.formats.examples import example_filename, parse_example_filename
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
from zeb_core.store import RetryPolicy, Store, StoreError, open_backend, open_store
from zeb_core.store.backend import RateLimited
from zeb_core.store.cards import CARD_PATH, HubCards
from zeb_core.store.cursor import hour_folder
from zeb_core.store.hf import HfBackend
from zeb_core.store.local import LocalBackend
from zeb_core.store.shards import ShardedBackend, shard_of_worker
from zeb_core.store.store import HOUR_MARKER, QUARANTINE

pytestmark = pytest.mark.usefixtures("one_torch_thread", "clean_hub")


@pytest.fixture
def hub_env(hub: HfHubServer, monkeypatch: pytest.MonkeyPatch) -> HfHubServer:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    return hub


def sharded_store(tmp_path: Path, shards: int) -> tuple[Store, str]:
    """Weights in a folder, examples in `shards` dataset repos of the local Hub, opened from the URL."""
    base = f"tester/shard-{uuid.uuid4().hex[:8]}"
    examples = open_backend(f"hf://{base}?shards={shards}", "examples")
    store = Store(LocalBackend(tmp_path / "weights"), examples, RetryPolicy.fast())
    store.ensure()
    return store, base


def one_worker_per_shard(shards: int) -> list[str]:
    """A worker id for each shard, found by the hash (not written down: the test holds for any stable hash)."""
    ids: dict[int, str] = {}
    for i in range(1000):
        ids.setdefault(shard_of_worker(f"w{i}", shards), f"w{i}")
        if len(ids) == shards:
            return [ids[s] for s in range(shards)]
    raise AssertionError("the hash never reached every shard")


def names_in(hub: HfHubServer, repo: str) -> list[str]:
    return sorted(hub.files(repo, "dataset"))


def test_each_worker_writes_to_its_repo_and_the_learner_reads_every_game_once(
    hub_env: HfHubServer, tmp_path: Path
) -> None:
    hub = hub_env
    store, base = sharded_store(tmp_path, 3)
    assert isinstance(store.examples, ShardedBackend) and store.examples.shards == 3
    repos = [f"{base}-examples", f"{base}-examples-1", f"{base}-examples-2"]
    assert [p.repo_id for p in store.examples.parts] == repos  # type: ignore[attr-defined]
    before = {r: len(hub.commits(r, "dataset")) for r in repos}

    workers = one_worker_per_shard(3)
    games = 0
    for round_ in range(2):
        for i, wid in enumerate(workers):
            files = []
            for j in range(2):
                data, manifest = example_bytes(12, 1000 * round_ + 10 * i + j, worker=wid, games=3 + i + j)
                files.append((data, manifest, "model"))
                games += 3 + i + j
            up = store.upload_example_files(files)
            assert up.committed == 2
    for shard, repo in enumerate(repos):
        names = names_in(hub, repo)
        examples = [n for n in names if parse_example_filename(n)]
        assert len(examples) == 4, f"{repo}: {names}"
        assert {parse_example_filename(n)[0] for n in examples} == {workers[shard]}  # type: ignore[index]
        assert len(hub.commits(repo, "dataset")) - before[repo] == 2, "one commit a round, to its own repo"
    assert len(store.list_examples()) == 12
    everywhere = [n for r in repos for n in names_in(hub, r)]
    folders = {n.rsplit("/", 1)[0] for n in everywhere if parse_example_filename(n)}
    assert all(f"{f}/{HOUR_MARKER}" in everywhere for f in folders), "each hour folder is marked, in one repo or more"

    lrn = Learner(
        LearnerSettings(store=f"file://{tmp_path}", size="small", min_buffer_size=10_000, device="cpu",
                        promote=False, learner_id="shards"),
        store=store,
    )  # fmt: skip
    lrn.start()
    assert lrn.ingest()["files"] == 12
    assert lrn.total_games == games, "every game counted once"
    assert lrn.ingest()["files"] == 0

    report = store.prune_examples(keep=0, spare_unread=False)
    assert len(report.removed) == 12
    assert store.list_examples() == []
    assert all(not any(parse_example_filename(n) for n in names_in(hub, r)) for r in repos)
    lrn.close(push=False)


def test_a_bad_file_is_quarantined_in_its_own_repo(hub_env: HfHubServer, tmp_path: Path) -> None:
    hub = hub_env
    store, base = sharded_store(tmp_path, 2)
    wid = one_worker_per_shard(2)[1]
    _, manifest = example_bytes(5, 3, worker=wid)
    path = f"{hour_folder(time.time())}/{example_filename(wid, manifest['sha256'])}"
    store.examples.commit({path: b"not an example file"}, message="a broken upload")
    assert path in names_in(hub, f"{base}-examples-1") and path not in names_in(hub, f"{base}-examples")

    [ref] = store.list_examples()
    assert store.read_examples(ref) is None
    names = names_in(hub, f"{base}-examples-1")
    assert path not in names and QUARANTINE + path in names and QUARANTINE + path + ".reason.json" in names
    assert not any(n.startswith(QUARANTINE) for n in names_in(hub, f"{base}-examples"))
    assert [f.path for f in store.list_quarantine()] == [QUARANTINE + path]


def test_each_repo_has_its_own_commit_limit(hub_env: HfHubServer, tmp_path: Path) -> None:
    """The Hub limits commits per repo: with one commit allowed per window, workers of three shards each commit,
    and a second commit to the same shard is refused."""
    hub = hub_env
    store, _ = sharded_store(tmp_path, 3)
    hub.limit_commits(1, window_s=60.0)
    workers = one_worker_per_shard(3)
    for i, wid in enumerate(workers):
        data, manifest = example_bytes(8, 200 + i, worker=wid)
        store.upload_example_files([(data, manifest, "model")], retry_rate_limited=False)
    data, manifest = example_bytes(8, 300, worker=workers[0])
    with pytest.raises(RateLimited):
        store.upload_example_files([(data, manifest, "model")], retry_rate_limited=False)
    hub.limit_commits(None)
    assert len(store.list_examples()) == 3


def test_a_worker_shares_the_budget_with_the_workers_of_its_repo_only(hub_env: HfHubServer, tmp_path: Path) -> None:
    store, _ = sharded_store(tmp_path, 4)
    me = one_worker_per_shard(4)[2]
    others = [f"o{i}" for i in range(40)]
    mates = [w for w in others if shard_of_worker(w, 4) == shard_of_worker(me, 4)]
    assert 0 < len(mates) < len(others)
    store.upload_example_files([(*example_bytes(6, 400 + i, worker=w), "model") for i, w in enumerate(others)])

    def paced(fleet_size: int) -> int:
        settings = WorkerSettings(
            store="hf://tester/unused", device="cpu", worker_id=me, outbox=str(tmp_path / f"outbox-{fleet_size}"),
            commits_per_hour=3600.0, fleet_size=fleet_size,
        )  # fmt: skip
        w = SelfPlayWorker(settings, store=store)
        data, manifest = example_bytes(6, 500 + fleet_size, worker=me)
        w.outbox.put(data, manifest["sha256"])
        w.flush_outbox(due_only=True)
        return w.pacer.workers

    assert paced(1) == len(mates) + 1, "its repo's uploaders and itself, not the other repos'"
    assert paced(400) == 100, "fleet_size is spread over the repos: 400 workers, 4 repos"


def test_the_dataset_card_goes_to_every_repo(hub_env: HfHubServer, tmp_path: Path) -> None:
    hub = hub_env
    store, base = sharded_store(tmp_path, 2)
    cards = HubCards(store)
    assert cards.examples_repo == f"{base}-examples"
    assert cards.write_dataset_card()
    for repo in (f"{base}-examples", f"{base}-examples-1"):
        assert CARD_PATH in names_in(hub, repo)


def test_shards_in_the_url_are_checked(hub_env: HfHubServer, tmp_path: Path) -> None:
    for bad in ("0", "65", "two"):
        with pytest.raises(StoreError, match="shards"):
            open_store(f"hf://tester/x?shards={bad}")
    with pytest.raises(StoreError, match="shards is for hf://"):
        open_store(f"file://{tmp_path}?shards=2")
    one = open_store("hf://tester/x?shards=1").examples
    assert isinstance(one, HfBackend) and one.repo_id == "tester/x-examples", "one shard: the usual repo"
