"""Policy (untrained network, greedy) vs random games/s through the match runner, per model size, on CPU.

Also prints the bare network forward rate at the match's mean sequence length, so the runner's own overhead is
visible: games/s x 14 policy decisions per game vs states/s.
Run: .venv/bin/python bench/match.py [--sizes small medium] [--games 2048]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_rate, setup

from zeb_core.evaluation.match import play_match
from zeb_core.model import init_checkpoint
from zeb_core.players import make_player

REFERENCE_MEDIUM_GAMES_PER_S = 42


def forward_rate(player, batch: int = 1024, tokens: int = 22) -> float:
    obs = torch.zeros(batch, tokens, 8, dtype=torch.int8)
    obs[:, :8, 0] = torch.tensor([1] + [2] * 7, dtype=torch.int8)
    obs[:, 8:, 0] = 3
    legal = torch.ones(batch, 7, dtype=torch.bool)

    def work() -> int:
        with torch.inference_mode():
            player.model(obs, legal)
        return batch

    return best_rate(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "medium"])
    parser.add_argument("--games", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    setup(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            init_checkpoint(size, Path(tmp) / size)
            policy = make_player(f"policy:path={Path(tmp) / size}")
            rnd = make_player("random", seed=1)

            def run(policy=policy, rnd=rnd) -> int:
                return play_match(policy, rnd, args.games, 0, args.batch_size).games

            rate = best_rate(run, repeats=2)
            print(f"{size} policy vs random games/s: {rate:,.1f}")
            print(f"{size} forward states/s (22 tokens): {forward_rate(policy):,.0f}")
    print(f"reference medium policy vs random games/s: {REFERENCE_MEDIUM_GAMES_PER_S}")


if __name__ == "__main__":
    main()
