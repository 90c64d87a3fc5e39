"""Small real bidders for the full-game tests (implementations of the Bidder protocol, not stand-ins for ours)."""

from __future__ import annotations

import torch

from zeb_core.fullgame.auction import PASS
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision

DOUBLES = (0, 2, 5, 9, 14, 20, 27)  # domino ids of 0-0, 1-1, ..., 6-6 (checked in test_doubles_table)


def lowest_bid(legal: torch.Tensor) -> torch.Tensor:
    """[n] the lowest legal bid action that is not a pass (0 when none)."""
    bids = legal.clone()
    bids[:, PASS] = False
    return torch.where(bids.any(1), bids.float().argmax(1), torch.zeros(len(legal), dtype=torch.int64))


class PassBidder:
    """Passes whenever it may; when it may not (forced_bid), bids the lowest legal bid; declares `decl`."""

    def __init__(self, decl: int = 0) -> None:
        self.decl, self.name = decl, "pass"

    def bid(self, view: AuctionView) -> BidDecision:
        return BidDecision(torch.where(view.legal[:, PASS], torch.zeros_like(view.seat), lowest_bid(view.legal)))

    def declare(self, view: AuctionView) -> DeclDecision:
        return DeclDecision(torch.full_like(view.seat, self.decl))


class DoublesBidder:
    """Deterministic and hand-dependent: with k >= 2 doubles it bids the lowest legal bid, else passes.

    Declares the suit of its highest double, so two copies of it on the two teams play a game exactly alike.
    """

    name = "doubles"

    def bid(self, view: AuctionView) -> BidDecision:
        doubles = torch.isin(view.hand, torch.tensor(DOUBLES)).sum(1)
        low = lowest_bid(view.legal)
        wants = (doubles >= 2) & (low > 0)
        must = ~view.legal[:, PASS]
        return BidDecision(torch.where(wants | must, low, torch.zeros_like(low)))

    def declare(self, view: AuctionView) -> DeclDecision:
        is_double = torch.isin(view.hand, torch.tensor(DOUBLES))
        suit = torch.tensor([DOUBLES.index(d) if d in DOUBLES else 0 for d in range(28)])
        best = torch.where(is_double, suit[view.hand], torch.full_like(view.hand, -1)).max(1).values
        return DeclDecision(best.clamp(min=0))


class FixedBidder:
    """Bids the same action every time (whether it is legal or not): the driver must refuse it when illegal."""

    def __init__(self, action: int, decl: int = 0) -> None:
        self.action, self.decl, self.name = action, decl, f"fixed({action})"

    def bid(self, view: AuctionView) -> BidDecision:
        return BidDecision(torch.full_like(view.seat, self.action))

    def declare(self, view: AuctionView) -> DeclDecision:
        return DeclDecision(torch.full_like(view.seat, self.decl))
