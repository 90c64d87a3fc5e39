"""The bidder interface and the full-game player spec `BIDDER+PLAYER`, for the modules that define bidders.

A full-game player is a *bidder* (the auction and the declaration) and a play-phase `Player` (the 28 plays,
`zeb_core.players`). A bidder decides for a batch of auctions at once and sees only what its seat may know: its
own seven dominoes, the bids so far, the dealer and the game score: an `AuctionView`.

Spec: `BIDDER+PLAYER`, e.g. `baseline+heuristic`, `mc:worlds=8+pimc:worlds=16`; each half is a `kind:key=value,...`
spec of its own (`zeb_core.players.interface.parse_spec`). The table of bidder kinds is `fullgame.bidders.BIDDERS`;
this module imports no bidder, so every bidder module can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from zeb_core.players.interface import Player


@dataclass
class AuctionView:
    """What the seat to speak (or to declare) knows, for n games."""

    seat: torch.Tensor  # [n] int64 the seat deciding
    dealer: torch.Tensor  # [n] int64
    hand: torch.Tensor  # [n, 7] int64 the seat's own dominoes (ids, ascending)
    bids: torch.Tensor  # [n, 4] int64 bid action of each seat so far (auction.NOT_YET before it spoke)
    high: torch.Tensor  # [n] int64 value of the high bid so far (0: none); when declaring: the winning bid
    high_bidder: torch.Tensor  # [n] int64 seat of the high bid, -1 if none
    legal: torch.Tensor  # [n, 20] bool legal bid actions (all False when declaring)
    marks: torch.Tensor  # [n, 2] int64 game score: the seat's team first, then the other team
    target_marks: int  # marks that win the game (7)


@dataclass
class BidDecision:
    actions: torch.Tensor  # [n] bid actions (auction.PASS, ...), each legal in view.legal
    explanations: list[str] | None = None  # one line per game for people, e.g. "P(make 34) = 0.71 with sixes trump"


@dataclass
class DeclDecision:
    decls: torch.Tensor  # [n] declaration ids 0..9
    explanations: list[str] | None = None


class Bidder(Protocol):
    name: str

    def bid(self, view: AuctionView) -> BidDecision: ...

    def declare(self, view: AuctionView) -> DeclDecision: ...


@dataclass
class FullGamePlayer:
    """A bidder and a play-phase player under one name (the spec it was built from)."""

    name: str
    bidder: Bidder
    player: Player


# A factory builds a bidder from a spec's parameters (it pops the ones it takes), the device and a default seed.
BidderFactory = Callable[[dict[str, str], torch.device, int], Bidder]
