"""The calibration of the baseline bidder's formula (zeb_core/fullgame/bidders/baseline.py) against the solver.

Deals random hands; for every declaration solves the deal exactly (`solve_points`, the bidder's seat leading, one
deal per hand) and fits, by least squares, the bidder's team's points on the baseline's features (trumps, holds
the top trump, other doubles, count held) per family: pip suits, doubles-trump, no-trump. Prints the fitted
coefficients, then how the baseline's rounded formula is calibrated: per band of its estimate, the hands, the
solver's mean points and the share making the estimate; with `--player SPEC` the same hands are also played out
by that play-phase player (all four seats) with the baseline's declaration, to see how much less real play takes.
Run: .venv/bin/python bench/baseline_fit.py [--hands 2600] [--seed 2] [--player heuristic]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.engine.dominoes import N_DECLS
from zeb_core.engine.state import GameState
from zeb_core.evaluation.match import play_games
from zeb_core.fullgame.bidders.baseline import DOUBLES_TRUMP, NO_TRUMP, estimate_points, hand_features
from zeb_core.players.base import make_player
from zeb_core.solver import solve_points, warm_up

FAMILIES = {"pip suits": list(range(7)), "doubles-trump": [DOUBLES_TRUMP], "no-trump": [NO_TRUMP]}
BANDS = ((0, 30), (30, 34), (34, 38), (38, 42), (42, 99))


def solved_points(hands: np.ndarray) -> np.ndarray:
    """[n, 10] the bidder's (seat 0) team's points under perfect play, for every declaration."""
    n = len(hands)
    rows = torch.from_numpy(hands).repeat_interleave(N_DECLS, 0)
    decl = torch.arange(N_DECLS).repeat(n)
    zero = torch.zeros(len(decl), dtype=torch.int64)
    return solve_points(GameState.from_deal(rows, decl, zero, zero + 30))[:, 0].reshape(n, N_DECLS)


def fit(hands: np.ndarray, points: np.ndarray) -> None:
    f = hand_features(hands[:, 0])
    for family, decls in FAMILIES.items():
        cols = [f["trumps"][:, decls], f["top"][:, decls], f["doubles"][:, decls]]
        x = np.stack([np.ones_like(cols[0]), *cols, np.repeat(f["count"][:, None], len(decls), 1)], -1)
        x = x.reshape(-1, 5).astype(float)
        keep = x.std(0) > 0
        keep[0] = True
        coef, *_ = np.linalg.lstsq(x[:, keep], points[:, decls].reshape(-1).astype(float), rcond=None)
        names = np.array(["1", "trumps", "top", "other doubles", "count"])[keep]
        print(f"fit {family}: " + " + ".join(f"{c:.2f} x {n}" for c, n in zip(coef, names, strict=True)))


def calibration(name: str, estimate: np.ndarray, points: np.ndarray) -> None:
    for lo, hi in BANDS:
        m = (estimate >= lo) & (estimate < hi)
        made = np.mean(points[m] >= np.clip(np.floor(estimate[m]), 30, 42)) if m.any() else float("nan")
        print(f"{name} estimate {lo}..{hi}: hands {m.sum()}, mean points {points[m].mean():.1f}, makes it {made:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=2600)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--player", default="", help="also play the hands out with this player spec")
    args = parser.parse_args()
    setup(1)
    warm_up()
    gen = torch.Generator().manual_seed(args.seed)
    hands = torch.rand(args.hands, 28, generator=gen).argsort(1).view(-1, 4, 7).numpy()
    start = time.perf_counter()
    points = solved_points(hands)
    print(f"solved {points.size} deals in {time.perf_counter() - start:.0f} s")
    fit(hands, points)
    est = estimate_points(hands[:, 0])
    best = est.argmax(1)
    best_est = est.max(1)
    calibration("solver", best_est, points[np.arange(len(hands)), best])
    if args.player:
        player = make_player(args.player)
        zero = torch.zeros(len(hands), dtype=torch.int64)
        state = GameState.from_deal(torch.from_numpy(hands), torch.from_numpy(best), zero, zero + 30)
        played = play_games(state, (player, player), zero).team_points[:, 0].numpy()
        calibration(args.player, best_est, played)


if __name__ == "__main__":
    main()
