"""A model's strength table: win rates with 95% intervals vs random, heuristic and (optionally) the pimc expert.

    .venv/bin/python bench/strength.py runs/default/weights/model-best.safetensors [--games 4000] [--pimc-games 400]

Prints one line per opponent: `vs OPPONENT: RATE (LOW..HIGH) over N games`. The player is the network's greedy
policy (no search) unless --player gives another spec (then WEIGHTS may be omitted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from zeb_core.evaluation.strength import BASELINES, EXPERT, REPORT_SEED, benchmark, rate_text
from zeb_core.players.base import make_player


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="?", help="a checkpoint folder or NAME.safetensors")
    ap.add_argument("--player", help="a player spec instead of policy:path=WEIGHTS")
    ap.add_argument("--games", type=int, default=4000, help="games vs random and vs heuristic")
    ap.add_argument("--pimc-games", type=int, default=0, help=f"games vs {EXPERT} (0: skip; it is slow)")
    ap.add_argument("--seed", type=int, default=REPORT_SEED)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.player and not args.weights:
        ap.error("give WEIGHTS or --player SPEC")
    player = make_player(args.player or f"policy:path={args.weights}", "cpu", seed=1)
    opponents = [*BASELINES] + ([EXPERT] if args.pimc_games else [])
    results = benchmark(player, opponents, args.games, args.seed, "cpu", {EXPERT: args.pimc_games})
    for spec, r in zip(opponents, results, strict=True):
        print(f"vs {spec}: {rate_text(r)} over {r.games} games")


if __name__ == "__main__":
    main()
