"""Subtree reuse between the searches of one game, for clairvoyant search only.

There the tree searched for a move holds the true states that follow it, so the next search of the same game can
start from the node of the moves played since. With sampled worlds it cannot: each search deals the hidden hands
anew, and a node's state (and so every edge's statistics) belongs to the deal it was searched in.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.mcts.tree import NO_CHILD, NO_NODE, Tree


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
        """Trees rooted at `state`'s games `games` [G] (empty where none fits), or None when nothing is kept."""
        if self.trees is None or self.trees.n_max != n_max:
            return None
        known = games < self.trees.trees
        tree = self.trees.select(games.clamp(max=self.trees.trees - 1))
        t_count = games.numel()
        node = tree.root_rows
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
            ok &= ~walk | (match.any(1) & (nxt != NO_CHILD))
            node = torch.where(walk & ok, nxt, node)
        same = ok & ~tree.terminal[node]  # a solved node has no edges: as a root it would give no policy target
        for f in fields(state):
            a, b = getattr(tree.store, f.name)[node], getattr(state, f.name)[games]
            same &= (a == b).view(t_count, -1).all(1)
        new_root = torch.where(same, node, torch.full_like(node, NO_NODE))
        if not bool(same.any()):
            return None
        out = tree.reroot(new_root)
        self.reused += int(same.sum())
        self.reused_visits += float(out.visits[out.root_rows][same].sum())
        return out

    def keep(self, games: torch.Tensor, tree: Tree) -> None:
        """Remember `tree` (one tree per entry of `games` [G]) as those games' trees."""
        need = int(games.max()) + 1
        if self.trees is None or self.trees.n_max != tree.n_max or self.trees.trees < need:
            old = self.trees
            template = tree.store.index(torch.zeros(need, dtype=torch.int64, device=games.device))
            self.trees = Tree.empty(template, tree.n_max)
            if old is not None and old.n_max == tree.n_max:
                self.trees.put(torch.arange(old.trees, device=games.device), old)
        self.trees.put(games, tree)
