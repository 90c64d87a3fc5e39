"""Issue 35, item 3: a restart gives the learner back the replay buffer it had. The buffer is refilled on start
from the example files still listed, so no prune (the learner's own, the prune flow's, `zeb store prune`) may
remove the files it needs: the newest that hold --replay-buffer-size examples, named by the learner's last push
(`buffer_floor`). Real local stores, real learners."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import example_bytes
from zeb_core.formats.examples import example_filename
from zeb_core.learn.buffer import ReplayBuffer
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.state import LearnerState, prune_sparing_buffer
from zeb_core.store import Store, StoreError, open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

CAPACITY = 1_000
PER_FILE = 150


def settings(url: str, **kw: object) -> LearnerSettings:
    base: dict[str, object] = dict(
        store=url,
        size="small",
        min_buffer_size=100,
        replay_buffer_size=CAPACITY,
        keep_example_files=1,  # the count rule alone would leave one file: the buffer's need must win
        training_steps_per_cycle=1,
        batch_size=16,
        device="cpu",
        promote=False,
        learner_id="learner-A",
    )
    base.update(kw)
    return LearnerSettings(**base)  # type: ignore[arg-type]


def upload(store: Store, n: int, seed: int, clock_offset_s: float = 0.0) -> str:
    """One example file as a worker uploads it (`clock_offset_s`: how far that worker's clock is off)."""
    data, manifest = example_bytes(n, seed)
    if not clock_offset_s:
        path = store.upload_examples(data, manifest)
    else:
        path = example_filename("w1", manifest["sha256"], now=time.time() + clock_offset_s)
        store.examples.commit({path: data}, message="a slow clock")
    time.sleep(0.002)  # distinct millisecond stamps: the listing order is the upload order
    return path


def contents(buffer: ReplayBuffer) -> Counter[bytes]:
    """The examples a buffer holds, as a multiset (a restart refills in another ring position)."""
    n = len(buffer)
    rows = zip(buffer.obs[:n], buffer.legal[:n], buffer.policy[:n], buffer.value[:n], strict=True)
    return Counter(hashlib.sha256(b"".join(t.numpy().tobytes() for t in row)).digest() for row in rows)


def run_cycles(lrn: Learner, store: Store, files: int, seed: int) -> None:
    """Cycles as flows/learner.py runs them (ingest -> train -> push -> prune), two new files each."""
    for i in range(0, files, 2):
        for j in range(2):
            upload(store, PER_FILE, seed=seed + i + j)
        lrn.ingest()
        assert lrn.train() is not None
        assert lrn.push()
        lrn.prune()


def test_a_learner_restarted_with_a_full_buffer_trains_on_as_many_examples(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url))
    lrn.start()
    run_cycles(lrn, store, files=12, seed=0)  # 1,800 examples through a 1,000-example buffer
    held = contents(lrn.buffer)
    assert len(lrn.buffer) == CAPACITY and sum(held.values()) == CAPACITY
    lrn.close()
    listed = store.list_examples()
    needed = -(-CAPACITY // PER_FILE)  # 7 files of 150 hold the 1,000 newest examples
    assert len(listed) == needed, "the prune kept what the buffer needs, and removed the rest"
    assert store.peek_state()["buffer_floor"] == listed[0].name

    again = Learner(settings(url))
    again.start()
    assert len(again.buffer) == CAPACITY, "the restart refilled the buffer it had"
    assert contents(again.buffer) == held, "with the very examples it held"
    assert again.can_train() and again.train() is not None
    again.close()


def test_operator_prunes_keep_the_learners_buffer(tmp_path: Path) -> None:
    """`zeb store prune --keep 0` and the prune flow's rule (tasks/prune.py calls prune_sparing_buffer with the
    floor of the last push) remove the older files, never the ones the buffer refills from."""
    from zeb_cli.main import app

    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url, keep_example_files=100, replay_buffer_size=300))
    lrn.start()
    run_cycles(lrn, store, files=6, seed=0)  # nothing pruned by the learner: it keeps 100 files
    lrn.close()
    paths = [r.path for r in store.list_examples()]
    assert len(paths) == 6
    floor = LearnerState.from_json(store.peek_state()).buffer_floor
    assert floor == paths[-2].rsplit("/", 1)[-1], "two files of 150 refill a 300-example buffer"

    result = CliRunner().invoke(app, ["store", "prune", url, "--keep", "0"])
    assert result.exit_code == 0, result.output
    assert "removed 4 example files" in result.output and "replay buffer" in result.output
    assert [r.path for r in store.list_examples()] == paths[-2:]

    # An age limit cannot reach them either (the prune flow's max_age_hours), and a slow worker's file, stamped
    # before them and not read yet, is kept back as before.
    slow = upload(store, 30, seed=50, clock_offset_s=-3600)
    report = prune_sparing_buffer(store, "model", keep=0, max_age_s=0.0, floor=floor)
    assert report.removed == [] and report.kept_unread == 1
    with pytest.raises(StoreError, match="keep must be >= 0"):
        prune_sparing_buffer(store, "model", keep=-1, max_age_s=None, floor=floor)
    assert [r.path for r in store.list_examples()] == [slow, *paths[-2:]]

    again = Learner(settings(url, keep_example_files=100, replay_buffer_size=300))
    again.start()
    assert len(again.buffer) == 300
    again.close(push=False)
