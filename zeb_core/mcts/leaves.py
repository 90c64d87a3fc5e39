"""Values of new leaves: a finished hand's result, the exact solver's value near the end, the evaluator's otherwise.

Values travel from team 0's point of view (`v0`); backup signs them for each node's mover. A leaf with at most
`SearchConfig.solve_plays` plays left takes its exact value from the play-phase solver (`zeb_core.solver`) and is
stored as terminal, never expanded: the endgame tablebase of the search.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from zeb_core.engine.state import HAND_SIZE, N_PLAYS, GameState, points_value
from zeb_core.mcts.base import EvaluateFn
from zeb_core.mcts.config import SearchConfig


class LeafValues(NamedTuple):
    """The values of m new leaves, and what a node stored for each needs."""

    v0: torch.Tensor  # [m] value for team 0
    exact: torch.Tensor  # [m] bool: finished or solved (stored as terminal, never expanded)
    prior: torch.Tensor  # [m, 7] the evaluator's prior (zeros where exact)
    legal: torch.Tensor  # [m, 7] bool legal slots (all False where exact)


def team0(value: torch.Tensor, mover: torch.Tensor) -> torch.Tensor:
    """[n] a value for seat `mover` [n] seen from team 0 (seats 0 and 2)."""
    return torch.where(mover % 2 == 0, value, -value)


def exact_team0_values(states: GameState, target: str) -> torch.Tensor:
    """[n] the exact value for team 0 under best play by both teams (the solver), for `target`."""
    from zeb_core.solver import can_reach, result_for, solve_points

    if target == "points":
        return torch.as_tensor(result_for(states, 0), dtype=torch.float32)
    if target == "contract-sign":  # one null-window search at the bid, as the solver teacher labels it
        bidder_team = (states.bidder % 2).cpu().numpy()
        made = can_reach(states, bidder_team, states.bid.cpu().numpy())
        return torch.as_tensor(np.where(made == (bidder_team == 0), 1.0, -1.0), dtype=torch.float32)
    pts = torch.as_tensor(solve_points(states), dtype=torch.float32)
    if target == "points-margin":
        return points_value(pts[:, 0] - pts[:, 1], target)
    final = states.clone()  # contract: the bidder's result with the solved final points
    final.team_points = pts.to(final.team_points)
    return final.target_values(target)[:, 0].cpu()


def leaf_values(leaves: GameState, evaluate: EvaluateFn, config: SearchConfig) -> LeafValues:
    """Values of m new leaf states: exact where the hand is over or short enough to solve, else evaluated."""
    device = leaves.device
    m = leaves.batch_size
    done = leaves.done()
    v0 = torch.zeros(m, device=device)
    if bool(done.any()):
        v0[done] = leaves.target_values(config.value_target)[done][:, 0]
    solved = ~done & (N_PLAYS - leaves.n_plays <= config.solve_plays)
    if bool(solved.any()):
        idx = solved.nonzero().flatten()
        v0[idx] = exact_team0_values(leaves.index(idx), config.value_target).to(device)
        done = done | solved
    live = (~done).nonzero().flatten()
    prior = torch.zeros(m, HAND_SIZE, device=device)
    legal = torch.zeros(m, HAND_SIZE, dtype=torch.bool, device=device)
    if live.numel():
        sub = leaves.index(live)
        p_live, value, l_live = evaluate(sub)
        prior[live], legal[live] = p_live, l_live
        v0[live] = team0(value, sub.current)
    return LeafValues(v0=v0, exact=done, prior=prior, legal=legal)
