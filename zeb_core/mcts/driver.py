"""Searching moves for a batch of games: worlds per game, one batched search, visits summed over worlds.

Subtree reuse (`TreeReuse`) applies to clairvoyant search only: there the tree searched for a move holds the true
states that follow it, so the next search of the same game can start from the node of the moves played since.
With sampled worlds it cannot: each search deals the hidden hands anew, and a node's state (and so every edge's
statistics) belongs to the deal it was searched in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.search import Evaluator, Tree, search
from zeb_core.mcts.worlds import sample_worlds
from zeb_core.players.base import Decision


@dataclass
class MoveSearch:
    visits: torch.Tensor  # [n, 7] root visits per hand slot, summed over worlds
    value: torch.Tensor  # [n] mean root value for the seat to move
    legal: torch.Tensor  # [n, 7]
    wsum: torch.Tensor  # [n, 7] summed backed-up values per root slot (seat to move), over worlds
    prior: torch.Tensor  # [n, 7] the network's root prior (the same observation in every world)


def improved_policy(found: MoveSearch, config: SearchConfig) -> torch.Tensor:
    """The policy target softmax(log prior + sigma(completed Q)) over legal slots (Gumbel MuZero's improved policy).

    Q(a) is the mean backed-up value of root slot a over all worlds; a slot never visited takes the root's mean
    value. The Q of one move is min-max scaled to [0, 1] over its legal slots (the range is at least
    `config.q_range_floor`, so that tiny differences are not blown up), then sigma(q) = (c_visit + max visits) *
    c_scale * q. Unlike visit counts, this target moves away from the prior even when a few simulations per world
    cannot separate the moves by visits.
    """
    legal = found.legal
    n = found.visits
    q = torch.where(n > 0, found.wsum / n.clamp(min=1), found.value.view(-1, 1).expand_as(n))
    big = torch.finfo(q.dtype).max
    q_min = torch.where(legal, q, big).amin(1, keepdim=True)
    q_max = torch.where(legal, q, -big).amax(1, keepdim=True)
    q_hat = (q - q_min) / (q_max - q_min).clamp(min=config.q_range_floor)
    sigma = (config.c_visit + n.amax(1, keepdim=True)) * config.c_scale * q_hat
    logits = torch.where(legal, torch.log(found.prior.clamp(min=1e-8)) + sigma, float("-inf"))
    return torch.softmax(logits, dim=1)


def policy_target(found: MoveSearch, config: SearchConfig) -> torch.Tensor:
    """[n, 7] the training target of each searched move, summing to 1 over its legal slots."""
    if config.policy_target == "improved":
        return improved_policy(found, config)
    return found.visits / found.visits.sum(1, keepdim=True).clamp(min=1)


class TreeReuse:
    """Each game's last clairvoyant search tree, kept to continue from in the game's next search.

    The trees are indexed by game number. `take` walks each game's tree down the plays made since it was searched
    (from the state's history) and checks that the node reached holds exactly the game's state, so a tree is only
    reused for the game it was searched in; anything else (a new deal, a move outside the tree) starts fresh.
    Memory: one tree of `max_nodes` nodes per game.
    """

    def __init__(self) -> None:
        self.trees: Tree | None = None
        self.reused = 0  # searches that started from a kept subtree
        self.reused_visits = 0.0  # root visits they started with

    def take(self, state: GameState, games: torch.Tensor, n_max: int) -> Tree | None:
        """Trees rooted at `state`'s games `games` (empty where none fits), or None when nothing is kept."""
        if self.trees is None or self.trees.n_max != n_max:
            return None
        device = state.device
        known = games < self.trees.trees
        tree = self.trees.select(games.clamp(max=self.trees.trees - 1))
        t_count, n = games.numel(), n_max
        node = torch.arange(t_count, device=device) * n
        ok = known & (tree.count > 0)
        start = tree.store.n_plays[node]
        now = state.n_plays[games]
        ok &= now >= start
        for step in range(int((now - start).clamp(min=0).max()) if t_count else 0):
            walk = ok & (start + step < now)
            if not bool(walk.any()):
                break
            played = state.history[games, (start + step).clamp(max=N_PLAYS - 1)]
            hand = tree.store.hands[node, tree.store.current[node]]  # [T, 7] of the mover at each node
            match = hand == played.view(-1, 1)
            nxt = tree.child[node, match.long().argmax(1)]
            ok &= ~walk | (match.any(1) & (nxt >= 0))
            node = torch.where(walk & ok, nxt, node)
        same = ok.clone()
        for f in fields(state):
            a, b = getattr(tree.store, f.name)[node], getattr(state, f.name)[games]
            same &= (a == b).view(t_count, -1).all(1)
        new_root = torch.where(same, node, torch.full_like(node, -1))
        if not bool(same.any()):
            return None
        out = tree.reroot(new_root)
        self.reused += int(same.sum())
        self.reused_visits += float(out.visits[torch.arange(t_count, device=device) * n][same].sum())
        return out

    def keep(self, games: torch.Tensor, tree: Tree) -> None:
        """Remember `tree` (one tree per entry of `games`) as those games' trees."""
        need = int(games.max()) + 1
        if self.trees is None or self.trees.n_max != tree.n_max or self.trees.trees < need:
            old = self.trees
            template = tree.store.index(torch.zeros(need, dtype=torch.int64, device=games.device))
            self.trees = Tree.empty(template, tree.n_max)
            if old is not None and old.n_max == tree.n_max:
                self.trees.put(torch.arange(old.trees, device=games.device), old)
        self.trees.put(games, tree)


def search_moves(
    state: GameState,
    games: torch.Tensor,
    evaluator: Evaluator,
    config: SearchConfig,
    rng: random.Random,
    gen: torch.Generator | None = None,
    root_noise: bool = False,
    reuse: TreeReuse | None = None,
) -> MoveSearch:
    """Search the position of the seat to move in each game of `games` (none finished).

    `reuse` (clairvoyant only; ignored otherwise) continues each game's previous tree where it still applies.
    """
    k = config.trees_per_game
    roots = state.index(games) if config.clairvoyant else sample_worlds(state, games, k, rng)
    reuse = reuse if config.clairvoyant and config.reuse_tree else None
    tree = reuse.take(state, games, config.max_nodes) if reuse is not None else None
    result = search(roots, evaluator, config, config.sims_per_tree, root_noise=root_noise, gen=gen, tree=tree)
    if reuse is not None and result.tree is not None:
        reuse.keep(games, result.tree)
    n = games.numel()
    return MoveSearch(
        visits=result.visits.view(n, k, -1).sum(1),
        value=result.root_value.view(n, k).mean(1),
        legal=result.legal.view(n, k, -1)[:, 0],
        wsum=result.root_wsum.view(n, k, -1).sum(1),
        prior=result.root_prior.view(n, k, -1)[:, 0],
    )


class MctsPlayer:
    """Search at play time; plays the most-visited move. Forced moves are played without searching."""

    def __init__(self, evaluator: Evaluator, config: SearchConfig, seed: int = 0, name: str = "mcts") -> None:
        self.evaluator = evaluator
        self.config = config
        self.rng = random.Random(seed)
        self.name = name
        self.reuse = TreeReuse() if config.clairvoyant and config.reuse_tree else None

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        lg = legal[games]
        moves = lg.float().argmax(1)
        policy = lg.float() / lg.sum(1, keepdim=True).clamp(min=1)
        value = torch.zeros(games.numel(), device=legal.device)
        choice = lg.sum(1) > 1
        if bool(choice.any()):
            idx = choice.nonzero().flatten()
            found = search_moves(state, games[idx], self.evaluator, self.config, self.rng, reuse=self.reuse)
            slots = found.visits.argmax(1)
            hands = state.index(games[idx]).hand_of(state.current[games[idx]])
            moves[idx] = hands.gather(1, slots.view(-1, 1)).squeeze(1)
            probs = found.visits / found.visits.sum(1, keepdim=True).clamp(min=1)
            policy[idx] = torch.zeros(idx.numel(), N_DOMINOES, device=legal.device).scatter(1, hands, probs)
            value[idx] = found.value
        return Decision(moves=moves, policy=policy, value=value)
