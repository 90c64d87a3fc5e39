"""The `random` bidder: a floor for tests and matches, and the auction's exploration in its simplest form."""

from __future__ import annotations

import torch

from zeb_core.engine.dominoes import N_DECLS
from zeb_core.fullgame.auction import PASS
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision
from zeb_core.players.interface import SpecError, pop_param, reject_unknown


class RandomBidder:
    """Passes with probability `pass_prob` when it may, else bids uniformly among the legal bids; random trumps."""

    def __init__(self, pass_prob: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= pass_prob <= 1.0:
            raise SpecError(f"pass={pass_prob} must be in 0..1")
        self.pass_prob = pass_prob
        self.gen = torch.Generator().manual_seed(seed)
        self.name = f"random(pass={pass_prob:g})"

    def bid(self, view: AuctionView) -> BidDecision:
        legal = view.legal.cpu()
        bids = legal.clone()
        bids[:, PASS] = False
        has_bid = bids.any(1)
        weights = torch.where(has_bid.unsqueeze(1), bids, legal).float()
        picked = torch.multinomial(weights, 1, generator=self.gen).squeeze(1)
        passes = legal[:, PASS] & (torch.rand(len(legal), generator=self.gen) < self.pass_prob)
        actions = torch.where(passes | ~has_bid, torch.full_like(picked, PASS), picked)
        return BidDecision(actions.to(view.legal.device))

    def declare(self, view: AuctionView) -> DeclDecision:
        decls = torch.randint(0, N_DECLS, (len(view.seat),), generator=self.gen)
        return DeclDecision(decls.to(view.seat.device))


def random_bidder_from_spec(params: dict[str, str], device: torch.device, seed: int) -> RandomBidder:
    pass_prob = pop_param(params, "pass", float, 0.5)
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("random bidder", params)
    return RandomBidder(pass_prob, seed)
