"""The clairvoyant bound: pimc's rule on the true deal (it sees every hand), as a ceiling for any fair player.

    .venv/bin/python bench/clairvoyant_bound.py [--games 2000] [--opponents random heuristic]

Each move is the one with the best exact benchmark result (+1/0/-1) under best play by both teams, ties broken by
the exact final points: what `pimc:worlds=N` would play if every sampled world were the real one. Prints one line
per opponent: `clairvoyant vs OPPONENT: RATE (LOW..HIGH) over N games`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import GameState
from zeb_core.evaluation.strength import BASELINES, REPORT_SEED, benchmark, rate_text
from zeb_core.players.interface import Decision
from zeb_core.solver import Positions, move_values


class ClairvoyantPlayer:
    """Reads the true hands from the engine's state: a bound for comparison, never a player to offer."""

    name = "clairvoyant"

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        legal_np = legal[games].cpu().numpy()
        positions = Positions.from_state(state.index(games))
        win = np.nan_to_num(move_values(positions, "win"), nan=-9.0)
        points = np.nan_to_num(move_values(positions, "points"), nan=-9.0)
        moves = torch.as_tensor(np.where(legal_np, win * 100 + points, -1e9).argmax(1), dtype=torch.int64)
        return Decision(moves=moves, policy=torch.nn.functional.one_hot(moves, N_DOMINOES).float())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=2000)
    ap.add_argument("--opponents", nargs="+", default=list(BASELINES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for spec in args.opponents:
        r = benchmark(ClairvoyantPlayer(), [spec], args.games, REPORT_SEED, "cpu")[0]
        print(f"clairvoyant vs {spec}: {rate_text(r)} over {r.games} games")


if __name__ == "__main__":
    main()
