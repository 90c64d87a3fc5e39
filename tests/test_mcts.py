"""Search: exact endgames, sane targets, consistent worlds, and self-play examples."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import torch

from tests.helpers import random_plays
from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.engine.dominoes import TABLES
from zeb_core.game.encoding import encode
from zeb_core.mcts import (
    EvalCache,
    Evaluator,
    SearchConfig,
    SearchSummary,
    TreeReuse,
    policy_target,
    search,
    search_moves,
)
from zeb_core.mcts.worlds import info_from_state, sample_worlds
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.players import make_player
from zeb_core.selfplay.games import play_selfplay


def _neutral_net() -> ZebNet:
    """Uniform priors and zero values: the search must find good plays from exact terminal values alone."""
    torch.manual_seed(0)
    net = ZebNet(ModelConfig.preset("small"))
    with torch.no_grad():
        for layer in (net.value_head[2], net.policy_head):
            layer.weight.zero_()
            layer.bias.zero_()
    return net


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


def test_solver_leaves_make_endgame_choices_exact() -> None:
    """With solve_plays covering the rest of the hand every root child is solved: the choice is optimal."""
    gen = make_generator(4)
    state = deal_benchmark(24, gen)
    random_plays(state, 16, gen)
    config = SearchConfig(simulations=64, max_nodes=80, clairvoyant=True, solve_plays=12)
    result = search(state, Evaluator(_neutral_net()), config, 64)
    from zeb_core.solver import move_values

    values = move_values(state, objective="win")  # the mover's team: +1 / 0 / -1
    checked = 0
    for g in range(24):
        hand = state.hand_of(state.current)[g]
        legal = result.legal[g]
        if int(legal.sum()) < 2:
            continue
        chosen = int(hand[int(result.visits[g].argmax())])
        best = max(values[g, int(hand[s])] for s in legal.nonzero().flatten().tolist())
        assert values[g, chosen] == best, f"game {g}: chose a move worth {values[g, chosen]}, best is {best}"
        checked += 1
    assert checked >= 8


def test_search_finds_the_best_play_in_two_trick_endgames() -> None:
    gen = make_generator(3)
    state = deal_benchmark(40, gen)
    random_plays(state, 20, gen)
    # The search alone (no solver at the leaves), on the contract target the minimax below scores.
    config = SearchConfig(simulations=300, max_nodes=310, clairvoyant=True, solve_plays=0, value_target="contract")
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
    random_plays(state, 5, make_generator(2))
    result = search(state, Evaluator(_neutral_net()), SearchConfig(simulations=20, max_nodes=16), 20)
    assert bool((result.visits[~result.legal] == 0).all())
    assert torch.equal(result.visits.sum(1), torch.full((6,), 20.0))
    assert bool((result.value.abs() <= 1).all())


def test_sampled_worlds_keep_the_public_game_and_the_searchers_hand() -> None:
    gen = make_generator(5)
    state = deal_benchmark(12, gen)
    random_plays(state, 13, gen)
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
    from zeb_core.evaluation.match import play_match

    player = make_player(f"mcts:path={small_checkpoint},sims=8,worlds=2")
    result = play_match(player, make_player("random"), 8, seed=0, check=True)  # an illegal move raises
    assert result.games == 8


def _random_net() -> ZebNet:
    torch.manual_seed(7)
    return ZebNet(ModelConfig.preset("small")).eval()


def test_eval_cache_does_not_change_the_search() -> None:
    gen = make_generator(11)
    state = deal_benchmark(6, gen)
    random_plays(state, 6, gen)
    net = _random_net()
    results, hits = [], []
    for cached in (False, True):
        evaluator = Evaluator(net)
        config = SearchConfig(simulations=40, max_nodes=12, eval_cache=cached, clairvoyant=True)
        results.append(search(state, evaluator, config, 40, root_noise=True, gen=make_generator(5)))
        hits.append(evaluator.cache_hits)
        worlds = SearchConfig(simulations=24, max_nodes=8, worlds=3, eval_cache=cached)
        found = search_moves(state, torch.arange(6), evaluator, worlds, random.Random(3))
        results.append(found)
    assert hits[0] == 0 and hits[1] > 0  # a full tree re-evaluates its unstored leaves: those are hits
    assert torch.equal(results[0].visits, results[2].visits)
    assert torch.equal(results[1].visits, results[3].visits)
    assert torch.allclose(results[0].value, results[2].value, atol=1e-6)


def test_eval_cache_returns_each_rows_own_outputs() -> None:
    gen = make_generator(4)
    state = deal_benchmark(5, gen)
    random_plays(state, 9, gen)
    net = _random_net()
    rows = torch.tensor([0, 1, 1, 2, 0, 3, 4, 4, 1])
    batch = state.index(rows)
    obs, legal = encode(batch, trim=True)
    with torch.no_grad():
        logits, value = net(obs, legal)
    want_p, want_v = torch.softmax(logits.float(), 1), value.float()
    evaluator = Evaluator(net)
    cache = EvalCache()
    for call in range(3):
        part = torch.arange(call, rows.numel())  # later calls: the same rows, fewer, in other batches
        p, v, lg = evaluator(batch.index(part), cache)
        assert torch.allclose(p, want_p[part], atol=1e-5) and torch.allclose(v, want_v[part], atol=1e-5)
        assert torch.equal(lg, legal[part])
    assert len(cache) == 5
    assert evaluator.states_evaluated == 5  # duplicates within a call and across calls were not re-evaluated
    assert evaluator.cache_hits == 5 + 5  # calls 2 and 3 found all 5 distinct rows (call 3 holds them all too)


def test_clairvoyant_subtree_reuse_continues_from_the_played_child() -> None:
    gen = make_generator(8)
    state = deal_benchmark(4, gen)
    random_plays(state, 3, gen)
    games = torch.arange(4)
    config = SearchConfig(simulations=30, max_nodes=40, clairvoyant=True)
    evaluator = Evaluator(_random_net())
    reuse = TreeReuse()
    first = search_moves(state, games, evaluator, config, random.Random(0), reuse=reuse)
    old = reuse.trees
    slots = first.visits.argmax(1)
    state.apply(state.hand_of(state.current).gather(1, slots.view(-1, 1)).squeeze(1), check=False)
    expected = []
    for g in range(4):
        root = g * config.max_nodes
        node = int(old.child[root, slots[g]])
        expected.append(old.visits[node].clone())
        assert float(old.visits[node].sum()) == float(first.visits[g, slots[g]]) - 1  # its first visit expanded it
    legal = state.legal_mask()
    taken = reuse.take(state, games, config.max_nodes)
    assert taken is not None
    for g in range(4):
        root = g * config.max_nodes
        assert torch.equal(taken.visits[root], expected[g])
        assert int(taken.count[g]) >= 1 and int(taken.child[root].max()) < (g + 1) * config.max_nodes
        assert torch.equal(taken.store.owner[root], state.owner[g]) and int(taken.store.n_plays[root]) == 4
        assert torch.equal(taken.legal[root], encode(state.index(torch.tensor([g])), legal=legal[[g]])[1][0])
    # Two plays on, the walk goes two levels down: to the grandchild where the tree has it, else a fresh tree.
    later = state.clone()
    random_plays(later, 1, make_generator(1))
    deeper = reuse.take(later, games, config.max_nodes)
    for g in range(4):
        node = int(old.child[g * config.max_nodes, slots[g]])
        slot = int((later.history[g, 4] == state.hand_of(state.current)[g]).nonzero())
        grand = int(old.child[node, slot])
        if grand < 0:
            assert deeper is None or int(deeper.count[g]) == 0
        else:
            assert deeper is not None and torch.equal(deeper.visits[g * config.max_nodes], old.visits[grand])
    second = search_moves(state, games, evaluator, config, random.Random(0), reuse=reuse)
    for g in range(4):
        assert float(second.visits[g].sum()) == float(expected[g].sum()) + config.sims_per_tree
    # A different deal in the same game numbers is never continued from the kept trees.
    other = deal_benchmark(4, make_generator(99))
    assert reuse.take(other, games, config.max_nodes) is None


def test_clairvoyant_selfplay_with_reuse_gives_valid_examples() -> None:
    # Tree reuse itself: without solver leaves (they end the trees 12 plays from the end).
    config = SearchConfig(simulations=12, max_nodes=24, clairvoyant=True, solve_plays=0)
    batch = play_selfplay(Evaluator(_random_net()), 3, config, seed=2)
    assert batch.stats["reused_trees"] > 0 and batch.stats["cache_lookups"] > 0
    assert torch.allclose(batch.policy.sum(1), torch.ones(batch.examples), atol=1e-5)
    assert bool((batch.policy[~batch.legal] == 0).all())


def test_clairvoyant_reuse_with_solver_leaves_never_roots_a_solved_node() -> None:
    # A solved node has no edges; reused as the next root it gave NaN policy targets.
    config = SearchConfig(simulations=12, max_nodes=24, clairvoyant=True, solve_plays=12)
    batch = play_selfplay(Evaluator(_random_net()), 3, config, seed=2)
    assert bool(torch.isfinite(batch.policy).all()) and bool(torch.isfinite(batch.value).all())
    assert torch.allclose(batch.policy.sum(1), torch.ones(batch.examples), atol=1e-5)
    assert bool((batch.policy[~batch.legal] == 0).all())


def test_improved_policy_target_follows_q_and_stays_on_legal_slots() -> None:
    """softmax(log prior + sigma(completed Q)): the prior where Q says nothing, tilted to better Q where it does."""
    legal = torch.tensor([[True, True, True, False, False, False, False]] * 3)
    prior = torch.tensor([[0.5, 0.3, 0.2, 0, 0, 0, 0]] * 3)
    visits = torch.tensor([[4.0, 4, 0, 0, 0, 0, 0], [4, 4, 4, 0, 0, 0, 0], [4, 4, 4, 0, 0, 0, 0]])
    q = torch.tensor([[0.1, 0.6, 0, 0, 0, 0, 0], [0.2, 0.2, 0.2, 0, 0, 0, 0], [-0.5, 0.0, 0.5, 0, 0, 0, 0]])
    found = SearchSummary(visits=visits, value=torch.tensor([0.9, 0.2, 0.0]), legal=legal, wsum=q * visits, prior=prior)
    config = SearchConfig()
    target = policy_target(found, config)
    assert torch.allclose(target.sum(1), torch.ones(3), atol=1e-6)
    assert bool((target[~legal] == 0).all())
    # Row 0: the unvisited slot 2 takes the root value 0.9, the best Q, so it gains the most over its prior.
    assert int((target[0] / prior[0].clamp(min=1e-9))[:3].argmax()) == 2
    assert float(target[0, 1]) > float(target[0, 0]) * prior[0, 1] / prior[0, 0]
    # Row 1: equal Qs leave the prior unchanged.
    assert torch.allclose(target[1], prior[1], atol=1e-6)
    # Row 2: Q ordered against the prior wins over it.
    assert target[2, 2] > target[2, 1] > target[2, 0]
    visit_target = policy_target(found, replace(config, policy_target="visits"))
    assert torch.allclose(visit_target[2], torch.tensor([1 / 3] * 3 + [0.0] * 4))


def test_selfplay_improved_targets_are_sharper_than_visits_at_few_simulations() -> None:
    """The point of the improved target: at 8 simulations per world the visits are nearly flat, it is not."""
    net = _random_net()
    entropy = {}
    for kind in ("visits", "improved"):
        config = SearchConfig(simulations=16, max_nodes=16, worlds=2, policy_target=kind, dirichlet_fraction=0.0)
        batch = play_selfplay(Evaluator(net), 8, config, seed=4)
        p = batch.policy
        assert torch.allclose(p.sum(1), torch.ones(batch.examples), atol=1e-5)
        entropy[kind] = float(-(torch.special.xlogy(p, p)).sum(1).mean())
    assert entropy["improved"] < entropy["visits"] - 0.1


# Late positions where the seat to move wins the hand (more than 21 points for its team) with one move and only
# that one, in every deal of the hidden hands consistent with what it knows: (request, winning move, deals).
FORCED_WINS = [
    (
        {"seat": 2, "hand": [2, 20], "decl": 5, "bidder": 0, "bid": 35, "leader": 0,
         "plays": [[0, 0], [1, 3], [2, 21], [3, 1], [0, 16], [1, 17], [2, 19], [3, 26], [3, 12], [0, 7], [1, 10],
                   [2, 13], [2, 15], [3, 22], [0, 18], [1, 6], [0, 4], [1, 8], [2, 11], [3, 27], [1, 25]]},
        20, 7,
    ),
    (
        {"seat": 1, "hand": [23, 24], "decl": 3, "bidder": 2, "bid": 36, "leader": 2,
         "plays": [[2, 6], [3, 7], [0, 8], [1, 13], [1, 4], [2, 3], [3, 26], [0, 12], [0, 1], [1, 2], [2, 22],
                   [3, 16], [1, 15], [2, 5], [3, 19], [0, 17], [3, 20], [0, 27], [1, 10], [2, 18], [2, 14], [3, 25],
                   [0, 11]]},
        24, 6,
    ),
    (
        {"seat": 2, "hand": [2, 24], "decl": 3, "bidder": 2, "bid": 34, "leader": 2,
         "plays": [[2, 8], [3, 6], [0, 9], [1, 18], [0, 4], [1, 12], [2, 5], [3, 3], [2, 7], [3, 27], [0, 0],
                   [1, 13], [1, 11], [2, 1], [3, 25], [0, 19], [3, 10], [0, 17], [1, 16], [2, 26], [3, 14], [0, 21],
                   [1, 20]]},
        24, 6,
    ),
]  # fmt: skip


def _consistent_states(info: InfoState) -> list[GameState]:  # noqa: F821 - imported where used
    """One state per consistent deal of the hidden hands, by brute force over each unseen domino's seat."""
    from collections import Counter
    from itertools import product

    caps = info.capacities()
    unseen = info.unseen()
    out = []
    for seats in product(*(info.allowed_seats(d) for d in unseen)):
        if Counter(seats) != Counter({s: n for s, n in caps.items() if n}):
            continue
        dealt = [[] for _ in range(4)]
        dealt[info.seat] = list(info.hand)
        for d, s in zip(unseen, seats):
            dealt[s].append(d)
        for s, d in info.plays:
            dealt[s].append(d)
        one = lambda x: torch.tensor([x])
        state = GameState.from_deal(one(dealt), one(info.decl), one(info.bidder), one(info.bid), one(info.leader))
        for _, d in info.plays:
            state.apply(one(d), check=True)
        out.append(state)
    return out


def _best_points(state: GameState, team: int) -> int:
    """`team`'s final points when both teams play their best from here with every hand open (minimax)."""
    if bool(state.done()[0]):
        return int(state.team_points[0, team])
    outcomes = []
    for d in state.legal_mask()[0].nonzero().flatten().tolist():
        child = state.clone()
        child.apply(torch.tensor([d]), check=True)
        outcomes.append(_best_points(child, team))
    return max(outcomes) if int(state.current[0]) % 2 == team else min(outcomes)


def test_sampled_worlds_search_finds_a_win_every_consistent_world_shares() -> None:
    """Not clairvoyant: the search deals the hidden hands itself and must still find the one winning move."""
    from dataclasses import fields

    from zeb_core.game.infoset import InfoState
    from zeb_core.players.mcts_player import MctsPlayer

    # The endgame solver (where SearchConfig has one) would hand the search exact leaf values: off, so that this
    # tests the search itself, guided by a neutral network and terminal values only.
    no_solver = {"solve_plays": 0} if "solve_plays" in {f.name for f in fields(SearchConfig)} else {}
    config = SearchConfig(simulations=128, max_nodes=64, worlds=4, clairvoyant=False, **no_solver)
    evaluator = Evaluator(_neutral_net())
    for position, winner, deals in FORCED_WINS:
        info = InfoState.from_request(position)
        team = info.seat % 2
        worlds = _consistent_states(info)
        assert len(worlds) == deals == info.count_worlds()
        for world in worlds:  # the premise: this move, and no other, wins in every world
            for d in world.legal_mask()[0].nonzero().flatten().tolist():
                child = world.clone()
                child.apply(torch.tensor([d]), check=True)
                assert (_best_points(child, team) > 21) == (d == winner)
        first_legal = int(worlds[0].legal_slots()[0].nonzero()[0, 0])
        assert int(worlds[0].hand_of(worlds[0].current)[0, first_legal]) != winner  # not what ties would pick
        for seed in (0, 1):
            state = info.to_state(random.Random(seed))  # the true deal: one consistent world, unseen by the search
            found = search_moves(state, torch.tensor([0]), evaluator, config, random.Random(seed))
            assert int(state.hand_of(state.current)[0, int(found.visits[0].argmax())]) == winner, found.visits
            legal = state.legal_mask()
            move = int(MctsPlayer(evaluator, config, seed=seed).decide(state, legal, torch.tensor([0])).moves[0])
            assert move == winner and bool(legal[0, move])
