"""The batched play phase of Texas 42: B hands as tensors on one device, advanced in lockstep.

A `GameState` holds everything about B hands at once. `legal_mask()` and `apply(moves)` work on all B games
with a fixed number of tensor ops and no Python loop over games, so the same code runs a single bot request,
a 4,096-game benchmark batch, or MCTS worlds on a GPU. Tricks are resolved incrementally: each play updates the
running winner of the trick, so finishing a trick is a handful of `where`s.

Games that have finished (28 plays) ignore further moves; `apply` takes a move of -1 for them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from zeb_core.engine.dominoes import (
    MAX_BID,
    MIN_BID,
    N_DECLS,
    N_DOMINOES,
    N_SUITS,
    TOTAL_POINTS,
    domino_name,
    tables_on,
)

N_SEATS = 4
HAND_SIZE = 7
N_PLAYS = 28
N_TRICKS = 7
# Value targets (spec: Result and training value): the benchmark objective first, the default everywhere.
VALUE_TARGETS = ("points", "points-margin", "contract", "contract-sign")
# the targets of a real bid (the full game): the spec's margin-shaped contract value, or its sign alone (+1 the
# bid is made, -1 set), which the solver teacher labels with one null-window search per move instead of exact points
CONTRACT_TARGETS = ("contract", "contract-sign")


def check_full_game_target(target: str) -> None:
    """The full game plays real bids, so its play examples must be labelled by a contract target."""
    if target not in CONTRACT_TARGETS:
        raise ValueError(f"--full-game trains on real bids: its value target is contract or contract-sign "
                         f"(--value-target), not {target}")  # fmt: skip


class IllegalMoveError(ValueError):
    """A move that the rules do not allow (not held, wrong suit, wrong turn, game over)."""


class InvalidDealError(ValueError):
    """A deal or contract that cannot exist (duplicate domino, bad declaration id, bid out of range)."""


@dataclass
class GameState:
    owner: torch.Tensor  # [B, 28] int64 seat that was dealt each domino
    hands: torch.Tensor  # [B, 4, 7] int64 each seat's dealt dominoes, ascending (hand slots)
    decl: torch.Tensor  # [B] int64 declaration 0..9
    bidder: torch.Tensor  # [B] int64
    bid: torch.Tensor  # [B] int64 30..42
    leader: torch.Tensor  # [B] int64 seat that led the first trick
    played: torch.Tensor  # [B, 28] bool
    history: torch.Tensor  # [B, 28] int64 domino of play i, -1 if not yet played
    history_seat: torch.Tensor  # [B, 28] int64 seat of play i, -1 if not yet played
    n_plays: torch.Tensor  # [B] int64 plays so far (0..28)
    current: torch.Tensor  # [B] int64 seat to move
    trick_leader: torch.Tensor  # [B] int64 seat that led the trick in progress
    led_suit: torch.Tensor  # [B] int64 suit of the trick in progress (0..7), -1 before its lead
    best_rank: torch.Tensor  # [B] int64 rank of the winning play so far in the trick
    best_seat: torch.Tensor  # [B] int64 seat of the winning play so far
    trick_count: torch.Tensor  # [B] int64 count points in the trick so far
    trick_winners: torch.Tensor  # [B, 7] int64, -1 for tricks not yet played
    trick_points: torch.Tensor  # [B, 7] int64
    team_points: torch.Tensor  # [B, 2] int64

    # ---------------------------------------------------------------- construction
    @property
    def batch_size(self) -> int:
        return self.owner.shape[0]

    @property
    def device(self) -> torch.device:
        return self.owner.device

    @classmethod
    def from_deal(
        cls,
        hands: torch.Tensor,
        decl: torch.Tensor,
        bidder: torch.Tensor,
        bid: torch.Tensor,
        leader: torch.Tensor | None = None,
        validate: bool = True,
    ) -> GameState:
        """Start B hands from dealt dominoes `hands` [B, 4, 7] and the contract (leader defaults to bidder)."""
        hands = torch.as_tensor(hands, dtype=torch.int64)
        device = hands.device
        as_long = lambda x: torch.as_tensor(x, dtype=torch.int64, device=device).reshape(-1)
        decl, bidder, bid = as_long(decl), as_long(bidder), as_long(bid)
        leader = bidder.clone() if leader is None else as_long(leader)
        b = hands.shape[0]
        if validate:
            _validate_deal(hands, decl, bidder, bid, leader)
        hands = hands.sort(dim=2).values
        owner = torch.empty(b, N_DOMINOES, dtype=torch.int64, device=device)
        seats = torch.arange(N_SEATS, device=device).view(1, N_SEATS, 1).expand(b, N_SEATS, HAND_SIZE)
        owner.scatter_(1, hands.reshape(b, N_DOMINOES), seats.reshape(b, N_DOMINOES))
        minus = lambda *shape: torch.full(shape, -1, dtype=torch.int64, device=device)
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.int64, device=device)
        return cls(
            owner=owner,
            hands=hands,
            decl=decl,
            bidder=bidder,
            bid=bid,
            leader=leader,
            played=torch.zeros(b, N_DOMINOES, dtype=torch.bool, device=device),
            history=minus(b, N_PLAYS),
            history_seat=minus(b, N_PLAYS),
            n_plays=zeros(b),
            current=leader.clone(),
            trick_leader=leader.clone(),
            led_suit=minus(b),
            best_rank=zeros(b),
            best_seat=leader.clone(),
            trick_count=zeros(b),
            trick_winners=minus(b, N_TRICKS),
            trick_points=zeros(b, N_TRICKS),
            team_points=zeros(b, 2),
        )

    def clone(self) -> GameState:
        return replace(self, **{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def index(self, idx: torch.Tensor) -> GameState:
        """The sub-batch of games `idx` (a copy)."""
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device: torch.device | str) -> GameState:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    # ---------------------------------------------------------------- queries
    def done(self) -> torch.Tensor:
        return self.n_plays >= N_PLAYS

    def held(self, seat: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 28] dominoes still in the hand of `seat` (default: the seat to move)."""
        seat = self.current if seat is None else seat
        return (self.owner == seat.unsqueeze(1)) & ~self.played

    def legal_mask(self) -> torch.Tensor:
        """[B, 28] bool: the dominoes the seat to move may play (all False for finished games)."""
        t = tables_on(self.device)
        held = self.held()
        leading = self.led_suit < 0
        row = self.decl * N_SUITS + self.led_suit.clamp(min=0)
        follow = held & t.follows[row]
        can_follow = follow.any(dim=1, keepdim=True)
        legal = torch.where(leading.unsqueeze(1) | ~can_follow, held, follow)
        return legal & ~self.done().unsqueeze(1)

    def legal_slots(self, legal: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 7] bool: the legal mask over the hand slots of the seat to move."""
        legal = self.legal_mask() if legal is None else legal
        return legal.gather(1, self.hand_of(self.current))

    def hand_of(self, seat: torch.Tensor) -> torch.Tensor:
        """[B, 7] the dealt dominoes (slots) of `seat` in each game."""
        idx = seat.view(-1, 1, 1).expand(-1, 1, HAND_SIZE)
        return self.hands.gather(1, idx).squeeze(1)

    def slot_to_domino(self, slots: torch.Tensor) -> torch.Tensor:
        return self.hand_of(self.current).gather(1, slots.view(-1, 1)).squeeze(1)

    def values(self) -> torch.Tensor:
        """[B, 4] mk5-main forge/zeb's training value for each seat (spec: Result and training value)."""
        bidder_team = self.bidder % 2
        made_pts = self.team_points.gather(1, bidder_team.view(-1, 1)).squeeze(1).to(torch.float64)
        bid = self.bid.to(torch.float64)
        made = made_pts >= bid
        v_bidder = torch.where(
            made,
            0.5 + 0.5 * torch.clamp((made_pts - bid) / TOTAL_POINTS + 0.5, max=1.0),
            -0.5 - 0.5 * torch.clamp((bid - made_pts) / TOTAL_POINTS, max=1.0),
        )
        seats = torch.arange(N_SEATS, device=self.device)
        same = (seats.view(1, -1) % 2) == bidder_team.view(-1, 1)
        return torch.where(same, v_bidder.unsqueeze(1), -v_bidder.unsqueeze(1)).to(torch.float32)

    def target_values(self, target: str) -> torch.Tensor:
        """[B, 4] the training value of each seat for `target` (one of VALUE_TARGETS; spec: Result and training value).

        "points" is the benchmark objective: +1 when the seat's team has more than 21 points, -1 when fewer, 0 at
        21-21. "points-margin" has the same sign, shaped by the margin: sign(M-O) * (0.5 + 0.5 |M-O| / 42).
        "contract" is `values()`: did the bidder's team make the (random) bid, shaped by the margin; "contract-sign"
        its sign alone: +1 to the bidder's team when it made the bid, -1 when it was set (never 0).
        """
        if target == "contract":
            return self.values()
        if target == "contract-sign":
            return torch.sign(self.values())
        if target not in VALUE_TARGETS:
            raise ValueError(f"unknown value target {target!r}; choose one of {', '.join(VALUE_TARGETS)}")
        v0 = points_value(self.team_points[:, 0] - self.team_points[:, 1], target)
        seats = torch.arange(N_SEATS, device=self.device)
        return torch.where(seats.view(1, -1) % 2 == 0, v0.unsqueeze(1), -v0.unsqueeze(1))

    def team_wins(self) -> torch.Tensor:
        """[B, 2] win credit per team: 1 for more than 21 points, 0.5 each for a 21-21 tie."""
        diff = self.team_points[:, 0] - self.team_points[:, 1]
        w0 = (diff > 0).to(torch.float32) + 0.5 * (diff == 0).to(torch.float32)
        return torch.stack([w0, 1.0 - w0], dim=1)

    def contract_made(self) -> torch.Tensor:
        pts = self.team_points.gather(1, (self.bidder % 2).view(-1, 1)).squeeze(1)
        return pts >= self.bid

    # ---------------------------------------------------------------- transition
    def apply(self, moves: torch.Tensor, check: bool = True) -> None:
        """Play domino `moves[b]` for the seat to move in every unfinished game b (in place).

        With `check`, an illegal move in any game raises IllegalMoveError naming the first offender and nothing
        is changed.
        """
        t = tables_on(self.device)
        moves = torch.as_tensor(moves, dtype=torch.int64, device=self.device).reshape(-1)
        active = ~self.done()
        safe = moves.clamp(0, N_DOMINOES - 1)
        if check:
            legal = self.legal_mask()
            ok = ~active | ((moves >= 0) & (moves < N_DOMINOES) & legal.gather(1, safe.view(-1, 1)).squeeze(1))
            if not bool(ok.all()):
                self._raise_illegal(moves, legal, ok)
        pos = self.n_plays.clamp(max=N_PLAYS - 1).view(-1, 1)
        _put(self.history, pos, safe, active)
        _put(self.history_seat, pos, self.current, active)
        self.played.scatter_(1, safe.view(-1, 1), self.played.gather(1, safe.view(-1, 1)) | active.view(-1, 1))

        leading = self.led_suit < 0
        led = torch.where(leading, t.led[self.decl, safe], self.led_suit)
        rank = t.rank[(self.decl * N_SUITS + led) * N_DOMINOES + safe]
        better = leading | (rank > self.best_rank)
        self.best_rank = torch.where(active & better, rank, self.best_rank)
        self.best_seat = torch.where(active & better, self.current, self.best_seat)
        self.trick_leader = torch.where(active & leading, self.current, self.trick_leader)
        self.led_suit = torch.where(active, led, self.led_suit)
        self.trick_count = torch.where(active, self.trick_count + t.count[safe], self.trick_count)

        n_after = self.n_plays + active.long()
        closes = active & (n_after % 4 == 0)
        trick_idx = ((n_after - 1) // 4).clamp(0, N_TRICKS - 1)
        points = self.trick_count + 1
        winner = self.best_seat
        _put(self.trick_winners, trick_idx.view(-1, 1), winner, closes)
        _put(self.trick_points, trick_idx.view(-1, 1), points, closes)
        team_gain = torch.zeros_like(self.team_points)
        team_gain.scatter_(1, (winner % 2).view(-1, 1), (points * closes.long()).view(-1, 1))
        self.team_points = self.team_points + team_gain
        self.current = torch.where(closes, winner, torch.where(active, (self.current + 1) % N_SEATS, self.current))
        self.led_suit = torch.where(closes, torch.full_like(self.led_suit, -1), self.led_suit)
        self.trick_count = torch.where(closes, torch.zeros_like(self.trick_count), self.trick_count)
        self.best_rank = torch.where(closes, torch.zeros_like(self.best_rank), self.best_rank)
        self.n_plays = n_after

    def _raise_illegal(self, moves: torch.Tensor, legal: torch.Tensor, ok: torch.Tensor) -> None:
        g = int((~ok).nonzero()[0, 0])
        m = int(moves[g])
        seat = int(self.current[g])
        allowed = ", ".join(domino_name(d) for d in legal[g].nonzero().flatten().tolist())
        if not 0 <= m < N_DOMINOES:
            what = f"{m} is not a domino id (0..27)"
        elif bool(self.played[g, m]):
            what = f"{domino_name(m)} (id {m}) was already played"
        elif int(self.owner[g, m]) != seat:
            what = f"{domino_name(m)} (id {m}) is not in seat {seat}'s hand"
        else:
            what = f"{domino_name(m)} (id {m}) does not follow the led suit"
        raise IllegalMoveError(f"game {g}: seat {seat} cannot play {what}; legal: {allowed}")


def points_value(margin: torch.Tensor, target: str) -> torch.Tensor:
    """The value of a final points margin (a team's points minus the other's) under "points" or "points-margin"."""
    margin = margin.to(torch.float32)
    value = torch.sign(margin)
    return value * (0.5 + 0.5 * margin.abs() / TOTAL_POINTS) if target == "points-margin" else value


def _put(target: torch.Tensor, col: torch.Tensor, value: torch.Tensor, where: torch.Tensor) -> None:
    """target[b, col[b]] = value[b] where `where[b]`, with no host sync (no boolean indexing)."""
    old = target.gather(1, col).squeeze(1)
    target.scatter_(1, col, torch.where(where, value, old).view(-1, 1))


def _validate_deal(
    hands: torch.Tensor, decl: torch.Tensor, bidder: torch.Tensor, bid: torch.Tensor, leader: torch.Tensor
) -> None:
    b = hands.shape[0]
    if hands.dim() != 3 or hands.shape[1:] != (N_SEATS, HAND_SIZE):
        raise InvalidDealError(f"hands must have shape [B, 4, 7], got {list(hands.shape)}")
    for name, x in (("decl", decl), ("bidder", bidder), ("bid", bid), ("leader", leader)):
        if x.shape[0] != b:
            raise InvalidDealError(f"{name} has {x.shape[0]} entries for {b} hands")
    if bool(((hands < 0) | (hands >= N_DOMINOES)).any()):
        raise InvalidDealError("hands hold an id outside 0..27")
    counts = torch.zeros(b, N_DOMINOES, dtype=torch.int64, device=hands.device)
    counts.scatter_add_(1, hands.reshape(b, N_DOMINOES), torch.ones_like(hands.reshape(b, N_DOMINOES)))
    if bool((counts != 1).any()):
        g, d = (counts != 1).nonzero()[0].tolist()
        raise InvalidDealError(f"hand {g}: domino {domino_name(d)} (id {d}) is dealt {int(counts[g, d])} times")
    checks = (
        (decl, 0, N_DECLS - 1, "declaration id"),
        (bidder, 0, N_SEATS - 1, "bidder seat"),
        (leader, 0, N_SEATS - 1, "leader seat"),
        (bid, MIN_BID, MAX_BID, "bid"),
    )
    for x, lo, hi, what in checks:
        bad = (x < lo) | (x > hi)
        if bool(bad.any()):
            g = int(bad.nonzero()[0, 0])
            raise InvalidDealError(f"hand {g}: {what} {int(x[g])} is outside {lo}..{hi}")
