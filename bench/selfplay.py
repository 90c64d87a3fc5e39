"""Self-play games/s with batched MCTS, and the share of time in the network forward.

Defaults are setting (a) of the self-play issue: medium model, 64 parallel games, 50 simulations, 128 max nodes.
Setting (b): --parallel-games 256 --sims 200 --max-nodes 512 (meant for a GPU: --device cuda).
Run: .venv/bin/python bench/selfplay.py [--parallel-games 64] [--sims 50] [--max-nodes 128] [--size medium]
     [--device cpu] [--worlds 4] [--clairvoyant]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup  # noqa: E402

from zeb_core.mcts import Evaluator, SearchConfig  # noqa: E402
from zeb_core.model import ModelConfig, ZebNet  # noqa: E402
from zeb_core.selfplay import play_selfplay  # noqa: E402

REFERENCE_CPU_GAMES_PER_S = 1.2  # mk5-main forge/zeb batched pipeline forced onto CPU, setting (a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel-games", type=int, default=64)
    parser.add_argument("--sims", type=int, default=50)
    parser.add_argument("--max-nodes", type=int, default=128)
    parser.add_argument("--size", default="medium")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worlds", type=int, default=SearchConfig.worlds)
    parser.add_argument("--clairvoyant", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=1, help="timed batches after one warm-up batch")
    args = parser.parse_args()
    setup(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    torch.manual_seed(0)
    evaluator = Evaluator(ZebNet(ModelConfig.preset(args.size)), device)
    config = SearchConfig(
        simulations=args.sims, max_nodes=args.max_nodes, worlds=args.worlds, clairvoyant=args.clairvoyant
    )
    play_selfplay(evaluator, min(8, args.parallel_games), config, seed=99, device=device)  # warm-up
    games = seconds = forward = 0.0
    examples = 0
    for i in range(args.batches):
        batch = play_selfplay(evaluator, args.parallel_games, config, seed=i, device=device)
        games += batch.games
        seconds += batch.seconds
        forward += batch.stats["forward_seconds"]
        examples += batch.examples
    print(f"games/s: {games / seconds:.2f}")
    print(f"forward share: {forward / seconds:.0%}")
    print(f"examples/s: {examples / seconds:.1f}")
    print(f"reference CPU games/s (setting a): {REFERENCE_CPU_GAMES_PER_S}")


if __name__ == "__main__":
    main()
