"""Self-play games/s with batched MCTS, and the share of time in the network forward.

Defaults are setting (a) of the self-play issue: medium model, 64 parallel games, 50 simulations, 128 max nodes.
Setting (b): --setting b (256 parallel games, 200 simulations, 512 max nodes; meant for a GPU: --device cuda; on a
CPU it takes long: --setting b --batches 1 --parallel-games 32 for a smaller run). Explicit flags override a setting.
Run: .venv/bin/python bench/selfplay.py [--setting a|b] [--parallel-games N] [--sims N] [--max-nodes N]
     [--size medium] [--device cpu|cuda|auto] [--worlds 4] [--clairvoyant] [--batches 1]
     [--eval-cache 0|1] [--reuse-tree 0|1]
Prints games/s, the share of time in the network forward, examples/s and the observation cache's hit rate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.mcts import Evaluator, SearchConfig
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.selfplay.games import play_selfplay

SETTINGS = {"a": (64, 50, 128), "b": (256, 200, 512)}  # parallel games, simulations, max nodes
REFERENCE_CPU_GAMES_PER_S = 1.2  # mk5-main forge/zeb batched pipeline forced onto CPU, setting (a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="a")
    parser.add_argument("--parallel-games", type=int, default=None)
    parser.add_argument("--sims", type=int, default=None)
    parser.add_argument("--max-nodes", type=int, default=None)
    parser.add_argument("--size", default="medium")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worlds", type=int, default=SearchConfig.worlds)
    parser.add_argument("--clairvoyant", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=1, help="timed batches after one warm-up batch")
    parser.add_argument("--eval-cache", type=int, choices=(0, 1), default=int(SearchConfig.eval_cache))
    parser.add_argument("--reuse-tree", type=int, choices=(0, 1), default=int(SearchConfig.reuse_tree))
    args = parser.parse_args()
    for name, value in zip(("parallel_games", "sims", "max_nodes"), SETTINGS[args.setting]):
        if getattr(args, name) is None:
            setattr(args, name, value)
    setup(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    torch.manual_seed(0)
    evaluator = Evaluator(ZebNet(ModelConfig.preset(args.size)), device)
    config = SearchConfig(
        simulations=args.sims,
        max_nodes=args.max_nodes,
        worlds=args.worlds,
        clairvoyant=args.clairvoyant,
        eval_cache=bool(args.eval_cache),
        reuse_tree=bool(args.reuse_tree),
    )
    play_selfplay(evaluator, min(8, args.parallel_games), config, seed=99, device=device)  # warm-up
    games = seconds = forward = 0.0
    examples = lookups = hits = 0
    for i in range(args.batches):
        batch = play_selfplay(evaluator, args.parallel_games, config, seed=i, device=device)
        games += batch.games
        seconds += batch.seconds
        forward += batch.stats["forward_seconds"]
        examples += batch.examples
        lookups += batch.stats["cache_lookups"]
        hits += batch.stats["cache_hits"]
    print(f"games/s: {games / seconds:.2f}")
    print(f"forward share: {forward / seconds:.0%}")
    print(f"examples/s: {examples / seconds:.1f}")
    print(f"cache hit rate: {hits / max(1, lookups):.1%} ({hits} of {lookups} distinct observations)")
    print(f"reference CPU games/s (setting a): {REFERENCE_CPU_GAMES_PER_S}")


if __name__ == "__main__":
    main()
