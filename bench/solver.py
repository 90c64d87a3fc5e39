"""Speed of the exact play-phase solver (one core): exact points and the benchmark threshold.

For random benchmark deals at the first lead, at the start of trick 3 and of trick 5 (reached by random legal
play), prints one figure per line: solves/s over the whole batch, and the median and 90th percentile of one
solve (each timed alone, Python call included), for the exact points and for the threshold "can the leader's
team reach 22?". Run: .venv/bin/python bench/solver.py [--deals 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.solver import (
    WIN_POINTS,
    Positions,
    can_reach,
    points_to_come,
    search_nodes,
    warm_up,
)

STAGES = (("first lead", 0), ("trick 3", 8), ("trick 5", 16))


def positions_at(deals: int, plays: int, seed: int) -> Positions:
    gen = make_generator(seed)
    state = deal_benchmark(deals, gen)
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(
            torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1),
            check=True,
        )
    return Positions.from_state(state)


def rows(p: Positions) -> list[Positions]:
    return [p.take(np.array([i])) for i in range(len(p))]


def timed(what: str, items: list[Positions]) -> np.ndarray:
    """Seconds of each solve of one position alone."""
    out = np.empty(len(items))
    for i, q in enumerate(items):
        start = time.perf_counter()
        if what == "exact":
            points_to_come(q)
        else:
            can_reach(q, q.current % 2, WIN_POINTS)
        out[i] = time.perf_counter() - start
    return out


def report(stage: str, what: str, batch_s: float, singles: np.ndarray, nodes: int) -> None:
    n = len(singles)
    print(f"{stage} {what} solves/s: {n / batch_s:,.0f}")
    print(f"{stage} {what} median ms: {1e3 * np.median(singles):.3f}")
    print(f"{stage} {what} p90 ms: {1e3 * np.percentile(singles, 90):.3f}")
    print(f"{stage} {what} nodes per solve: {nodes / n:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    warm_up()
    print(f"compile s: {time.perf_counter() - start:.1f}")
    for stage, plays in STAGES:
        p = positions_at(args.deals, plays, args.seed)
        singles = rows(p)
        team = p.current % 2
        for what in ("exact", "threshold"):
            n0 = search_nodes()
            t0 = time.perf_counter()
            if what == "exact":
                points_to_come(p)
            else:
                can_reach(p, team, WIN_POINTS)
            batch_s = time.perf_counter() - t0
            nodes = search_nodes() - n0
            report(stage, what, batch_s, timed(what, singles), nodes)
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
