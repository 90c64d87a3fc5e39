"""Random vs random games/s of the batched engine on CPU at several batch sizes.

Prints one line per batch size, `batch N games/s: X`, then the reference CLI's figure for comparison.
Run: .venv/bin/python bench/engine.py [--batches 1 64 1024 4096] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_rate, setup

from zeb_core.engine import deal_benchmark, make_generator

REFERENCE_CLI_GAMES_PER_S = 470  # jasonyandell/mk5-main forge/zeb CLI, heuristic vs random, these machines


def run_batch(batch: int, games: int, device: str) -> int:
    gen = make_generator(0, device)
    done = 0
    while done < games:
        state = deal_benchmark(batch, gen, device)
        while not bool(state.done().all()):
            legal = state.legal_mask()
            noise = torch.rand(legal.shape, generator=gen, device=device)
            state.apply(torch.where(legal, noise, -1.0).argmax(1), check=False)
        done += batch
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup(args.threads)
    for batch in args.batches:
        games = max(batch, min(8192, 64 * batch))
        rate = best_rate(lambda: run_batch(batch, games, args.device))  # noqa: B023 - called at once
        print(f"batch {batch} games/s: {rate:,.0f}")
    print(f"reference CLI games/s: {REFERENCE_CLI_GAMES_PER_S}")


if __name__ == "__main__":
    main()
