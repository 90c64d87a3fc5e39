"""pimc variants that value each world by its margin as well as its result, kept to reproduce figures that did not
help (docs/strength.md, "What did not help pimc").

- `soft:TAU`: each world scores tanh((final points of the mover's team - 21) / TAU) (exact points for every legal
  move) instead of +1 / 0 / -1; a small share of the mean points breaks exact ties.
- `tiebreak:TAU`: plain pimc (the +1 / 0 / -1 mean), but moves tied on it go to the mean tanh((points - 21) / TAU)
  rather than to the mean points: near 21 a point counts more than far from it.

Plays the variant with `--worlds` worlds against `--opponent` on the deals of `zeb eval ... --seed SEED` (the same
deals and opponent seed) and prints one line: the win rate with its 95% interval and decisions/s.

    .venv/bin/python bench/pimc_variants.py soft:4 [--games 2000] [--seed 20000000] [--opponent random]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import GameState
from zeb_core.evaluation.match import play_match
from zeb_core.evaluation.strength import rate_text
from zeb_core.players.base import make_player
from zeb_core.players.pimc import PimcPlayer
from zeb_core.solver import Positions, move_values


def margin_score(points: np.ndarray, tau: float) -> np.ndarray:
    """tanh((points - 21) / tau): +1 / -1 far from 21 points, about linear within tau of it."""
    return np.tanh((points - 21.0) / tau)


class MarginPimc(PimcPlayer):
    """pimc with a margin scale `tau`; subclasses say where the margin-shaped score enters."""

    label = ""

    def __init__(self, worlds: int, tau: float, seed: int) -> None:
        super().__init__(worlds, seed=seed)
        self.tau, self.name = tau, f"pimc(worlds={worlds}, {self.label} tau={tau:g})"


class SoftPimc(MarginPimc):
    """pimc whose worlds score the margin-shaped result instead of +1 / 0 / -1."""

    label = "soft"

    def _mean_values(self, state: GameState, games: torch.Tensor, legal: np.ndarray) -> np.ndarray:
        w = self.worlds
        points = move_values(Positions.from_state(self._sample(state, games)), "points")
        points = points.reshape(len(games), w, N_DOMINOES)
        return margin_score(points, self.tau).mean(1) + 1e-6 * points.mean(1)


class MarginTiebreakPimc(MarginPimc):
    """pimc whose exact ties go to the mean margin-shaped result rather than the mean points."""

    label = "tiebreak tanh"

    def _tied_points_score(self, points: np.ndarray) -> np.ndarray:
        return margin_score(points, self.tau).mean(1) + 1e-4 * points.mean(1)


VARIANTS: dict[str, type[MarginPimc]] = {"soft": SoftPimc, "tiebreak": MarginTiebreakPimc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", help="soft:TAU or tiebreak:TAU")
    ap.add_argument("--worlds", type=int, default=16)
    ap.add_argument("--games", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20_000_000)
    ap.add_argument("--opponent", default="random")
    args = ap.parse_args()
    kind, _, tau = args.variant.partition(":")
    if kind not in VARIANTS or not tau:
        ap.error(f"variant must be soft:TAU or tiebreak:TAU, got {args.variant!r}")
    torch.set_num_threads(1)
    player = VARIANTS[kind](args.worlds, float(tau), args.seed)
    opponent = make_player(args.opponent, "cpu", args.seed + 1)  # as `zeb eval A vs B --seed S` seeds B
    start = time.perf_counter()
    r = play_match(player, opponent, args.games, args.seed)
    rate = player.decisions / (time.perf_counter() - start)
    print(f"{player.name} vs {args.opponent}: {rate_text(r)} over {r.games} games, {rate:.0f} decisions/s")


if __name__ == "__main__":
    main()
