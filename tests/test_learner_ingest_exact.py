"""Issue 35, item 2: a store error in the middle of an ingest (here a real HTTP 403 from a local Hub, as an S3
IncompleteReadError or a 403 would be) must not make the learner count a file twice. The flow's `finally` pushes
what the learner holds when the error ends the run, and a restart resumes from that push, so the game and
example counts and the cursor must move together, file by file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hf_hub_server import HfHubServer

from tests.helpers import example_bytes
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.store import RetryPolicy, Store, StoreError
from zeb_core.store.hf import HfBackend
from zeb_core.store.local import LocalBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def hub_store(hub: HfHubServer, tmp_path: Path, repo: str) -> Store:
    """Weights in a local folder, examples in a dataset repo of the local Hub (where one read can be refused)."""
    examples = HfBackend(repo, repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    return Store(LocalBackend(tmp_path / "weights"), examples, RetryPolicy.fast())


def settings(tmp_path: Path) -> LearnerSettings:
    return LearnerSettings(
        store=f"file://{tmp_path / 'weights'}",
        size="small",
        min_buffer_size=50,
        replay_buffer_size=5_000,
        training_steps_per_cycle=2,
        batch_size=16,
        device="cpu",
        promote=False,
        learner_id="learner-A",
    )


def upload(store: Store, sizes: list[int], seed: int) -> list[tuple[int, int]]:
    """Upload one example file per size; returns (examples, games) per file (games differ from examples // 10,
    so a count that reads a file twice cannot come out right by accident)."""
    out = []
    for i, n in enumerate(sizes):
        data, manifest = example_bytes(n, seed + i, games=3 + 2 * i)
        store.upload_examples(data, manifest)
        out.append((manifest["examples"], manifest["games"]))
    return out


def test_a_store_error_mid_ingest_counts_every_game_once_after_a_restart(hub: HfHubServer, tmp_path: Path) -> None:
    repo = f"tester/ingest-{uuid.uuid4().hex[:8]}"
    store = hub_store(hub, tmp_path, repo)
    lrn = Learner(settings(tmp_path), store=store)
    lrn.start()  # bootstrap: step 0 pushed
    played = upload(store, [60, 70], seed=1)
    assert lrn.ingest()["files"] == 2 and lrn.train() is not None  # step 1, not pushed yet (push_every 25)

    played += upload(store, [40, 50, 30], seed=10)
    refs = store.list_examples()
    assert len(refs) == 5
    refused = refs[3].name  # the second of the three new files: one new file is read before the error
    with hub.failing(403, match=refused), pytest.raises(StoreError, match="HTTP 403"):
        lrn.ingest()
    lrn.close()  # what flows/learner.py's `finally` does when a task raises: push "final", release the lease

    state = store.peek_state()
    assert state is not None and state["step"] == 1
    read = set(state["cursor"]["seen"])
    assert refused not in read and refs[2].name in read  # the file before the error: read, counted, pushed
    counted = [played[i] for i, r in enumerate(refs) if r.name in read]
    assert (state["examples_ingested"], state["total_games"]) == (
        sum(e for e, _ in counted),
        sum(g for _, g in counted),
    ), "the pushed counts are those of the files the pushed cursor says were read"

    again = Learner(settings(tmp_path), store=hub_store(hub, tmp_path, repo))
    again.start()
    again.ingest()
    assert again.cursor.seen == {r.name for r in refs}
    assert (again.examples_ingested, again.total_games) == (
        sum(e for e, _ in played),
        sum(g for _, g in played),
    ), "games counted equal games played: none read twice, none lost"
    assert again.train() is not None
    again.close()
    final = store.peek_state()
    assert final is not None
    assert (final["examples_ingested"], final["total_games"]) == (sum(e for e, _ in played), sum(g for _, g in played))
