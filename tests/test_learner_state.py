"""The learner's state file (zeb_core.learn.state): what a push writes reads back unchanged, and a state written by
an older version (keys missing, unknown keys, the old watermark cursor) loads with defaults and resumes a learner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zeb_core.formats.examples import encode_examples
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.state import LearnerState
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.store import Store, open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def settings(url: str, promote: bool = False) -> LearnerSettings:
    return LearnerSettings(
        store=url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=2,
        batch_size=32,
        replay_buffer_size=5_000,
        eval_games=20,
        device="cpu",
        promote=promote,
        learner_id="learner-A",
    )


def upload(store: Store, n: int, seed: int) -> None:
    """A valid example file of `n` synthetic examples (their content does not matter to the learner's books)."""
    g = torch.Generator().manual_seed(seed)
    legal = torch.rand(n, 7, generator=g) < 0.6
    legal[:, 0] = True
    policy = torch.rand(n, 7, generator=g) * legal
    obs = torch.randint(0, 4, (n, 36, 8), generator=g).to(torch.int8)
    value = torch.rand(n, generator=g) * 2 - 1
    store.upload_examples(
        *encode_examples(
            obs, legal, policy / policy.sum(1, keepdim=True), value, model_step=0, worker_id="w1", games=n // 10
        )
    )


def test_a_state_written_by_push_round_trips(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(settings(url, promote=True))
    lrn.start()
    for i in range(2):
        upload(store, 80, seed=i)
    lrn.ingest()
    assert lrn.train() is not None
    lrn.last_eval = {
        "eval/vs_random_win_rate": 0.61,
        "eval/vs_random_ci_low": 0.55,
        "eval/vs_random_ci_high": 0.67,
        "step": lrn.step,
    }
    assert lrn.push("round trip")
    written = store.peek_state()
    state = LearnerState.from_json(written)
    assert state.to_json() == written, "every key comes back, the store's own (checksums, format) included"
    assert (state.step, state.total_games, state.examples_ingested) == (1, 16, 160)
    assert state.optimizer_step == lrn.trainer.step and state.learner_id == "learner-A"
    assert state.cursor == lrn.cursor and len(state.cursor.seen) == 2
    assert state.last_eval == lrn.last_eval and set(state.last_metrics) == {"train/policy_loss", "train/value_loss"}
    assert "weights_sha256" in state.extra and state.promotion is None

    assert lrn.maybe_promote().decision == "first"
    best = LearnerState.from_json(store.peek_state("model", "best"))
    assert best.promotion["decision"] == "first" and best.step == 1 and best.last_eval == lrn.last_eval
    assert best.to_json()["promotion"] == best.promotion
    lrn.close(push=False)


OLD_STATE = {  # as an early version pushed it: no drop counters, value target or losses; the watermark cursor
    "format_version": 1,
    "step": 7,
    "total_games": 70,
    "examples_ingested": 700,
    "optimizer_step": 7,
    "time": 1_700_000_000.0,
    "learner_id": None,
    "cursor": {"watermark": 1_700_000_000.0, "recent": [], "slack_s": 3600.0},
    "last_eval": None,
    "note": "a key this version does not know",
}


def test_an_old_style_state_loads_with_defaults() -> None:
    state = LearnerState.from_json(OLD_STATE)
    assert (state.step, state.total_games, state.examples_ingested, state.optimizer_step) == (7, 70, 700, 7)
    assert (state.examples_dropped_stale, state.examples_dropped_other_target, state.files_quarantined) == (0, 0, 0)
    assert state.value_target == "points" and state.learner_id is None and state.time == 1_700_000_000.0
    assert state.last_eval == {} and state.last_metrics == {} and state.promotion is None
    assert state.cursor.legacy_floor == 1_700_000_000.0 - 3600.0, "the watermark cursor migrates"
    assert state.extra == {"format_version": 1, "note": "a key this version does not know"}
    again = state.to_json()
    assert again["note"] == OLD_STATE["note"] and again["cursor"]["version"] == 2
    assert LearnerState.from_json(again) == state
    assert LearnerState.from_json(None).step == 0 and LearnerState.from_json(None).cursor.seen == set()
    assert LearnerState.from_json({"step": "x", "last_eval": [1], "value_target": 3}).step == 0


def test_a_learner_resumes_from_an_old_style_state(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    store.ensure()
    torch.manual_seed(0)
    old = {k: v for k, v in OLD_STATE.items() if k != "format_version"}  # the store writes its own
    store.push_weights(bundle_from_model(ZebNet(ModelConfig.preset("small")), old, None))
    lrn = Learner(settings(url))
    lrn.start()
    assert (lrn.step, lrn.total_games, lrn.examples_ingested, lrn.trainer.step) == (7, 70, 700, 7)
    assert lrn.dropped_stale == 0 and lrn.last_eval == {}
    lrn.close(push=False)
