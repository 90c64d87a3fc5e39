"""Exact solver of the Texas 42 play phase (perfect information): alpha-beta with a transposition table, numba.

API: `solve_points`, `points_to_come`, `can_reach`, `result_for`, `move_values`, `move_reach_values` (a contract's
target) over a `GameState` or `Positions`, and `warm_up` to compile the kernels up front.
"""

from zeb_core.solver.api import (
    WIN_POINTS,
    as_positions,
    can_reach,
    contract_targets,
    move_reach_values,
    move_values,
    points_to_come,
    result_for,
    search_nodes,
    solve_points,
    total_left,
    warm_up,
)
from zeb_core.solver.positions import Positions

__all__ = [
    "WIN_POINTS",
    "Positions",
    "as_positions",
    "can_reach",
    "contract_targets",
    "move_reach_values",
    "move_values",
    "points_to_come",
    "result_for",
    "search_nodes",
    "solve_points",
    "total_left",
    "warm_up",
]
