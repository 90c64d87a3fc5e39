"""Searching moves for a batch of games: worlds per game, one batched search, statistics summed over worlds."""

from __future__ import annotations

import random

import torch

from zeb_core.engine.state import GameState
from zeb_core.mcts.base import EvaluateFn, SearchSummary
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.reuse import TreeReuse
from zeb_core.mcts.search import search
from zeb_core.mcts.worlds import sample_search_worlds


def search_moves(
    state: GameState,
    games: torch.Tensor,
    evaluate_fn: EvaluateFn,
    config: SearchConfig,
    rng: random.Random,
    gen: torch.Generator | None = None,
    root_noise: bool = False,
    reuse: TreeReuse | None = None,
) -> SearchSummary:
    """Search the position of the seat to move in each game of `games` [G] (none finished): G summary rows.

    Each game is searched in `config.trees_per_game` trees: the true deal when clairvoyant, else deals of the
    hidden hands sampled with `rng` (weighted by the auction with `config.auction_worlds`). `reuse` (clairvoyant
    only; ignored otherwise) continues each game's previous tree where it still applies.
    """
    k = config.trees_per_game
    if config.clairvoyant:
        roots = state.index(games)
    else:
        roots = sample_search_worlds(state, games, k, rng, config.auction_worlds)
    reuse = reuse if config.clairvoyant and config.reuse_tree else None
    tree = reuse.take(state, games, config.max_nodes) if reuse is not None else None
    found = search(roots, evaluate_fn, config, config.sims_per_tree, root_noise=root_noise, gen=gen, tree=tree)
    if reuse is not None and found.tree is not None:
        reuse.keep(games, found.tree)
    return found.over_worlds(k)
