"""The observation holds what the seat may know, and nothing else."""

from __future__ import annotations

import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.game.encoding import FEATURE_SIZES, OBS_TOKENS, encode, pad_tokens


def _advance(state: GameState, plays: int, seed: int = 0) -> None:
    gen = make_generator(seed)
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))


def test_features_stay_in_their_vocabularies() -> None:
    state = deal_benchmark(256, make_generator(1))
    for plays in range(28):
        obs, legal = encode(state)
        assert obs.shape == (256, OBS_TOKENS, 8)
        for f, size in enumerate(FEATURE_SIZES):
            assert int(obs[..., f].min()) >= 0 and int(obs[..., f].max()) < size
        assert torch.equal(legal, state.legal_slots()) or plays == 28
        _advance(state, 1, seed=plays)


def test_hidden_hands_do_not_change_the_observation() -> None:
    """Swap unplayed dominoes between the two opponents: the observer's tokens must not change."""
    state = deal_benchmark(1, make_generator(5))
    _advance(state, 6, seed=2)
    observer = int(state.current[0])
    left, right = (observer + 1) % 4, (observer + 3) % 4
    hands = state.hands.clone()
    a = next(d for d in hands[0, left].tolist() if not state.played[0, d])
    b = next(d for d in hands[0, right].tolist() if not state.played[0, d])
    hands[0, left][hands[0, left] == a] = b
    hands[0, right][hands[0, right] == b] = a
    other = GameState.from_deal(hands, state.decl, state.bidder, state.bid, state.leader)
    for d in state.history[0, :6].tolist():
        other.apply(torch.tensor([d]), check=False)
    obs1, legal1 = encode(state)
    obs2, legal2 = encode(other)
    assert torch.equal(obs1, obs2) and torch.equal(legal1, legal2)


def test_observation_is_relative_to_the_observer() -> None:
    state = deal_benchmark(1, make_generator(9))
    _advance(state, 5)
    seat = state.current
    obs, _ = encode(state, seat=seat)
    play_tokens = obs[0, 8:13]
    for i, s in enumerate(state.history_seat[0, :5].tolist()):
        assert int(play_tokens[i, 2]) == (s - int(seat[0])) % 4 + 1


def test_trimmed_observation_pads_back_to_the_full_one() -> None:
    state = deal_benchmark(8, make_generator(3))
    _advance(state, 10)
    full, _ = encode(state)
    trimmed, _ = encode(state, trim=True)
    assert trimmed.shape[1] == 8 + 10
    assert torch.equal(pad_tokens(trimmed), full)
