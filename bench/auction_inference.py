"""How much the auction tells a defender about the declarer's hand: uniform worlds against auction-weighted ones.

Hands are dealt and bid by BIDDER (default `mc:worlds=8`, the reference-style estimator); for each bid hand the
seat left of the declarer, holding only its own hand, samples 256 worlds and predicts the declarer's hand from
them, uniform or weighted by `fullgame.inference.declarer_log_likelihood` (self-normalised). One figure a line:
the error of the predicted number of trumps (mean squared) and the Brier score of the 21 unseen dominoes' owner
being the declarer (summed over them, averaged over hands; lower is better), and the weighted worlds' effective
sample size.

    .venv/bin/python bench/auction_inference.py [--bidder mc:worlds=8] [--hands 300]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.engine.dominoes import TABLES
from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.fullgame.auction import points_needed
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.fullgame.game import random_deals, run_auction
from zeb_core.fullgame.inference import declarer_log_likelihood
from zeb_core.mcts.worlds import sample_worlds

WORLDS = 256


def bid_hands(spec: str, n: int, seed: int) -> GameState:
    """The hands of `n` random deals that `spec` bids (all seats the same bidder), as play-phase states."""
    bidder = make_bidder(spec, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    hands = random_deals(n, gen)
    dealer = torch.randint(0, N_SEATS, (n,), generator=gen)
    marks = torch.zeros(n, 2, dtype=torch.int64)
    auction = run_auction((bidder, bidder), torch.zeros(n, dtype=torch.int64), hands, dealer, marks)
    won = (auction.decl >= 0).nonzero().flatten()
    return GameState.from_deal(
        hands[won], auction.decl[won], auction.high_bidder[won], points_needed(auction.high[won])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bidder", default="mc:worlds=8")
    parser.add_argument("--hands", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    setup(1)
    state = bid_hands(args.bidder, args.hands, args.seed)
    n = state.batch_size
    state.current = (state.bidder + 1) % N_SEATS  # the defender on the declarer's left, before any play
    state.leader = state.current.clone()
    worlds = sample_worlds(state, torch.arange(n), WORLDS, random.Random(args.seed))
    held = worlds.hands[torch.arange(worlds.batch_size), worlds.bidder].numpy()  # [n * W, 7]
    owns = (held[..., None] == np.arange(28)).any(1).reshape(n, WORLDS, 28)
    trumps = TABLES["called"][worlds.decl.numpy()[:, None], held].sum(1).reshape(n, WORLDS)
    true_hand = state.hands[torch.arange(n), state.bidder].numpy()
    truth = (true_hand[..., None] == np.arange(28)).any(1)
    true_trumps = TABLES["called"][state.decl.numpy()[:, None], true_hand].sum(1)
    weighted = torch.softmax(declarer_log_likelihood(worlds).double().view(n, WORLDS), 1).numpy()
    print(f"{args.bidder}: {n} bid hands of {args.hands}")
    for name, w in (("uniform", np.full((n, WORLDS), 1.0 / WORLDS)), ("auction-weighted", weighted)):
        mse = (((w * trumps).sum(1) - true_trumps) ** 2).mean()
        brier = (((w[..., None] * owns).sum(1) - truth) ** 2).sum(1).mean()
        print(f"{name} worlds: declarer's trumps, mean squared error {mse:.3f}")
        print(f"{name} worlds: declarer's dominoes, Brier score {brier:.3f}")
    print(f"auction-weighted worlds: effective sample size {(1 / (weighted**2).sum(1)).mean():.0f} of {WORLDS}")


if __name__ == "__main__":
    main()
