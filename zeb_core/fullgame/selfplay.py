"""Self-play of whole hands with auctions, for the BidNet: deal, bid, declare, play, and the examples.

Hands, not games: each hand gets a random dealer and a random game score (marks 0..target-1 per team), so the
network sees every situation of a game without playing games to their end. The auction is the BidNet's own,
with exploration (a uniform legal bid with probability `bid_epsilon`, else Boltzmann over bid_q at `bid_temp`;
0 is greedy); the declaration is argmax over d of P(points >= points needed) from decl_points (a uniform random
one with probability `decl_epsilon`); the play phase is any play-phase `Player` (`heuristic`, `policy:path=W`),
both teams the same player, on `GameState.from_deal(hands, decl, bidder, bid=points_needed(value), leader=bidder)`.

With `all_decls` (the default) every won auction is also played under the nine declarations not named, on the
same deal with the same bid: the bidder's team's points under each of the ten is a sample of exactly what
decl_points predicts, so every declaration example carries ten labels at the price of ten play phases (cheap for
the batched engine and the heuristic; one label per example without it). The declared one is the hand's result.

Examples (`HandExamples`):
    bid_x [N, 14] int8 encoded views (`bidnet.encode_view`) of every seat at its turn to bid, bid_action [N],
    bid_marks [N] float32: the realised marks of the seat's team (+n made / -n set from its side, 0 redeal);
    decl_x [M, 14] int8: the auction winner's view when declaring and when it bid, decl_points [M, 10] int64:
    its team's final points under each declaration, -1 where not played.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from zeb_core.engine.dominoes import N_DECLS, N_DOMINOES
from zeb_core.engine.state import HAND_SIZE, GameState
from zeb_core.evaluation.match import play_games
from zeb_core.fullgame.auction import N_SEATS, PASS, AuctionState, hand_marks, points_needed
from zeb_core.fullgame.bidnet import BidNet, encode_view, make_probabilities
from zeb_core.fullgame.views import auction_view
from zeb_core.players.interface import Player


@dataclass
class SelfPlayConfig:
    bid_epsilon: float = 0.1  # share of exploring bids: a pass or a uniform legal bid, half and half
    bid_temp: float = 0.0  # Boltzmann temperature over bid_q (marks) for the other bids; 0 = greedy
    decl_epsilon: float = 0.1  # share of declarations drawn uniformly
    all_decls: bool = True  # play each won hand under all 10 declarations (ten labels per declaration example)
    forced_bid: bool = False  # the house rule: the dealer must bid when the three others passed
    target_marks: int = 7


@dataclass
class HandExamples:
    bid_x: torch.Tensor  # [N, 14] int8
    bid_action: torch.Tensor  # [N] int64
    bid_marks: torch.Tensor  # [N] float32
    decl_x: torch.Tensor  # [M, 14] int8
    decl_points: torch.Tensor  # [M, 10] int64, -1 = no label

    def __len__(self) -> int:
        return self.bid_x.shape[0]

    @classmethod
    def cat(cls, parts: list[HandExamples]) -> HandExamples:
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def to(self, device: torch.device | str) -> HandExamples:
        return HandExamples(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class HandRecord:
    """What happened in each hand of a batch (for tests, statistics and the learner's play examples)."""

    hands: torch.Tensor  # [B, 4, 7]
    dealer: torch.Tensor  # [B]
    marks: torch.Tensor  # [B, 2] game score by team before the hand
    bids: torch.Tensor  # [B, 4] bid action per seat
    bidder: torch.Tensor  # [B] auction winner, -1 redeal
    value: torch.Tensor  # [B] winning bid value, 0 redeal
    decl: torch.Tensor  # [B] declaration, -1 redeal
    team_points: torch.Tensor  # [B, 2] final points of the declared hand (0-0 redeal)
    gained: torch.Tensor  # [B, 2] marks each team gained
    bid_game: torch.Tensor  # [N] the hand of each bid example
    bid_seat: torch.Tensor  # [N] its seat
    decl_game: torch.Tensor  # [M] the hand of each declaration example


def deal_hands(n: int, gen: torch.Generator, device: torch.device, target_marks: int = 7):
    """(hands [n,4,7] ascending, dealer [n], marks [n,2]): a shuffle, a uniform dealer, a uniform game score."""
    perm = torch.rand(n, N_DOMINOES, generator=gen, device=gen.device).argsort(dim=1)
    hands = perm.view(n, N_SEATS, HAND_SIZE).sort(dim=2).values.to(device)
    dealer = torch.randint(0, N_SEATS, (n,), generator=gen, device=gen.device).to(device)
    marks = torch.randint(0, target_marks, (n, 2), generator=gen, device=gen.device).to(device)
    return hands, dealer, marks


def choose_bids(q: torch.Tensor, legal: torch.Tensor, gen: torch.Generator, epsilon: float, temp: float):
    """[n] bid actions: legal, greedy or Boltzmann over q; with probability epsilon a pass (when legal) or a
    uniform legal bid, half and half. Uniform over all legal actions would be a bid 19 times in 20, and so would
    Boltzmann at any temperature that lets the bids' similar values add up: with 19 bids against one pass, an
    exploring table overbids, everybody is set, and the values learnt are of that table."""
    masked = q.float().masked_fill(~legal, float("-inf"))
    if temp > 0:
        picked = torch.multinomial(torch.softmax(masked / temp, dim=1), 1, generator=gen).squeeze(1)
    else:
        picked = masked.argmax(1)
    if epsilon > 0:
        bids = legal.clone()
        bids[:, PASS] = False
        bids = torch.where(bids.any(1, keepdim=True), bids, legal)
        uniform = torch.multinomial(bids.float(), 1, generator=gen).squeeze(1)
        pass_ok = legal[:, PASS] & (torch.rand(len(q), generator=gen, device=q.device) < 0.5)
        uniform = torch.where(pass_ok, torch.full_like(uniform, PASS), uniform)
        explore = torch.rand(len(q), generator=gen, device=q.device) < epsilon
        picked = torch.where(explore, uniform, picked)
    return picked


def choose_decls(decl_points: torch.Tensor, need: torch.Tensor, gen: torch.Generator, epsilon: float):
    """[n] declarations: the most likely to make `need` points, uniform with probability epsilon."""
    best = make_probabilities(decl_points, need).argmax(1)
    if epsilon > 0:
        uniform = torch.randint(0, N_DECLS, best.shape, generator=gen, device=best.device)
        best = torch.where(torch.rand(len(best), generator=gen, device=best.device) < epsilon, uniform, best)
    return best


def bidder_points(hands, decl, bidder, value, player: Player) -> torch.Tensor:
    """[n] the bidder's team's final points when `player` plays all four seats of each hand."""
    if len(hands) == 0:  # no auction won this round (all passed): nothing to play
        return torch.zeros(0, dtype=torch.int64, device=hands.device)
    bid = points_needed(value)
    state = GameState.from_deal(hands, decl, bidder, bid=bid, leader=bidder)
    play_games(state, (player, player), torch.zeros_like(bidder), skip_forced=True)
    return state.team_points.gather(1, (bidder % 2).view(-1, 1)).squeeze(1)


@torch.no_grad()
def play_hands(
    net: BidNet, player: Player, n: int, gen: torch.Generator, config: SelfPlayConfig | None = None
) -> tuple[HandExamples, HandRecord]:
    """Deal and play `n` hands (auction, declaration, play); their bid and declaration examples."""
    cfg = config or SelfPlayConfig()
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    hands, dealer, marks = deal_hands(n, gen, device, cfg.target_marks)
    auction = AuctionState.start(dealer, cfg.forced_bid)
    everyone = torch.arange(n, device=device)
    bid_x: list[torch.Tensor] = []
    bid_action: list[torch.Tensor] = []
    bid_game: list[torch.Tensor] = []
    bid_seat: list[torch.Tensor] = []
    for _ in range(N_SEATS):
        view = auction_view(auction, hands, everyone, marks, cfg.target_marks)
        x = encode_view(view)
        _, q = net(x)
        actions = choose_bids(q, view.legal, gen, cfg.bid_epsilon, cfg.bid_temp)
        auction.apply_bids(actions)
        for store, item in ((bid_x, x), (bid_action, actions), (bid_game, everyone), (bid_seat, view.seat)):
            store.append(item)

    won = auction.needs_declaration().nonzero().flatten()
    dview = auction_view(auction, hands, won, marks, cfg.target_marks, declaring=True)
    dx = encode_view(dview)
    dpoints, _ = net(dx)
    decls = torch.full((n,), -1, dtype=torch.int64, device=device)
    decls[won] = choose_decls(dpoints, points_needed(dview.high), gen, cfg.decl_epsilon)
    auction.declare(decls)

    k, bidder, value = len(won), auction.high_bidder[won], auction.high[won]
    labels = torch.full((k, N_DECLS), -1, dtype=torch.int64, device=device)
    if cfg.all_decls:
        rep = lambda t: t.repeat_interleave(N_DECLS, dim=0)
        every = torch.arange(N_DECLS, device=device).repeat(k)
        labels = bidder_points(rep(hands[won]), every, rep(bidder), rep(value), player).view(k, N_DECLS)
    else:
        played = bidder_points(hands[won], decls[won], bidder, value, player)
        labels.scatter_(1, decls[won].view(-1, 1), played.view(-1, 1))
    team_points = torch.zeros(n, 2, dtype=torch.int64, device=device)
    own = labels.gather(1, decls[won].view(-1, 1)).squeeze(1)
    team_points[won, bidder % 2] = own
    team_points[won, 1 - bidder % 2] = 42 - own
    gained = torch.zeros(n, 2, dtype=torch.int64, device=device)
    gained[won] = hand_marks(team_points[won], bidder, value)

    games, seats = torch.cat(bid_game), torch.cat(bid_seat)
    team = seats % 2
    net_marks = gained[games].gather(1, team.view(-1, 1)) - gained[games].gather(1, 1 - team.view(-1, 1))
    # the winner's view when it bid, labelled like its declaration view (decl_points serves the bid too)
    winner_bid = (auction.high_bidder[games] == seats).nonzero().flatten()
    slot = torch.full((n,), -1, dtype=torch.int64, device=device)
    slot[won] = torch.arange(k, device=device)
    all_x = torch.cat(bid_x)
    examples = HandExamples(
        bid_x=all_x.to(torch.int8),
        bid_action=torch.cat(bid_action),
        bid_marks=net_marks.squeeze(1).float(),
        decl_x=torch.cat([dx, all_x[winner_bid]]).to(torch.int8),
        decl_points=torch.cat([labels, labels[slot[games[winner_bid]]]]),
    )
    record = HandRecord(
        hands=hands,
        dealer=dealer,
        marks=marks,
        bids=auction.bids,
        bidder=auction.high_bidder,
        value=auction.high,
        decl=decls,
        team_points=team_points,
        gained=gained,
        bid_game=games,
        bid_seat=seats,
        decl_game=torch.cat([won, games[winner_bid]]),
    )
    net.train(was_training)
    return examples, record


def realised_marks(record: HandRecord, game: torch.Tensor, seat: torch.Tensor) -> torch.Tensor:
    """[k] marks of `seat`'s team in hand `game`, from its side: what a bid example's target must be."""
    team = seat % 2
    g = record.gained[game]
    return g.gather(1, team.view(-1, 1)).squeeze(1) - g.gather(1, (1 - team).view(-1, 1)).squeeze(1)
