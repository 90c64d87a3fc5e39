"""What the search takes and gives: the evaluator's interface and the one summary of a search.

`search` takes any `EvaluateFn`: a callable from a batch of states to (priors, values, legal slots). The network
evaluator (`mcts.evaluator.Evaluator`) is one; a test or another model can pass its own. An evaluator that can
cache its outputs for the length of one search also offers `for_search` (a `CachingEvaluateFn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch

from zeb_core.engine.state import GameState
from zeb_core.mcts.tree import Tree


class Evaluation(NamedTuple):
    """An evaluator's answer for n states."""

    prior: torch.Tensor  # [n, 7] over the hand slots of the seat to move, zero on illegal slots
    value: torch.Tensor  # [n] for the seat to move, in [-1, 1]
    legal: torch.Tensor  # [n, 7] bool legal hand slots of the seat to move


class EvaluateFn(Protocol):
    def __call__(self, states: GameState) -> Evaluation: ...


@runtime_checkable
class CachingEvaluateFn(Protocol):
    def __call__(self, states: GameState) -> Evaluation: ...

    def for_search(self, cache: bool) -> EvaluateFn:
        """The callable one search uses; with `cache`, it reuses outputs for states seen earlier in that search."""
        ...


@dataclass
class SearchSummary:
    """Root statistics of R searched positions: one per tree (`search`), or one per game over its worlds.

    Slots are the hand slots of the seat to move at the root; values are from that seat's point of view.
    """

    visits: torch.Tensor  # [R, 7] root visit counts per slot
    value: torch.Tensor  # [R] mean backed-up root value
    legal: torch.Tensor  # [R, 7] bool legal root slots
    wsum: torch.Tensor  # [R, 7] summed backed-up values per root slot (Q = wsum / visits)
    prior: torch.Tensor  # [R, 7] the evaluator's root prior, without root noise
    tree: Tree | None = None  # the searched trees (root priors without noise), to continue from

    def over_worlds(self, worlds: int) -> SearchSummary:
        """One summary per game from game-major trees (`worlds` per game): visits and W summed, values averaged.

        Legal slots and the prior are those of a game's first world: every world shares the mover's hand and
        observation, so they are the same in all of them.
        """
        n = self.visits.shape[0] // worlds
        return SearchSummary(
            visits=self.visits.view(n, worlds, -1).sum(1),
            value=self.value.view(n, worlds).mean(1),
            legal=self.legal.view(n, worlds, -1)[:, 0],
            wsum=self.wsum.view(n, worlds, -1).sum(1),
            prior=self.prior.view(n, worlds, -1)[:, 0],
        )
