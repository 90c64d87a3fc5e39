"""The `pimc` player: builds from its spec, plays legal moves, beats random, and sees only what its seat knows."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.helpers import play_out_checking_legality, random_plays
from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.evaluation.match import play_match
from zeb_core.mcts.worlds import info_from_state
from zeb_core.players.base import SpecError, make_player
from zeb_core.players.pimc import PimcPlayer
from zeb_core.solver import warm_up


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


def test_spec_builds_and_rejects_bad_settings() -> None:
    p = make_player("pimc:worlds=3,seed=7,objective=points,tiebreak=first")
    assert isinstance(p, PimcPlayer)
    assert (p.worlds, p.objective, p.tiebreak) == (3, "points", "first")
    assert make_player("pimc").worlds == 16 and make_player("pimc").objective == "win"
    assert make_player("pimc:objective=contract").objective == "contract"
    bad_prior = ("pimc:k=-16", "pimc:tie=nan", "pimc:k=inf", "pimc:objective=bid")
    for bad in (*bad_prior, "pimc:worlds=0", "pimc:tiebreak=coin", "pimc:sims=3", "pimc:worlds=x"):
        with pytest.raises(SpecError):
            make_player(bad)


def test_plays_only_legal_moves_and_skips_forced_ones() -> None:
    gen = make_generator(3)
    state = deal_benchmark(6, gen)
    player = make_player("pimc:worlds=3,seed=1")
    searched = play_out_checking_legality(state, player)
    assert player.decisions == searched < 6 * 28  # the last trick (and other forced moves) were not solved


def test_beats_random_clearly() -> None:
    result = play_match(make_player("pimc:worlds=4,seed=2"), make_player("random", seed=3), games=60, seed=11)
    assert result.win_rate > 0.65, result.summary()


def test_decision_uses_no_hidden_information() -> None:
    """The same decision when the others' unplayed dominoes are dealt differently, consistently with the plays."""
    gen = make_generator(5)
    rng = random.Random(0)
    checked = 0
    for plays in (0, 3, 6, 9, 13, 17, 22):
        state = deal_benchmark(4, gen)
        random_plays(state, plays, gen)
        for g in range(state.batch_size):
            info = info_from_state(state, g)
            other = info.to_state(rng)  # the same public plays and own hand, another deal of the rest
            real = state.index(torch.tensor([g]))
            hidden = ~real.played[0] & (real.owner[0] != real.current[0])
            if not bool((other.owner[0] != real.owner[0])[hidden].any()):
                continue
            moves = []
            for s in (real, other):
                legal = s.legal_mask()
                moves.append(int(make_player("pimc:worlds=4,seed=9").decide(s, legal, torch.tensor([0])).moves[0]))
            assert moves[0] == moves[1], (plays, g)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("sharpen", [1.0, 2.5])
def test_play_likelihood_matches_the_model_step_by_step(sharpen: float) -> None:
    """play_log_likelihood on the true deal = the sum of the model's log-probabilities (softmax of sharpen x the
    logits) of the scored seats' plays."""
    from zeb_core.game.encoding import encode
    from zeb_core.model.config import ModelConfig
    from zeb_core.model.net import ZebNet
    from zeb_core.players.inference import play_log_likelihood

    torch.manual_seed(3)
    model = ZebNet(ModelConfig.preset("small")).eval()
    gen = make_generator(5)
    state = deal_benchmark(6, gen)
    scored = torch.zeros(6, 4, dtype=torch.bool)
    scored[:, 1] = True
    scored[:, 3] = True
    expected = torch.zeros(6, dtype=torch.float64)
    with torch.inference_mode():
        for _ in range(13):
            legal = state.legal_mask()
            moves = torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1)
            obs, slots = encode(state, legal=legal, trim=True)
            probs = torch.softmax(sharpen * model(obs, slots)[0].double(), dim=1)
            slot = (state.hand_of(state.current) == moves.view(-1, 1)).double().argmax(1)
            p = probs.gather(1, slot.view(-1, 1)).squeeze(1)
            p = 0.9 * p + 0.1 / slots.sum(1)
            mine = scored.gather(1, state.current.view(-1, 1)).squeeze(1)
            expected += torch.where(mine, p.log(), torch.zeros_like(p))
            state.apply(moves, check=True)
    got = play_log_likelihood(model, state, scored, floor=0.1, sharpen=sharpen)
    assert torch.allclose(got.double(), expected, atol=1e-4)
    assert bool((got < 0).all())


def test_resample_follows_the_weights() -> None:
    from zeb_core.mcts.worlds import resample

    gen = torch.Generator().manual_seed(0)
    log_w = torch.full((2 * 8,), -1e9)
    log_w[3] = 0.0  # group 0: only candidate 3 is possible
    log_w[8:] = 0.0  # group 1: uniform
    picks = resample(log_w, groups=2, per_group=8, keep=8, gen=gen)
    assert picks[:8].tolist() == [3] * 8
    assert sorted(picks[8:].tolist()) == list(range(8, 16))  # systematic: one of each when uniform


def test_inferring_pimc_plays_legal_moves(tmp_path) -> None:
    from zeb_core.model.checkpoint import init_checkpoint

    init_checkpoint("small", tmp_path / "w", seed=1)
    player = make_player(f"pimc:worlds=4,candidates=12,infer={tmp_path / 'w'}")
    assert isinstance(player, PimcPlayer) and player.candidates == 12
    gen = make_generator(2)
    state = deal_benchmark(3, gen)
    random_plays(state, 9, gen)
    for _ in range(8):
        legal = state.legal_mask()
        moves = player.decide(state, legal, torch.arange(3)).moves
        assert bool(legal.gather(1, moves.view(-1, 1)).all())
        state.apply(moves, check=True)
    with pytest.raises(SpecError):
        make_player(f"pimc:infer={tmp_path / 'w'},infer_seats=everyone")


def test_contract_objective_plays_for_the_bid() -> None:
    """Each move is valued by whether the mover's side can still make (bidders) or set (defenders) the real bid in
    the world, and the move played is one of the best: checked with one world against the exact points."""
    from zeb_core.solver import Positions, contract_targets, move_reach_values, move_values

    gen = make_generator(21)
    state = deal_benchmark(8, gen)
    state.bid = torch.full((8,), 30, dtype=torch.int64)
    random_plays(state, 5, gen)
    player = make_player("pimc:worlds=1,seed=4,objective=contract,tiebreak=first")
    legal = state.legal_mask()
    games = torch.arange(8)
    decision = player.decide(state, legal, games)
    assert bool(legal[games, decision.moves].all())
    # one world (the same draw as the player's: same seed, the same searched games): the move's value is +1/-1 as
    # the mover's side reaches its contract target in that world, and the move played is one of the best
    searched = np.flatnonzero(legal.sum(1).numpy() > 1)
    assert len(searched) >= 4
    player1 = make_player("pimc:worlds=1,seed=4,objective=contract,tiebreak=first")
    sampled = player1._sample(state, torch.as_tensor(searched))
    reach = move_reach_values(Positions.from_state(sampled), contract_targets(sampled))
    points = move_values(Positions.from_state(sampled), "points")
    need = contract_targets(sampled)[:, None]
    ok = ~np.isnan(points)
    assert np.array_equal(reach[ok], np.where(points >= need, 1.0, -1.0)[ok])
    played = decision.moves.numpy()[searched]
    assert np.array_equal(reach[np.arange(len(searched)), played], np.nanmax(reach, axis=1))
    assert set(np.unique(reach[ok])) == {-1.0, 1.0}


def test_full_game_pimc_plays_for_the_contract_unless_told_otherwise() -> None:
    from zeb_core.fullgame.bidders import full_game_play_spec, make_full_game_player

    assert make_full_game_player("baseline+pimc:worlds=2").player.objective == "contract"
    assert make_full_game_player("baseline+pimc").player.objective == "contract"
    assert make_full_game_player("baseline+pimc:worlds=2,objective=win").player.objective == "win"
    assert full_game_play_spec("pimc:") == "pimc:,objective=contract"
    assert full_game_play_spec("heuristic") == "heuristic"


def test_prior_weighs_the_networks_q_against_the_worlds(tmp_path) -> None:
    """prior=W,k=K: with K tiny the moves are pimc's own; with K huge they are the network's greedy moves."""
    from zeb_core.model.checkpoint import init_checkpoint

    init_checkpoint("small", tmp_path / "w", seed=3)
    gen = make_generator(8)
    state = deal_benchmark(12, gen)
    random_plays(state, 6, gen)
    legal = state.legal_mask()
    games = torch.arange(12)
    searched = legal.sum(1) > 1
    assert int(searched.sum()) >= 6
    plain = make_player("pimc:worlds=4,seed=5").decide(state, legal, games).moves
    tiny = make_player(f"pimc:worlds=4,seed=5,prior={tmp_path / 'w'},k=1e-9").decide(state, legal, games).moves
    huge = make_player(f"pimc:worlds=4,seed=5,prior={tmp_path / 'w'},k=1e9").decide(state, legal, games).moves
    greedy = make_player(f"policy:path={tmp_path / 'w'}").decide(state, legal, games).moves
    assert torch.equal(tiny, plain)
    assert torch.equal(huge[searched], greedy[searched])
    assert not torch.equal(plain[searched], greedy[searched])  # the two sources disagree somewhere: a real check
