"""A searching player's speed: searched (non-forced) decisions per second on one core, over benchmark deals.

    .venv/bin/python bench/pimc.py [--worlds 16] [--games 200]
    .venv/bin/python bench/pimc.py --player rollout:path=WEIGHTS[,worlds=16] [--games 100]

Plays `pimc:worlds=N` (or `--player SPEC`, any player that counts its `decisions`: pimc, rollout) against random,
after a warm-up that compiles the solver, and prints one line: `SPEC decisions/s: X`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zeb_core.evaluation.match import play_match
from zeb_core.players.base import make_player


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=16)
    ap.add_argument("--player", help="a player spec instead of pimc:worlds=N (it must count its decisions)")
    ap.add_argument("--games", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = args.player or f"pimc:worlds={args.worlds}"
    random_player = make_player("random", "cpu", seed=7)
    play_match(make_player(spec, "cpu", seed=0), random_player, 4, seed=1, device="cpu")  # compiles the solver
    player = make_player(spec, "cpu", seed=0)
    if not hasattr(player, "decisions"):
        ap.error(f"{spec} does not count its searched decisions")
    t0 = time.perf_counter()
    play_match(player, random_player, args.games, seed=2, device="cpu")
    print(f"{spec} decisions/s: {player.decisions / (time.perf_counter() - t0):.1f}")


if __name__ == "__main__":
    main()
