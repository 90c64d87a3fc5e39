"""The `rollout` player: its spec, legal moves, no hidden information, and move values checked two independent ways
(the solver's own move values when the solver finishes every hand; the policy player's games when it finishes none)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.helpers import play_out_checking_legality, random_plays
from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import GameState
from zeb_core.mcts.worlds import info_from_state, sample_worlds
from zeb_core.model.checkpoint import init_checkpoint, load_model
from zeb_core.players.base import SpecError, make_player
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.players.rollout import RolloutPlayer
from zeb_core.solver import Positions, move_values, warm_up


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("rollout") / "w"
    init_checkpoint("small", path, seed=4)
    return str(path)


def test_spec_builds_and_rejects_bad_settings(weights: str) -> None:
    p = make_player(f"rollout:path={weights},worlds=3,solve_plays=8,seed=2")
    assert isinstance(p, RolloutPlayer)
    assert (p.worlds, p.solve_plays, p.objective) == (3, 8, "win")  # a points-trained model plays for 22
    assert make_player(f"rollout:path={weights},objective=contract").objective == "contract"
    for bad in ("worlds=0", "solve_plays=29", "solve_plays=-1", "objective=bid", "sims=3", "worlds=x"):
        with pytest.raises(SpecError):
            make_player(f"rollout:path={weights},{bad}")
    with pytest.raises(SpecError, match="path"):
        make_player("rollout:worlds=4")


def test_full_game_rollout_plays_for_the_contract(weights: str) -> None:
    from zeb_core.fullgame.bidders import full_game_play_spec

    assert full_game_play_spec(f"rollout:path={weights}") == f"rollout:path={weights},objective=contract"
    assert full_game_play_spec(f"rollout:path={weights},objective=win").endswith("objective=win")


def test_plays_only_legal_moves_and_skips_forced_ones(weights: str) -> None:
    gen = make_generator(3)
    state = deal_benchmark(5, gen)
    player = make_player(f"rollout:path={weights},worlds=2,seed=1")
    searched = play_out_checking_legality(state, player)
    assert player.decisions == searched < 5 * 28


def test_decision_uses_no_hidden_information(weights: str) -> None:
    """The same decision when the others' unplayed dominoes are dealt differently, consistently with the plays."""
    gen = make_generator(8)
    rng = random.Random(1)
    checked = 0
    for plays in (0, 5, 10, 15, 21):
        state = deal_benchmark(3, gen)
        random_plays(state, plays, gen)
        for g in range(state.batch_size):
            real = state.index(torch.tensor([g]))
            other = info_from_state(state, g).to_state(rng)
            hidden = ~real.played[0] & (real.owner[0] != real.current[0])
            if not bool((other.owner[0] != real.owner[0])[hidden].any()):
                continue
            moves = []
            for s in (real, other):
                player = make_player(f"rollout:path={weights},worlds=3,seed=9")
                moves.append(int(player.decide(s, s.legal_mask(), torch.tensor([0])).moves[0]))
            assert moves[0] == moves[1], (plays, g)
            checked += 1
    assert checked >= 8


def test_values_with_the_solver_finishing_every_hand_are_pimcs(weights: str) -> None:
    """solve_plays=28: each (world, move) is solved at once, so the value is the mean over the same worlds of the
    solver's own move values (the result, and the points / 1000)."""
    model, _ = load_model(weights, "cpu")
    gen = make_generator(13)
    for plays in (0, 6, 14):
        state = deal_benchmark(4, gen)
        random_plays(state, plays, gen)
        legal = state.legal_mask().numpy()
        games = torch.arange(4)
        player = RolloutPlayer(model, torch.device("cpu"), worlds=5, solve_plays=28, seed=3)
        got, mean = player._move_values(state, games, legal)
        worlds = Positions.from_state(sample_worlds(state, games, 5, random.Random(3)))
        win = move_values(worlds, "win").reshape(4, 5, 28)
        pts = move_values(worlds, "points").reshape(4, 5, 28)
        expected = (win + pts / 1000.0).mean(1)
        assert np.array_equal(np.isnan(got), ~legal)
        assert np.allclose(got[legal], expected[legal]), plays
        assert np.allclose(mean[legal], win.mean(1)[legal]), plays  # the reported value: the result alone


def _position(seed: int, games: int, plays: int) -> tuple[GameState, torch.Tensor, torch.Tensor]:
    """A benchmark deal of `games` games after `plays` random plays, its legal mask and its game indices."""
    gen = make_generator(seed)
    state = deal_benchmark(games, gen)
    random_plays(state, plays, gen)
    return state, state.legal_mask(), torch.arange(games)


def test_decision_reports_the_chosen_moves_mean_result(weights: str) -> None:
    """The decision's value is the played move's mean result over the worlds (what serve shows), not rounded; a
    forced move reports 0 (nothing was searched). Checked against the solver's own values with solve_plays=28."""
    model, _ = load_model(weights, "cpu")
    state, legal, games = _position(29, 6, 5)
    decision = RolloutPlayer(model, torch.device("cpu"), worlds=6, solve_plays=28, seed=9).decide(state, legal, games)
    searched = (legal.sum(1) > 1).nonzero().flatten()  # worlds are dealt for these games only
    assert 0 < len(searched) < 6
    worlds = Positions.from_state(sample_worlds(state, searched, 6, random.Random(9)))
    win = dict(zip(searched.tolist(), move_values(worlds, "win").reshape(-1, 6, 28).mean(1), strict=True))
    for g in range(6):
        move = int(decision.moves[g])
        assert bool(legal[g, move])
        want = win[g][move] if g in win else 0.0
        assert float(decision.value[g]) == pytest.approx(want, abs=1e-6), g


def test_values_with_no_solver_are_the_policys_games(weights: str) -> None:
    """solve_plays=0: each (world, move) is played to the end by the greedy policy, seat by seat from its own view,
    exactly as a match of the policy player from that world would go."""
    model, _ = load_model(weights, "cpu")
    state, legal, games = _position(17, 3, 9)
    w = 2
    got, _ = RolloutPlayer(model, torch.device("cpu"), worlds=w, solve_plays=0, seed=5)._move_values(
        state, games, legal.numpy()
    )
    worlds = sample_worlds(state, games, w, random.Random(5))
    policy = PolicyPlayer(model, torch.device("cpu"))
    for g in range(3):
        for m in legal[g].nonzero().flatten().tolist():
            finals = []
            for k in range(w):
                s = worlds.index(torch.tensor([g * w + k]))
                team = int(s.current[0]) % 2
                s.apply(torch.tensor([m]), check=True)
                while not bool(s.done().all()):
                    s.apply(policy.decide(s, s.legal_mask(), torch.tensor([0])).moves, check=True)
                mine = int(s.team_points[0, team])
                finals.append((1.0 if mine > 21 else 0.0 if mine == 21 else -1.0) + mine / 1000.0)
            assert got[g, m] == pytest.approx(np.mean(finals)), (g, m)


def test_contract_objective_scores_the_bid(weights: str) -> None:
    """With objective=contract a (world, move) scores +1 when the mover's side reaches its contract target."""
    from zeb_core.solver import contract_targets

    model, _ = load_model(weights, "cpu")
    gen = make_generator(21)
    state = deal_benchmark(4, gen)
    state.bid = torch.tensor([30, 34, 38, 42], dtype=torch.int64)
    random_plays(state, 7, gen)
    legal = state.legal_mask().numpy()
    games = torch.arange(4)
    player = RolloutPlayer(model, torch.device("cpu"), worlds=3, solve_plays=28, objective="contract", seed=6)
    got, _ = player._move_values(state, games, legal)
    sampled = sample_worlds(state, games, 3, random.Random(6))
    pts = move_values(Positions.from_state(sampled), "points").reshape(4, 3, 28)
    need = contract_targets(sampled).reshape(4, 3, 1)
    expected = (np.where(pts >= need, 1.0, -1.0) + pts / 1000.0).mean(1)
    assert np.allclose(got[legal], expected[legal])


def test_mix_blends_in_the_solvers_value_of_each_world(weights: str) -> None:
    """mix=1: each world scores +1 / -1 as the solver says the mover's team can still reach 22 after the move
    (pimc's view, ties counted as losses); the rollouts' final points stay the tiebreak."""
    model, _ = load_model(weights, "cpu")
    gen = make_generator(23)
    state = deal_benchmark(4, gen)
    random_plays(state, 10, gen)
    legal = state.legal_mask().numpy()
    games = torch.arange(4)
    player = RolloutPlayer(model, torch.device("cpu"), worlds=4, solve_plays=28, seed=8, mix=1.0)
    got, _ = player._move_values(state, games, legal)
    worlds = Positions.from_state(sample_worlds(state, games, 4, random.Random(8)))
    win = move_values(worlds, "win").reshape(4, 4, 28)
    pts = move_values(worlds, "points").reshape(4, 4, 28)
    expected = (np.where(win > 0, 1.0, -1.0) + pts / 1000.0).mean(1)
    assert np.allclose(got[legal], expected[legal])
    with pytest.raises(SpecError):
        make_player(f"rollout:path={weights},mix=1.5")


def test_inferred_worlds_use_no_hidden_information_and_follow_the_partners_plays(weights: str) -> None:
    """infer=partner: the same decision when the hidden dominoes are dealt differently (the worlds come from public
    plays and the mover's hand only); the kept worlds agree with what the mover knows and are likelier under the
    network's model of the partner's plays than uniform draws are; every move legal."""
    from zeb_core.players.inference import play_log_likelihood

    gen = make_generator(21)
    rng = random.Random(4)
    checked = 0
    for plays in (6, 13, 18):
        state = deal_benchmark(3, gen)
        random_plays(state, plays, gen)
        for g in range(3):
            real = state.index(torch.tensor([g]))
            other = info_from_state(state, g).to_state(rng)
            moves = []
            for s in (real, other):
                player = make_player(f"rollout:path={weights},worlds=3,seed=9,infer=partner,candidates=12")
                moves.append(int(player.decide(s, s.legal_mask(), torch.tensor([0])).moves[0]))
            assert moves[0] == moves[1], (plays, g)
            checked += 1
    assert checked == 9
    model, _ = load_model(weights, "cpu")
    state, _legal, games = _position(5, 6, 14)
    player = RolloutPlayer(model, torch.device("cpu"), worlds=6, seed=2, infer="partner", candidates=48, sharpen=8.0)
    kept = player._sample(state, games)
    truth = state.index(games.repeat_interleave(6))
    known = truth.played | (truth.owner == truth.current.view(-1, 1))
    assert torch.equal(kept.owner[known], truth.owner[known])
    partner = (torch.arange(4).view(1, -1) - kept.current.view(-1, 1)) % 4 == 2
    uniform = sample_worlds(state, games, 48, random.Random(7))
    partner_u = (torch.arange(4).view(1, -1) - uniform.current.view(-1, 1)) % 4 == 2
    ll_kept = play_log_likelihood(model, kept, partner, sharpen=8.0).view(6, 6).mean(1)
    ll_uniform = play_log_likelihood(model, uniform, partner_u, sharpen=8.0).view(6, 48).mean(1)
    assert float((ll_kept - ll_uniform).mean()) > 0.3 and int((ll_kept > ll_uniform).sum()) >= 5
    p = make_player(f"rollout:path={weights},worlds=2,seed=1,infer=others,candidates=4")
    play_out_checking_legality(deal_benchmark(3, make_generator(2)), p)
    for bad in ("infer=all", "candidates=2", "sharpen=0"):
        with pytest.raises(SpecError):
            make_player(f"rollout:path={weights},worlds=3,{bad}")
