"""Hidden-hand sampling: every world is consistent, and the worlds are uniform over all consistent deals.

Uniformity is tested against full enumeration on late positions (few unseen dominoes, several voids) with a
chi-square test at a significance level of 1e-6 and a fixed seed, so the test is neither flaky nor toothless:
the earlier greedy sampler put domino 25 with seat 2 in 59% of the worlds of POS_080, where the exact share is 4/5.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter
from fractions import Fraction

import pytest
import torch

from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.engine.dominoes import TABLES
from zeb_core.game.infoset import InfoState
from zeb_core.mcts.worlds import info_from_state

# After 19 plays; voids: seat 1 in suit 2, seat 2 in suits 2 and 7, seat 3 in suit 4. 15 consistent deals.
POS_080 = {
    "seat": 0, "hand": [7, 8, 13], "decl": 7, "bidder": 1, "bid": 30, "leader": 1,
    "plays": [[1, 10], [2, 19], [3, 5], [0, 12], [3, 9], [0, 6], [1, 2], [2, 22], [3, 3], [0, 4], [1, 0], [2, 11],
              [1, 18], [2, 15], [3, 17], [0, 16], [1, 26], [2, 21], [3, 23]],
}  # fmt: skip
# After 19 plays; voids: seat 2 in suits 2 and 6, seat 3 in suit 5. 12 deals;
# the old sampler's shares were 0.63 for 3/4.
POS_075 = {
    "seat": 0, "hand": [1, 6, 15], "decl": 8, "bidder": 2, "bid": 35, "leader": 2,
    "plays": [[2, 19], [3, 22], [0, 17], [1, 16], [2, 5], [3, 9], [0, 27], [1, 14], [0, 3], [1, 4], [2, 10], [3, 23],
              [3, 12], [0, 13], [1, 25], [2, 11], [1, 21], [2, 7], [3, 24]],
}  # fmt: skip
# After 18 plays; voids: seat 0 in suits 2 and 7, seat 3 in suit 2. 150 deals.
POS_150 = {
    "seat": 1, "hand": [2, 6, 27], "decl": 5, "bidder": 1, "bid": 39, "leader": 1,
    "plays": [[1, 7], [2, 13], [3, 24], [0, 8], [3, 15], [0, 18], [1, 17], [2, 19], [2, 4], [3, 21], [0, 3], [1, 23],
              [1, 5], [2, 12], [3, 20], [0, 14], [3, 26], [0, 1]],
}  # fmt: skip
POSITIONS = {"p080": POS_080, "p075": POS_075, "p150": POS_150}
ALPHA = 1e-6


def _enumerate(info: InfoState) -> list[tuple[int, ...]]:
    """Every consistent deal by brute force: the seat of each unseen domino (in `info.unseen()` order)."""
    caps = info.capacities()
    follows = TABLES["follows"]
    options = []
    for d in info.unseen():
        options.append([s for s in caps if not any(follows[info.decl, suit, d] for suit in info.voids.get(s, ()))])
    return [c for c in itertools.product(*options) if Counter(c) == Counter({s: n for s, n in caps.items() if n})]


def _chi2_critical(df: int, alpha: float) -> float:
    """Upper `alpha` quantile of chi-square(df), Wilson-Hilferty (accurate to about 1% for df >= 3; no scipy)."""
    z = statistics.NormalDist().inv_cdf(1 - alpha)
    c = 2 / (9 * df)
    return df * (1 - c + z * math.sqrt(c)) ** 3


def _assert_consistent(info: InfoState, world: list[list[int]]) -> None:
    assert world[info.seat] == sorted(info.hand)
    caps = info.capacities()
    for s, n in caps.items():
        assert len(world[s]) == n
        for d in world[s]:
            assert not any(TABLES["follows"][info.decl, suit, d] for suit in info.voids.get(s, ()))
    assert sorted(d for h in world for d in h) == sorted(info.hand + info.unseen())


def test_chi2_critical_value_matches_known_quantiles() -> None:
    # Tabulated: chi2(10) 0.999 -> 29.588, chi2(100) 0.999 -> 149.449; the 1e-6 quantile of chi2(14) is 53.0.
    assert _chi2_critical(10, 1e-3) == pytest.approx(29.588, rel=0.01)
    assert _chi2_critical(100, 1e-3) == pytest.approx(149.449, rel=0.005)
    assert 50 < _chi2_critical(14, ALPHA) < 56


@pytest.mark.parametrize("name", sorted(POSITIONS))
def test_worlds_are_uniform_over_every_consistent_deal(name: str) -> None:
    info = InfoState.from_request(POSITIONS[name])
    deals = _enumerate(info)
    assert len(deals) == info.count_worlds() >= 10
    unseen = info.unseen()
    index = {deal: i for i, deal in enumerate(deals)}
    n = 200 * len(deals)
    counts = [0] * len(deals)
    rng = random.Random(2024)
    for k in range(n):
        world = info.sample_world(rng) if k % 2 else info.sample_worlds(rng, 1)[0]
        if k < 500:
            _assert_consistent(info, world)
        owner = {d: s for s in range(4) for d in world[s]}
        counts[index[tuple(owner[d] for d in unseen)]] += 1  # a KeyError here is an inconsistent deal
    expected = n / len(deals)
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < _chi2_critical(len(deals) - 1, ALPHA), (chi2, counts)


def test_the_quoted_case_gets_its_exact_share() -> None:
    """Domino 25 belongs with seat 2 in 12 of the 15 deals of POS_080: 4/5 of the worlds must put it there."""
    info = InfoState.from_request(POS_080)
    deals = _enumerate(info)
    at = info.unseen().index(25)
    assert Fraction(sum(deal[at] == 2 for deal in deals), len(deals)) == Fraction(4, 5)
    rng = random.Random(7)
    worlds = info.sample_worlds(rng, 4000)
    share = sum(25 in w[2] for w in worlds) / len(worlds)
    assert abs(share - 0.8) < 0.03  # 4.7 standard errors; the old sampler gave 0.59


def test_sampled_worlds_are_consistent_at_every_depth() -> None:
    gen = make_generator(17)
    state = deal_benchmark(24, gen)
    rng = random.Random(3)
    for _ in range(27):
        for g in range(24):
            info = info_from_state(state, g)
            for world in info.sample_worlds(rng, 2):
                _assert_consistent(info, world)
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))


def test_world_count_matches_enumeration_on_random_late_positions() -> None:
    gen = make_generator(5)
    state = deal_benchmark(30, gen)
    for step in range(22):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))
        if step >= 17:
            for g in range(30):
                info = info_from_state(state, g)
                assert info.count_worlds() == len(_enumerate(info))
