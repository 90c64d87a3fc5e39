"""Matches: fairness of the runner, the baselines' strength, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.match import play_match
from zeb_core.players import SpecError, make_player

runner = CliRunner()


def test_random_vs_random_is_even_over_4000_games() -> None:
    result = play_match(make_player("random", seed=1), make_player("random", seed=2), 4000, seed=7)
    assert result.games == 4000
    assert abs(result.win_rate - 0.5) <= 0.03
    assert result.ci_low < 0.5 < result.ci_high


def test_heuristic_beats_random_over_4000_games() -> None:
    result = play_match(make_player("heuristic"), make_player("random", seed=3), 4000, seed=8)
    assert result.ci_low > 0.5, result.summary()
    assert result.avg_margin > 0


def test_identical_players_tie_exactly_on_mirrored_deals() -> None:
    # Deterministic identical players see the same deal from both sides: every pair sums to one win.
    result = play_match(make_player("heuristic"), make_player("heuristic"), 1000, seed=1)
    assert result.win_rate == pytest.approx(0.5)
    assert result.avg_margin == pytest.approx(0.0)


def test_policy_player_plays_legal_moves_and_reports_a_distribution(small_checkpoint: Path) -> None:
    player = make_player(f"policy:path={small_checkpoint},temp=1.0", seed=0)
    state = deal_benchmark(32, make_generator(0))
    while not bool(state.done().all()):
        legal = state.legal_mask()
        decision = player.decide(state, legal, torch.arange(32))
        assert bool(legal.gather(1, decision.moves.view(-1, 1)).all())
        assert torch.allclose(decision.policy.sum(1), torch.ones(32), atol=1e-5)
        assert bool((decision.policy[~legal] == 0).all())
        assert bool((decision.value.abs() <= 1).all())
        state.apply(decision.moves)
    result = play_match(make_player(f"policy:path={small_checkpoint}"), make_player("random"), 200, seed=2, check=True)
    assert result.games == 200 and 0.0 <= result.win_rate <= 1.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "unknown player"),
        ("policy", "needs path"),
        ("policy:path=/does/not/exist", "no checkpoint"),
        ("random:seed=abc", "not a valid int"),
        ("heuristic:depth=3", "does not take depth"),
        ("policy:path", "not key=value"),
    ],
)
def test_bad_player_specs_get_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make_player(spec)


def test_eval_command_json_and_errors() -> None:
    res = runner.invoke(app, ["eval", "heuristic", "vs", "random", "--games", "200", "--seed", "3", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["games"] == 200 and data["player_a"] == "heuristic"
    assert data["ci_low"] <= data["win_rate"] <= data["ci_high"]
    res = runner.invoke(app, ["eval", "heuristic", "random"])
    assert res.exit_code == 2 and "expected `A vs B`" in res.output
    res = runner.invoke(app, ["eval", "heuristic", "vs", "bogus"])
    assert res.exit_code == 2 and "unknown player" in res.output
