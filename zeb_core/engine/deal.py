"""The benchmark deal distribution (spec: shuffle and deal; bidder, bid and declaration uniform, independent)."""

from __future__ import annotations

import torch

from zeb_core.engine.dominoes import MAX_BID, MIN_BID, N_DECLS, N_DOMINOES
from zeb_core.engine.state import HAND_SIZE, N_SEATS, GameState


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def deal_benchmark(batch: int, gen: torch.Generator, device: torch.device | str = "cpu") -> GameState:
    """B hands dealt as mk5-main forge/zeb evaluates: a shuffle, a uniform bidder, bid and declaration."""
    device = torch.device(device)
    perm = torch.rand(batch, N_DOMINOES, generator=gen, device=gen.device).argsort(dim=1)
    hands = perm.view(batch, N_SEATS, HAND_SIZE)
    bidder = torch.randint(0, N_SEATS, (batch,), generator=gen, device=gen.device)
    bid = torch.randint(MIN_BID, MAX_BID + 1, (batch,), generator=gen, device=gen.device)
    decl = torch.randint(0, N_DECLS, (batch,), generator=gen, device=gen.device)
    return GameState.from_deal(hands.to(device), decl.to(device), bidder.to(device), bid.to(device), validate=False)
