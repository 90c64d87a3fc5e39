"""Searching moves for a batch of games: worlds per game, one batched search, visits summed over worlds."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import GameState
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.search import Evaluator, search
from zeb_core.mcts.worlds import sample_worlds
from zeb_core.players.base import Decision


@dataclass
class MoveSearch:
    visits: torch.Tensor  # [n, 7] root visits per hand slot, summed over worlds
    value: torch.Tensor  # [n] mean root value for the seat to move
    legal: torch.Tensor  # [n, 7]


def search_moves(
    state: GameState,
    games: torch.Tensor,
    evaluator: Evaluator,
    config: SearchConfig,
    rng: random.Random,
    gen: torch.Generator | None = None,
    root_noise: bool = False,
) -> MoveSearch:
    """Search the position of the seat to move in each game of `games` (none finished)."""
    k = config.trees_per_game
    roots = state.index(games) if config.clairvoyant else sample_worlds(state, games, k, rng)
    result = search(roots, evaluator, config, config.sims_per_tree, root_noise=root_noise, gen=gen)
    n = games.numel()
    return MoveSearch(
        visits=result.visits.view(n, k, -1).sum(1),
        value=result.root_value.view(n, k).mean(1),
        legal=result.legal.view(n, k, -1)[:, 0],
    )


class MctsPlayer:
    """Search at play time; plays the most-visited move. Forced moves are played without searching."""

    def __init__(self, evaluator: Evaluator, config: SearchConfig, seed: int = 0, name: str = "mcts") -> None:
        self.evaluator = evaluator
        self.config = config
        self.rng = random.Random(seed)
        self.name = name

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        lg = legal[games]
        moves = lg.float().argmax(1)
        policy = lg.float() / lg.sum(1, keepdim=True).clamp(min=1)
        value = torch.zeros(games.numel(), device=legal.device)
        choice = lg.sum(1) > 1
        if bool(choice.any()):
            idx = choice.nonzero().flatten()
            found = search_moves(state, games[idx], self.evaluator, self.config, self.rng)
            slots = found.visits.argmax(1)
            hands = state.index(games[idx]).hand_of(state.current[games[idx]])
            moves[idx] = hands.gather(1, slots.view(-1, 1)).squeeze(1)
            probs = found.visits / found.visits.sum(1, keepdim=True).clamp(min=1)
            policy[idx] = torch.zeros(idx.numel(), N_DOMINOES, device=legal.device).scatter(1, hands, probs)
            value[idx] = found.value
        return Decision(moves=moves, policy=policy, value=value)
