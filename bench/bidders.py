"""Speed of the baseline and Monte Carlo bidders (one core): bids per second on fresh hands.

Each bid is the first of an auction (nothing bid yet: the widest range of levels to search), for a fresh hand
(nothing cached), asked in batches as a match asks them. Prints one figure per line: baseline bids/s, mc bids/s
with 8 and 16 worlds, and how often the mc's four candidate declarations (the baseline's favourites) hold the
best P(make 30) of all nine. Run: .venv/bin/python bench/bidders.py [--hands 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup  # bench scripts import their helper from this folder

from zeb_core.fullgame.auction import AuctionState
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.fullgame.bidders.montecarlo import MonteCarloBidder
from zeb_core.fullgame.views import auction_view
from zeb_core.solver import warm_up

BATCH = 16


def deals(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 28, generator=gen).argsort(1).view(n, 4, 7)


def bids_per_s(spec: str, hands: torch.Tensor) -> float:
    bidder = make_bidder(spec)
    start = time.perf_counter()
    for i in range(0, len(hands), BATCH):
        chunk = hands[i : i + BATCH]
        auction = AuctionState.start(torch.zeros(len(chunk), dtype=torch.int64))
        bidder.bid(auction_view(auction, chunk, torch.arange(len(chunk))))
    return len(hands) / (time.perf_counter() - start)


def top4_share(hands: torch.Tensor) -> float:
    """Share of hands whose best P(make 30) over all nine declarations is reached by one of the top four."""
    own = hands[:, 1].numpy()
    every = MonteCarloBidder(worlds=8, decls=9).p_make(own, 30)
    top = MonteCarloBidder(worlds=8, decls=4).p_make(own, 30)
    return float(np.mean(top.max(1) >= every.max(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup(1)
    warm_up()
    hands = deals(args.hands, args.seed)
    print(f"baseline bids/s: {bids_per_s('baseline', deals(max(args.hands, 4096), args.seed)):,.0f}")
    for worlds in (8, 16):
        print(f"mc:worlds={worlds} bids/s: {bids_per_s(f'mc:worlds={worlds}', hands):,.1f}")
    print(f"mc top-4 declarations hold the best P(make 30): {top4_share(hands):.1%}")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
