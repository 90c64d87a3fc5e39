"""The auction's inference: worlds weighted by how likely the declarer's dealt hand made its bid and trump."""

from __future__ import annotations

import random

import numpy as np
import torch

from zeb_core.engine.dominoes import TABLES, domino_id
from zeb_core.engine.state import GameState
from zeb_core.fullgame.bidders.baseline import estimate_points
from zeb_core.fullgame.game import random_deals
from zeb_core.fullgame.inference import DECL_TEMP, NEED_SCALE, declarer_log_likelihood
from zeb_core.mcts.worlds import sample_worlds
from zeb_core.players.base import make_player
from zeb_core.players.pimc import PimcPlayer

SIXES = 6


def _deal_with_declarer_hand(declarer_hand: list[int], seed: int) -> list[list[int]]:
    """Seat 0 holds `declarer_hand`; the other 21 dominoes are shuffled among seats 1..3."""
    rest = [d for d in range(28) if d not in declarer_hand]
    random.Random(seed).shuffle(rest)
    return [sorted(declarer_hand), sorted(rest[:7]), sorted(rest[7:14]), sorted(rest[14:])]


def _state(deals: list[list[list[int]]], decl: int, bid: int) -> GameState:
    n = len(deals)
    return GameState.from_deal(
        torch.tensor(deals), torch.full((n,), decl), torch.zeros(n, dtype=torch.int64), torch.full((n,), bid)
    )


def test_a_strong_trump_hand_is_far_likelier_than_a_trumpless_one() -> None:
    strong = [domino_id(6, 6), domino_id(6, 5), domino_id(6, 4), domino_id(6, 3), domino_id(6, 2), domino_id(5, 5),
              domino_id(4, 0)]  # fmt: skip
    trumpless = [domino_id(5, 0), domino_id(4, 1), domino_id(3, 2), domino_id(2, 0), domino_id(1, 0),
                 domino_id(3, 1), domino_id(4, 2)]  # fmt: skip
    ll = declarer_log_likelihood(_state([_deal_with_declarer_hand(h, 1) for h in (strong, trumpless)], SIXES, 34))
    assert float(ll[0]) > float(ll[1]) + 5.0  # e^5: about 150 times likelier


def test_only_the_declarers_hand_matters_and_the_formula_holds() -> None:
    """The same declarer hand with the other seats reshuffled scores the same; and the score is the model the
    module documents, recomputed here term by term in plain Python for each world."""
    rng = random.Random(5)
    hands = [sorted(rng.sample(range(28), 7)) for _ in range(6)]
    deals = [_deal_with_declarer_hand(h, s) for h in hands for s in (0, 1)]
    decl, bid = 3, 31
    ll = declarer_log_likelihood(_state(deals, decl, bid)).numpy()
    assert np.allclose(ll[0::2], ll[1::2])
    for i, deal in enumerate(deals):
        est = estimate_points(np.array([deal[0]]))[0]
        named = [d for d in range(10) if d != 8]
        log_softmax = est[decl] / DECL_TEMP - np.log(sum(np.exp(est[d] / DECL_TEMP) for d in named))
        log_sigmoid = -np.log1p(np.exp(-(est[decl] - bid) / NEED_SCALE))
        assert abs(ll[i] - (log_softmax + log_sigmoid)) < 1e-4


def _declarer_trumps(worlds: GameState) -> np.ndarray:
    hands = worlds.hands[torch.arange(worlds.batch_size), worlds.bidder].numpy()
    return TABLES["called"][worlds.decl.numpy()[:, None], hands].sum(1)


def test_auction_weighted_pimc_gives_the_declarer_more_trumps_than_uniform_worlds() -> None:
    """A defender to move after the declarer's lead: uniform worlds deal the declarer's unseen six dominoes at
    random; auction-weighted ones should put clearly more trumps there (the declarer named them)."""
    n = 24
    gen = torch.Generator().manual_seed(3)
    deals = random_deals(n, gen)
    state = GameState.from_deal(deals, torch.full((n,), SIXES), torch.zeros(n, dtype=torch.int64),
                                torch.full((n,), 32))  # fmt: skip
    lead = state.hand_of(state.current)[:, 0]  # the declarer leads its lowest domino id
    state.apply(lead, check=True)
    games = torch.arange(n)
    player = make_player("pimc:worlds=16,auction=1,seed=2")
    assert isinstance(player, PimcPlayer) and player.auction and player.candidates == 64
    weighted = player._sample(state, games)
    uniform = sample_worlds(state, games, 16, random.Random(2))
    rows = torch.arange(n).repeat_interleave(16)  # game-major, 16 worlds a game
    assert bool((weighted.hands[:, 1] == state.hands[rows, 1]).all())  # the mover's own hand is never resampled
    assert bool((weighted.hands[:, 0, :].eq(lead[rows].view(-1, 1)).any(1)).all())  # the lead stays the declarer's
    gain = _declarer_trumps(weighted).mean() - _declarer_trumps(uniform).mean()
    assert gain > 0.4, gain


def test_search_worlds_weighted_by_the_auction_for_the_search_and_the_solver_teacher() -> None:
    """`SearchConfig.auction_worlds` reaches the worlds both the search and the solver teacher sample: the declarer
    holds more trumps than in uniform ones, and the teacher's labels stay well formed."""
    from zeb_core.mcts import SearchConfig
    from zeb_core.mcts.worlds import sample_search_worlds
    from zeb_core.model.config import ModelConfig
    from zeb_core.model.net import ZebNet
    from zeb_core.selfplay.solver_teacher import play_solver_selfplay

    n = 24
    gen = torch.Generator().manual_seed(8)
    deals = random_deals(n, gen)
    state = GameState.from_deal(deals, torch.full((n,), SIXES), torch.full((n,), 2), torch.full((n,), 31))
    state.apply(state.hand_of(state.current)[:, 3], check=True)
    games = torch.arange(n)
    weighted = sample_search_worlds(state, games, 8, random.Random(1), auction=True)
    uniform = sample_search_worlds(state, games, 8, random.Random(1), auction=False)
    assert weighted.batch_size == uniform.batch_size == 8 * n
    assert _declarer_trumps(weighted).mean() > _declarer_trumps(uniform).mean() + 0.4
    fresh = GameState.from_deal(deals[:4], torch.full((4,), SIXES), torch.full((4,), 2), torch.full((4,), 31))
    config = SearchConfig(worlds=4, teacher="solver", value_target="contract", auction_worlds=True)
    batch = play_solver_selfplay(ZebNet(ModelConfig.preset("small")), 4, config, seed=0, state=fresh)
    assert batch.q is not None and bool(((batch.q >= -1) & (batch.q <= 1)).all())
    assert batch.games == 4 and batch.examples == 4 * 28


def test_mixed_batches_of_declarer_and_defender_movers_keep_every_world_consistent() -> None:
    """Games where the declarer is to move (its own hand known: nothing to weigh) beside games where a defender
    is: every world keeps the mover's hand and the plays' owners and deals all 28 dominoes once."""
    from zeb_core.mcts.worlds import sample_search_worlds

    n, k = 10, 6
    gen = torch.Generator().manual_seed(4)
    deals = random_deals(n, gen)
    bidder = torch.tensor([1, 2] * (n // 2))
    state = GameState.from_deal(
        deals, torch.full((n,), 5), bidder, torch.full((n,), 30), leader=torch.zeros(n, dtype=torch.int64)
    )
    lead = state.hand_of(state.current)[:, 2]
    state.apply(lead, check=True)  # seat 1 to move: the declarer in even games, a defender in odd ones
    worlds = sample_search_worlds(state, torch.arange(n), k, random.Random(9), auction=True)
    rows = torch.arange(n).repeat_interleave(k)
    assert worlds.batch_size == n * k
    assert bool((worlds.hands[:, 1] == state.hands[rows, 1]).all())
    assert bool((worlds.owner[torch.arange(n * k), lead[rows]] == 0).all())
    assert bool((worlds.hands.view(n * k, 28).sort(1).values == torch.arange(28)).all())
    owner_from_hands = torch.zeros(n * k, 28, dtype=torch.int64)
    owner_from_hands.scatter_(1, worlds.hands.view(n * k, 28), torch.arange(4).repeat_interleave(7).expand(n * k, 28))
    assert bool((owner_from_hands == worlds.owner).all())
    assert bool(worlds.legal_mask().any(1).all())
