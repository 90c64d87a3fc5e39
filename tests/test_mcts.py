"""Search: exact endgames, sane targets, consistent worlds, and self-play examples."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.engine.dominoes import TABLES
from zeb_core.mcts import Evaluator, SearchConfig, search
from zeb_core.mcts.worlds import info_from_state, sample_worlds
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.players import make_player
from zeb_core.selfplay import play_selfplay


def _neutral_net() -> ZebNet:
    """Uniform priors and zero values: the search must find good plays from exact terminal values alone."""
    torch.manual_seed(0)
    net = ZebNet(ModelConfig.preset("small"))
    with torch.no_grad():
        for layer in (net.value_head[2], net.policy_head):
            layer.weight.zero_()
            layer.bias.zero_()
    return net


def _random_plays(state: GameState, plays: int, gen: torch.Generator) -> None:
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))


def _minimax(state: GameState) -> float:
    if bool(state.done()[0]):
        return float(state.values()[0, 0])
    best = None
    maximise = int(state.current[0]) % 2 == 0
    for d in state.legal_mask()[0].nonzero().flatten().tolist():
        child = state.clone()
        child.apply(torch.tensor([d]), check=False)
        v = _minimax(child)
        best = v if best is None or (v > best if maximise else v < best) else best
    return best


def test_search_finds_the_best_play_in_two_trick_endgames() -> None:
    gen = make_generator(3)
    state = deal_benchmark(40, gen)
    _random_plays(state, 20, gen)
    config = SearchConfig(simulations=300, max_nodes=310, clairvoyant=True)
    result = search(state, Evaluator(_neutral_net()), config, 300)
    optimal = choices = 0
    loss_mcts = loss_random = 0.0
    for g in range(40):
        slots = result.legal[g].nonzero().flatten().tolist()
        if len(slots) < 2:
            continue
        one = state.index(torch.tensor([g]))
        hand = one.hand_of(one.current)[0]
        sign = 1.0 if int(one.current[0]) % 2 == 0 else -1.0
        values = {}
        for s in slots:
            child = one.clone()
            child.apply(torch.tensor([int(hand[s])]), check=False)
            values[s] = sign * _minimax(child)
        best = max(values.values())
        chosen = int(result.visits[g].argmax())
        choices += 1
        optimal += values[chosen] == best
        loss_mcts += best - values[chosen]
        loss_random += sum(best - v for v in values.values()) / len(values)
    assert choices >= 15
    assert optimal / choices >= 0.75
    assert loss_mcts < 0.5 * loss_random


def test_visits_only_on_legal_slots_and_sum_to_the_simulations() -> None:
    state = deal_benchmark(6, make_generator(1))
    _random_plays(state, 5, make_generator(2))
    result = search(state, Evaluator(_neutral_net()), SearchConfig(simulations=20, max_nodes=16), 20)
    assert bool((result.visits[~result.legal] == 0).all())
    assert torch.equal(result.visits.sum(1), torch.full((6,), 20.0))
    assert bool((result.root_value.abs() <= 1).all())


def test_sampled_worlds_keep_the_public_game_and_the_searchers_hand() -> None:
    gen = make_generator(5)
    state = deal_benchmark(12, gen)
    _random_plays(state, 13, gen)
    worlds = sample_worlds(state, torch.arange(12), 3, random.Random(0))
    for g in range(12):
        info = info_from_state(state, g)
        for w in range(3):
            row = g * 3 + w
            assert torch.equal(worlds.history[row], state.history[g])
            assert torch.equal(worlds.legal_mask()[row], state.legal_mask()[g])  # the searcher's own options
            for s, suits in info.voids.items():
                held = ((worlds.owner[row] == s) & ~worlds.played[row]).nonzero().flatten().tolist()
                assert not any(TABLES["follows"][info.decl, suit, d] for suit in suits for d in held)
            assert sorted(worlds.hands[row].flatten().tolist()) == list(range(28))


def test_selfplay_examples_are_valid_training_targets() -> None:
    batch = play_selfplay(Evaluator(_neutral_net()), 4, SearchConfig(simulations=8, max_nodes=16, worlds=2), seed=1)
    n = batch.examples
    assert n > 4 * 7  # most decisions are not forced
    assert batch.obs.shape == (n, 36, 8) and batch.obs.dtype == torch.int8
    assert torch.allclose(batch.policy.sum(1), torch.ones(n), atol=1e-5)
    assert bool((batch.policy[~batch.legal] == 0).all())
    assert bool((batch.value.abs() <= 1).all()) and bool((batch.value.abs() >= 0.5).all())


def test_mcts_player_spec_plays_legal_games(small_checkpoint: Path) -> None:
    from zeb_core.match import play_match

    player = make_player(f"mcts:path={small_checkpoint},sims=8,worlds=2")
    result = play_match(player, make_player("random"), 8, seed=0)
    assert result.games == 8
