"""bench/fleet_sim.py at a tiny setting: four simulated workers (real SelfPlayWorkers, their outboxes and commit
pacers) and the real Learner's ingest against the local Hub server with its commit-rate limit on, a simulated hour
in two real seconds. Its accounting must hold: every game produced reaches the store once and the learner counts
it once, and the workers' commits stay within their budget without a 429."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fleet_sim import SimConfig, run_sim

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.mark.parametrize("shards", [1, 2])
def test_a_tiny_fleet_on_the_hub_delivers_every_game_once_within_the_commit_limit(shards: int) -> None:
    """Also with the examples over two repos (`?shards=2`): the limit and the budget are each repo's."""
    cfg = SimConfig(
        shards=shards,
        backend="hub",
        workers=4,
        factor=1800.0,  # a simulated hour in 2 s
        sim_hours=1.0,
        files_per_hour=8.0,  # 32 files in all: a commit per file would be twice the Hub's limit
        games_per_file=64,
        examples_per_file=4,
        hub_limit=16,  # the Hub refuses a 17th commit in a simulated hour
        commits_per_hour=8.0,  # the workers' budget: each commits every half hour once it has seen the others
        learner_cycle_s=300.0,
        learner_process=False,
        drain=True,  # the run ends with every outbox committed (a finite run's last batch)
    )
    out = run_sim(cfg)

    assert out["files_produced"] == 32
    assert out["waiting_games"] == 0, "the drain left nothing in the outboxes"
    assert out["files_uploaded"] == out["files_listed"] == out["files_ingested"] == out["files_taken"] == 32
    assert out["accepted_games_h"] == out["produced_games_h"] == 32 * 64, "each game counted once, none lost"
    assert out["errors"] == []
    assert out["goals"]["every uploaded game ingested exactly once"]
    assert out["commits"] == out["worker_commits"], "the Hub's commit log and the workers' agree"
    assert out["commits"] < out["files_uploaded"] / 2, "several batches to a commit"
    assert out["commits_max_h"] <= cfg.hub_limit
    assert out["refused_429"] == 0, "the workers' pacing kept them under the Hub's limit"
    assert len(out["commits_per_repo"]) == shards and all(out["commits_per_repo"]), "every repo took commits"
