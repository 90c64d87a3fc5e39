"""Whole games of Texas 42 to `target_marks`, G games in lockstep, one hand at a time (spec: Full game).

Every unfinished game plays hand h at the same time: a deal, the auction (four bid steps, each one `bid` call per
bidder over the games where its team speaks), the declaration, the 28 plays of the existing play-phase engine for
the games that have a hand in play, and the marks. If all four pass the hand is redealt by the next dealer (it
counts as a hand, with no marks). The deal passes left after every hand, redeals included. Loops run over hands,
the four bids and the 28 plays, never over games.

The deals come from a `DealSource`: a function of the hand index that returns the G deals of that hand, so that a
team-symmetric match can give both halves of a pair the same deal sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, N_SEATS, GameState
from zeb_core.evaluation.match import play_games
from zeb_core.fullgame.auction import AuctionState, hand_marks, points_needed
from zeb_core.fullgame.interface import Bidder, FullGamePlayer
from zeb_core.fullgame.views import auction_view

DEFAULT_TARGET_MARKS = 7
MAX_HANDS = 200  # a game that has not ended after this many hands (redeals included) is a bug, not a long game

# hand index -> [G, 4, 7] the deals of that hand for all G games (rows of finished games are ignored)
DealSource = Callable[[int], torch.Tensor]


class GameTooLongError(RuntimeError):
    """A game passed `max_hands` hands without a team reaching the target (e.g. bidders that always pass)."""


def random_deals(n: int, gen: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """[n, 4, 7] shuffled deals (each seat's seven dominoes ascending)."""
    perm = torch.rand(n, N_DOMINOES, generator=gen, device=gen.device).argsort(dim=1)
    return perm.view(n, N_SEATS, HAND_SIZE).sort(dim=2).values.to(device)


def deals_from_generator(games: int, gen: torch.Generator, device: torch.device | str = "cpu") -> DealSource:
    """A deal source that shuffles G fresh deals from `gen` for every hand."""
    return lambda hand: random_deals(games, gen, device)


@dataclass
class HandLog:
    """One hand (or redeal) of the games `games`: every unfinished game at hand index `index`.

    `deal` and `plays` are kept only when the games are recorded (they are what a replay needs).
    """

    index: int
    games: torch.Tensor  # [n] game ids
    dealer: torch.Tensor  # [n]
    bids: torch.Tensor  # [n, 4] bid action of each seat (by seat, not by speaking order)
    winner: torch.Tensor  # [n] seat that won the auction, -1 for a redeal
    value: torch.Tensor  # [n] winning bid value, 0 for a redeal
    decl: torch.Tensor  # [n] declaration, -1 for a redeal
    team_points: torch.Tensor  # [n, 2] points taken in the play (0, 0 for a redeal)
    gained: torch.Tensor  # [n, 2] marks each team gained
    deal: torch.Tensor | None = None  # [n, 4, 7]
    plays: torch.Tensor | None = None  # [n, 28] dominoes in play order, -1 for a redeal

    @property
    def redeal(self) -> torch.Tensor:
        return self.winner < 0


@dataclass
class FullGames:
    """G finished games: the score, who won, and the log of every hand."""

    marks: torch.Tensor  # [G, 2] final marks by team
    winner: torch.Tensor  # [G] winning team
    hands: torch.Tensor  # [G] hands dealt, redeals included
    redeals: torch.Tensor  # [G]
    first_dealer: torch.Tensor  # [G]
    team_of_a: torch.Tensor  # [G] the team players[0] played
    log: list[HandLog]
    target_marks: int
    forced_bid: bool

    @property
    def batch_size(self) -> int:
        return self.marks.shape[0]


def play_full_games(
    players: tuple[FullGamePlayer, FullGamePlayer],
    team_of_a: torch.Tensor,
    deals: DealSource,
    first_dealer: torch.Tensor,
    target_marks: int = DEFAULT_TARGET_MARKS,
    forced_bid: bool = False,
    check: bool = False,
    record: bool = False,
    max_hands: int = MAX_HANDS,
) -> FullGames:
    """Play G games to `target_marks`; players[0] is team `team_of_a[g]` in game g (bidding and play).

    `check` makes an illegal play raise `IllegalMoveError` (bids and declarations are always checked: there are
    few of them); `record` keeps each hand's deal and plays in the log, for `replay.game_records`.
    """
    if target_marks < 1:
        raise ValueError(f"target_marks must be at least 1, got {target_marks}")
    device = team_of_a.device
    g_total = team_of_a.shape[0]
    dealer = torch.as_tensor(first_dealer, dtype=torch.int64, device=device).reshape(-1).clone()
    if dealer.shape[0] != g_total:
        raise ValueError(f"first_dealer has {dealer.shape[0]} entries for {g_total} games")
    first = dealer.clone()
    marks = torch.zeros(g_total, 2, dtype=torch.int64, device=device)
    hands_dealt = torch.zeros(g_total, dtype=torch.int64, device=device)
    redeals = torch.zeros_like(hands_dealt)
    log: list[HandLog] = []
    for hand in range(max_hands):
        live = (marks.max(dim=1).values < target_marks).nonzero().flatten()
        if not live.numel():
            break
        all_deals = torch.as_tensor(deals(hand), dtype=torch.int64, device=device)
        if all_deals.shape != (g_total, N_SEATS, HAND_SIZE):
            raise ValueError(f"the deal source gave shape {list(all_deals.shape)} for hand {hand}, expected "
                             f"[{g_total}, {N_SEATS}, {HAND_SIZE}]")  # fmt: skip
        entry = _play_hand(
            players, team_of_a[live], all_deals[live], dealer[live], marks[live], target_marks, forced_bid, check,
            record,
        )  # fmt: skip
        entry.index, entry.games = hand, live
        marks[live] += entry.gained
        hands_dealt[live] += 1
        redeals[live] += entry.redeal.long()
        dealer[live] = (dealer[live] + 1) % N_SEATS
        log.append(entry)
    else:
        live = (marks.max(dim=1).values < target_marks).nonzero().flatten()
        if live.numel():
            g = int(live[0])
            raise GameTooLongError(
                f"game {g} has not ended after {max_hands} hands (marks {marks[g].tolist()}, "
                f"{int(redeals[g])} redeals): do the bidders ever bid?"
            )
    return FullGames(
        marks=marks,
        winner=(marks[:, 1] >= target_marks).long(),
        hands=hands_dealt,
        redeals=redeals,
        first_dealer=first,
        team_of_a=team_of_a,
        log=log,
        target_marks=target_marks,
        forced_bid=forced_bid,
    )


def run_auction(
    bidders: tuple[Bidder, Bidder],
    team_of_a: torch.Tensor,
    hands: torch.Tensor,
    dealer: torch.Tensor,
    marks: torch.Tensor,
    target_marks: int = DEFAULT_TARGET_MARKS,
    forced_bid: bool = False,
) -> AuctionState:
    """The auction and declaration of n hands: four bid steps, each one `bid` call per bidder over the games where
    its team speaks, then one `declare` call per bidder over the auctions its team won (bidders[0] is team
    `team_of_a[g]` in game g). Every bid and declaration is checked; all-pass hands come back undeclared."""
    n, device = hands.shape[0], hands.device
    auction = AuctionState.start(dealer, forced_bid)
    everyone = torch.arange(n, device=device)
    for _ in range(N_SEATS):
        a_turn = (auction.current % 2) == team_of_a
        actions = torch.zeros(n, dtype=torch.int64, device=device)
        for bidder, mine in ((bidders[0], a_turn), (bidders[1], ~a_turn)):
            games = everyone[mine]
            if games.numel():
                view = auction_view(auction, hands, games, marks, target_marks)
                actions[games] = torch.as_tensor(bidder.bid(view).actions, dtype=torch.int64, device=device)
        auction.apply_bids(actions, check=True)
    need = auction.needs_declaration()
    a_declares = (auction.high_bidder % 2) == team_of_a
    decls = torch.full((n,), -1, dtype=torch.int64, device=device)
    for bidder, mine in ((bidders[0], need & a_declares), (bidders[1], need & ~a_declares)):
        games = everyone[mine]
        if games.numel():
            view = auction_view(auction, hands, games, marks, target_marks, declaring=True)
            decls[games] = torch.as_tensor(bidder.declare(view).decls, dtype=torch.int64, device=device)
    auction.declare(decls, check=True)
    return auction


def _play_hand(
    players: tuple[FullGamePlayer, FullGamePlayer],
    team_of_a: torch.Tensor,
    hands: torch.Tensor,
    dealer: torch.Tensor,
    marks: torch.Tensor,
    target_marks: int,
    forced_bid: bool,
    check: bool,
    record: bool,
) -> HandLog:
    """One hand of n games (all live): the auction, the declaration, the play, the marks gained."""
    n, device = hands.shape[0], hands.device
    everyone = torch.arange(n, device=device)
    auction = run_auction((players[0].bidder, players[1].bidder), team_of_a, hands, dealer, marks, target_marks,
                          forced_bid)  # fmt: skip
    need = auction.decl >= 0  # a bid was won and declared (the rest were redeals)

    team_points = torch.zeros(n, 2, dtype=torch.int64, device=device)
    gained = torch.zeros(n, 2, dtype=torch.int64, device=device)
    plays = torch.full((n, N_PLAYS), -1, dtype=torch.int64, device=device)
    bid = need.nonzero().flatten()
    if bid.numel():
        bidder, value = auction.high_bidder[bid], auction.high[bid]
        state = GameState.from_deal(hands[bid], auction.decl[bid], bidder, points_needed(value), leader=bidder)
        play_games(state, (players[0].player, players[1].player), team_of_a[bid], check=check)
        team_points[bid] = state.team_points
        gained[bid] = hand_marks(state.team_points, bidder, value)
        plays[bid] = state.history
    return HandLog(
        index=-1,
        games=everyone,
        dealer=dealer.clone(),
        bids=auction.bids,
        winner=auction.high_bidder,
        value=auction.high,
        decl=auction.decl,
        team_points=team_points,
        gained=gained,
        deal=hands.clone() if record else None,
        plays=plays if record else None,
    )
