"""The solver's Python API: exact points, threshold tests and move values for batches of positions.

Every function takes a `GameState` (any batch, any device) or `Positions` and works on CPU numpy arrays.
Results are *final* team points (the finished tricks' points included). Importing compiles the search and the
first call the batch kernels (about ten seconds together); `warm_up()` does it up front. The batch kernels release
the GIL and each thread has its own tables (8 MiB), so a search in one thread never stops the others (`zeb serve`).
"""

from __future__ import annotations

import threading

import numpy as np

from zeb_core.engine.state import GameState
from zeb_core.solver import batch
from zeb_core.solver.positions import Positions
from zeb_core.solver.search import W_NODES, Tables
from zeb_core.solver.tables import BITS

WIN_POINTS = batch.WIN  # more than 21 of the 42 points wins the hand
_local = threading.local()  # each thread's Tables: the kernels run without the GIL, so they must not share them


def _tabs() -> tuple:
    if getattr(_local, "tables", None) is None:
        _local.tables = Tables()
    return _local.tables.tuple()


def as_positions(x: GameState | Positions) -> Positions:
    return x if isinstance(x, Positions) else Positions.from_state(x)


def _args(p: Positions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The position arrays as the kernels take them (int64, contiguous: one compiled version)."""
    c = lambda a: np.ascontiguousarray(a, dtype=np.int64)
    return c(p.hands), c(p.decl), c(p.leader), c(p.trick), c(p.n_trick)


def _per_row(x: int | np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.int64), (n,)))


def points_to_come(x: GameState | Positions) -> np.ndarray:
    """[B] int64 team 0's points from the position to the end of the hand under best play by both teams."""
    p = as_positions(x)
    out = np.zeros(len(p), dtype=np.int64)
    batch.exact_batch(*_args(p), _per_row(-1, len(p)), _tabs(), out)
    return out


def solve_points(x: GameState | Positions) -> np.ndarray:
    """[B, 2] int64 the points each team ends the hand with under best play (each team maximises its own)."""
    p = as_positions(x)
    to_come = points_to_come(p)
    left = total_left(p)
    return p.points + np.stack([to_come, left - to_come], axis=1)


def total_left(x: GameState | Positions) -> np.ndarray:
    """[B] int64 the points not yet scored (42 minus the finished tricks' points)."""
    p = as_positions(x)
    return 42 - p.points.sum(1)


def can_reach(x: GameState | Positions, team: int | np.ndarray, target: int | np.ndarray) -> np.ndarray:
    """[B] bool: whether `team` (0/1, per row or for all) can end the hand with at least `target` points.

    A null-window search, much cheaper than the exact points: `can_reach(p, t, 22)` is whether team t wins.
    """
    p = as_positions(x)
    team = _per_row(team, len(p))
    need = _per_row(target, len(p)) - p.points[np.arange(len(p)), team]
    out = np.zeros(len(p), dtype=np.bool_)
    batch.reaches_batch(*_args(p), team, need, _tabs(), out)
    return out


def result_for(x: GameState | Positions, team: int | np.ndarray) -> np.ndarray:
    """[B] int64 the benchmark result for `team` under best play: +1 win (> 21 points), 0 a 21-21 tie, -1 loss.

    One search per position, with the two-point window around 21.
    """
    p = as_positions(x)
    team = _per_row(team, len(p))
    mine = np.ascontiguousarray(p.points[np.arange(len(p)), team], dtype=np.int64)
    out = np.zeros(len(p), dtype=np.int64)
    batch.outcome_batch(*_args(p), team, mine, _tabs(), out)
    return out


def move_values(x: GameState | Positions, objective: str = "points", only: np.ndarray | None = None) -> np.ndarray:
    """[B, 28] float64 the value of each legal move of the seat to move, NaN on the other dominoes.

    objective "points": the final points of the mover's team after the move and best play by both teams;
    "win": +1 / 0 / -1 as that team ends with more than 21 / exactly 21 / fewer (two threshold searches).
    only: optional [B, 28] bool, the moves to value (the others are NaN too).
    """
    if objective not in ("points", "win"):
        raise ValueError(f"objective must be 'points' or 'win', got {objective!r}")
    mode = batch.MOVE_WIN if objective == "win" else batch.MOVE_POINTS
    return _move_values(as_positions(x), mode, 0, only)


def move_reach_values(x: GameState | Positions, target: int | np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
    """[B, 28] float64 +1 / -1 per legal move of the seat to move: whether after it the mover's team can still end
    the hand with at least `target` points (per row or for all) under best play; NaN on the other dominoes.

    The objective of a real contract: the bidder's team needs the bid, the defenders 43 minus it (the bid
    fails). One null-window search per move, as cheap as the benchmark's threshold.
    """
    return _move_values(as_positions(x), batch.MOVE_REACH, target, only)


def _move_values(p: Positions, mode: int, target: int | np.ndarray, only: np.ndarray | None) -> np.ndarray:
    """[B, 28] move_values_batch in `mode` over the moves in `only` (all legal moves by default), NaN elsewhere."""
    out = np.full((len(p), 28), np.nan)
    mask = np.full(len(p), (1 << 28) - 1, dtype=np.int64) if only is None else np.asarray(only, bool) @ BITS
    points = np.ascontiguousarray(p.points, dtype=np.int64)
    args = (*_args(p), points, np.ascontiguousarray(mask, dtype=np.int64), mode, _per_row(target, len(p)))
    batch.move_values_batch(*args, _tabs(), out)
    return out


def contract_targets(state: GameState) -> np.ndarray:
    """[B] int64 the final points the mover's team needs under the hand's contract: the bid (state.bid, in points)
    for the bidder's team, 43 minus it for the defenders (the bidder then ends below the bid)."""
    bid = state.bid.cpu().numpy().astype(np.int64)
    bidder_side = (state.current % 2 == state.bidder % 2).cpu().numpy()
    return np.where(bidder_side, bid, 43 - bid)


def search_nodes() -> int:
    """Nodes searched by this thread so far (for benchmarks)."""
    tables = getattr(_local, "tables", None)
    return int(tables.work[W_NODES]) if tables is not None else 0


def warm_up() -> None:
    """Compile every kernel now (once per process), on a tiny position."""
    from zeb_core.engine.deal import deal_benchmark, make_generator

    p = Positions.from_state(deal_benchmark(1, make_generator(0)))
    p.hands &= np.int64(0)  # an empty (finished) position compiles the kernels without searching
    solve_points(p)
    can_reach(p, 0, 22)
    result_for(p, 0)
    move_values(p, "win")
    move_values(p, "points")
    move_reach_values(p, 22)
