"""Matches: fairness of the runner, the baselines' strength, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.evaluation.match import play_games, play_match
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
    spec = f"policy:path={small_checkpoint}"
    result = play_match(make_player(spec), make_player("random"), 200, seed=2, check=True)
    # The same 200 games again (the same players and deals, each deal twice with the teams swapped), scored here
    # from the engine's points: the win rate is the policy's share of the wins, a 21-21 tie counting half.
    deal = deal_benchmark(100, make_generator(2))
    state = GameState(**{k: torch.cat([v, v]) for k, v in deal.__dict__.items()})
    team = torch.cat([torch.zeros(100, dtype=torch.int64), torch.ones(100, dtype=torch.int64)])
    play_games(state, (make_player(spec), make_player("random")), team, check=True)
    mine = state.team_points.gather(1, team.view(-1, 1)).squeeze(1)
    wins = (mine > 21).double() + 0.5 * (mine == 21).double()
    assert result.games == 200 and result.win_rate == pytest.approx(float(wins.mean()))
    assert result.avg_margin == pytest.approx(float((2 * mine - 42).double().mean()))


class _AskedPositions:
    """A real player that also records how many legal dominoes each position it was asked about had."""

    def __init__(self, player) -> None:
        self.player, self.name, self.legal_counts = player, player.name, []

    def decide(self, state, legal, games):
        self.legal_counts.append(legal[games].sum(1))
        return self.player.decide(state, legal, games)


@pytest.mark.parametrize("spec", ["heuristic", "policy"])
def test_skipping_forced_moves_plays_the_same_games(spec: str, small_checkpoint: Path) -> None:
    # The greedy policy (what labels the full game's declarations) and the heuristic are deterministic: a forced
    # domino played without asking them must leave every game as it was, and they must never be asked about one.
    spec = f"policy:path={small_checkpoint}" if spec == "policy" else spec
    results = []
    for skip in (False, True):
        player = _AskedPositions(make_player(spec, seed=0))
        state = deal_benchmark(64, make_generator(5))
        play_games(state, (player, player), torch.zeros(64, dtype=torch.int64), check=True, skip_forced=skip)
        asked = torch.cat(player.legal_counts)
        results.append((state.team_points.clone(), asked))
    (points_all, asked_all), (points_skip, asked_skip) = results
    assert torch.equal(points_all, points_skip)
    assert bool((asked_skip > 1).all()) and bool((asked_all == 1).any())
    assert len(asked_skip) == int((asked_all > 1).sum()) and len(asked_all) == 64 * 28


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
    res = runner.invoke(app, ["eval", "heuristic", "vs", "random", "--games", "2000", "--seed", "3", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["games"] == 2000 and data["player_a"] == "heuristic"
    assert data["ci_low"] > 0.5 and data["avg_margin"] > 0, data  # the heuristic beats random, and it says so
    res = runner.invoke(app, ["eval", "heuristic", "random"])
    assert res.exit_code == 2 and "expected `A vs B`" in res.output
    res = runner.invoke(app, ["eval", "heuristic", "vs", "bogus"])
    assert res.exit_code == 2 and "unknown player" in res.output
