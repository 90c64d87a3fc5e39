"""The pimc expert's speed: searched (non-forced) decisions per second on one core, over benchmark deals.

    .venv/bin/python bench/pimc.py [--worlds 16] [--games 200]

Plays `pimc:worlds=N` against random (after a warm-up that compiles the solver) and prints one line:
`pimc:worlds=N decisions/s: X`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zeb_core.match import play_match
from zeb_core.players.base import make_player
from zeb_core.players.pimc import PimcPlayer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=16)
    ap.add_argument("--games", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    random_player = make_player("random", "cpu", seed=7)
    play_match(PimcPlayer(args.worlds), random_player, 4, seed=1, device="cpu")  # compiles the solver
    pimc = PimcPlayer(args.worlds)
    t0 = time.perf_counter()
    play_match(pimc, random_player, args.games, seed=2, device="cpu")
    print(f"pimc:worlds={args.worlds} decisions/s: {pimc.decisions / (time.perf_counter() - t0):.1f}")


if __name__ == "__main__":
    main()
