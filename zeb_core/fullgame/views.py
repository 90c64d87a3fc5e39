"""What a seat may know during the auction: an `AuctionView` cut from the batched auction and the dealt hands.

Every driver of the auction (matches, self-play, the web page, the bot protocol) builds its views here, so no
bidder can ever be shown another seat's dominoes.
"""

from __future__ import annotations

import torch

from zeb_core.fullgame.auction import AuctionState
from zeb_core.fullgame.interface import AuctionView


def auction_view(
    auction: AuctionState,
    hands: torch.Tensor,
    games: torch.Tensor,
    marks: torch.Tensor | None = None,
    target_marks: int = 7,
    declaring: bool = False,
) -> AuctionView:
    """The view of the seat to speak (or, with `declaring`, of the auction's winner) in each game of `games`.

    hands: [B, 4, 7] dealt dominoes; marks: [B, 2] game score by team (team 0, team 1), default 0-0.
    """
    sub = auction.index(games)
    seat = sub.high_bidder if declaring else sub.current
    own = hands[games].gather(1, seat.view(-1, 1, 1).expand(-1, 1, hands.shape[2])).squeeze(1).sort(dim=1).values
    if marks is None:
        score = torch.zeros(len(games), 2, dtype=torch.int64, device=hands.device)
    else:
        team = (seat % 2).view(-1, 1)
        score = torch.cat([marks[games].gather(1, team), marks[games].gather(1, 1 - team)], dim=1)
    legal = sub.legal_mask()
    if declaring:
        legal = torch.zeros_like(legal)
    return AuctionView(
        seat=seat,
        dealer=sub.dealer,
        hand=own,
        bids=sub.bids,
        high=sub.high,
        high_bidder=sub.high_bidder,
        legal=legal,
        marks=score,
        target_marks=target_marks,
    )
