"""The batched auction of a Texas 42 hand (spec: Full game): B auctions advanced in lockstep.

Starting left of the dealer each seat bids once or passes. A bid is 30..41 points, 1 mark (42) or more marks:
2 marks (84) may be bid at any time, each later mark bid at most one mark more than the high bid. The high bidder
names the declaration and leads. If all four pass the hand is redealt by the next dealer, unless the `forced_bid`
house rule is on: then the dealer, last to speak, may not pass and must bid (30 or more).

Bids are *actions* 0..19 so that a network can have one output per bid: 0 is pass, 1..12 are 30..41 points and
13..19 are 1..7 marks. A bid's *value* orders bids: 0 for pass, the points, or 42 x marks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from zeb_core.engine.dominoes import MIN_BID, N_DECLS, TOTAL_POINTS

N_SEATS = 4
PASS = 0
N_POINT_BIDS = 12  # 30..41
MAX_MARKS = 7
N_BID_ACTIONS = 1 + N_POINT_BIDS + MAX_MARKS  # 20
NOT_YET = -1  # a seat's entry in `bids` before it has spoken


class IllegalBidError(ValueError):
    """A bid the rules do not allow (below the high bid, a mark bid that jumps, out of turn, a forced pass)."""


class IllegalDeclarationError(ValueError):
    """A declaration id outside 0..9, or a declaration by a seat that did not win the auction."""


def _values_table() -> torch.Tensor:
    points = list(range(MIN_BID, MIN_BID + N_POINT_BIDS))
    marks = [TOTAL_POINTS * m for m in range(1, MAX_MARKS + 1)]
    return torch.tensor([0, *points, *marks], dtype=torch.int64)


BID_VALUES = _values_table()  # [20] the value of each bid action


def bid_value(action: torch.Tensor) -> torch.Tensor:
    """The value of bid actions (0 for pass, 30..41 points, 42 x marks)."""
    return BID_VALUES.to(action.device)[action]


def bid_action(value: int) -> int:
    """The action of a bid value (0 pass, 30..41, or a multiple of 42 up to 7 marks); ValueError otherwise."""
    hits = torch.eq(BID_VALUES, int(value)).nonzero().flatten()
    if not hits.numel():
        raise IllegalBidError(f"{value} is not a bid: pass (0), 30..41 points, or 42 x 1..{MAX_MARKS} marks")
    return int(hits[0])


def bid_name(action: int) -> str:
    """A bid as a player says it: "pass", "31", "1 mark", "2 marks"."""
    v = int(BID_VALUES[action])
    if v == 0:
        return "pass"
    if v < TOTAL_POINTS:
        return str(v)
    m = v // TOTAL_POINTS
    return f"{m} mark" + ("s" if m > 1 else "")


def points_needed(value: torch.Tensor) -> torch.Tensor:
    """The points the bidder's team must take to make a bid of `value` (all 42 for any mark bid)."""
    return value.clamp(max=TOTAL_POINTS)


def marks_at_stake(value: torch.Tensor) -> torch.Tensor:
    """Marks a bid of `value` scores when made (and gives the other team when set): 1 for points bids."""
    return torch.where(value >= TOTAL_POINTS, value // TOTAL_POINTS, torch.ones_like(value))


def legal_bids(high: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """[B, 20] bool: the bid actions allowed over a high bid `high` [B] (value); `forced` [B] removes the pass."""
    values = BID_VALUES.to(high.device).view(1, -1)
    high = high.view(-1, 1)
    high_marks = high // TOTAL_POINTS
    marks = values // TOTAL_POINTS
    is_mark = values >= TOTAL_POINTS
    mark_ok = (marks <= 2) | (marks == high_marks + 1)
    legal = (values > high) & (~is_mark | mark_ok)
    legal[:, PASS] = ~forced
    return legal


@dataclass
class AuctionState:
    """B auctions. Seats speak in order dealer+1, dealer+2, dealer+3, dealer; then `winner`/`decl` are set."""

    dealer: torch.Tensor  # [B] int64
    bids: torch.Tensor  # [B, 4] int64 bid action of each seat, NOT_YET before it has spoken
    n_bids: torch.Tensor  # [B] int64 seats that have spoken (0..4)
    high: torch.Tensor  # [B] int64 value of the high bid so far (0: no bid yet)
    high_bidder: torch.Tensor  # [B] int64 seat of the high bid, -1 if none
    decl: torch.Tensor  # [B] int64 the winner's declaration, -1 until named
    forced_bid: bool = False  # house rule: the dealer may not pass when the three others have

    @classmethod
    def start(cls, dealer: torch.Tensor, forced_bid: bool = False) -> AuctionState:
        dealer = torch.as_tensor(dealer, dtype=torch.int64).reshape(-1)
        if bool(((dealer < 0) | (dealer >= N_SEATS)).any()):
            raise IllegalBidError(f"dealer seats must be 0..3, got {dealer.tolist()}")
        b, dev = dealer.shape[0], dealer.device
        minus = lambda *s: torch.full(s, -1, dtype=torch.int64, device=dev)
        zeros = torch.zeros(b, dtype=torch.int64, device=dev)
        return cls(dealer.clone(), minus(b, N_SEATS), zeros.clone(), zeros.clone(), minus(b), minus(b), forced_bid)

    def clone(self) -> AuctionState:
        return replace(self, **{f.name: getattr(self, f.name).clone() for f in fields(self) if f.name != "forced_bid"})

    def index(self, idx: torch.Tensor) -> AuctionState:
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "forced_bid"})

    @property
    def batch_size(self) -> int:
        return self.dealer.shape[0]

    @property
    def current(self) -> torch.Tensor:
        """[B] the seat to bid (meaningless once the bidding is over)."""
        return (self.dealer + 1 + self.n_bids.clamp(max=N_SEATS - 1)) % N_SEATS

    def bidding_over(self) -> torch.Tensor:
        return self.n_bids >= N_SEATS

    def all_passed(self) -> torch.Tensor:
        """[B] every seat passed: the hand is redealt by the next dealer."""
        return self.bidding_over() & (self.high == 0)

    def needs_declaration(self) -> torch.Tensor:
        return self.bidding_over() & (self.high > 0) & (self.decl < 0)

    def done(self) -> torch.Tensor:
        """[B] nothing left to decide: redeal, or the declaration is named."""
        return self.all_passed() | (self.decl >= 0)

    def legal_mask(self) -> torch.Tensor:
        """[B, 20] bool: the bids the seat to bid may make (all False once the bidding is over)."""
        forced = torch.full_like(self.high, int(self.forced_bid), dtype=torch.bool)
        forced &= (self.n_bids == N_SEATS - 1) & (self.high == 0)
        return legal_bids(self.high, forced) & ~self.bidding_over().unsqueeze(1)

    def apply_bids(self, actions: torch.Tensor, check: bool = True) -> None:
        """The seat to bid in every game whose bidding goes on makes bid `actions[b]` (ignored elsewhere)."""
        actions = torch.as_tensor(actions, dtype=torch.int64, device=self.dealer.device).reshape(-1)
        active = ~self.bidding_over()
        safe = actions.clamp(0, N_BID_ACTIONS - 1)
        if check:
            legal = self.legal_mask()
            ok = ~active | ((actions >= 0) & (actions < N_BID_ACTIONS) & legal.gather(1, safe.view(-1, 1)).squeeze(1))
            if not bool(ok.all()):
                self._raise_illegal(actions, legal, ok)
        seat = self.current
        value = bid_value(safe)
        old = self.bids.gather(1, seat.view(-1, 1)).squeeze(1)
        self.bids.scatter_(1, seat.view(-1, 1), torch.where(active, safe, old).view(-1, 1))
        raises = active & (value > self.high)
        self.high = torch.where(raises, value, self.high)
        self.high_bidder = torch.where(raises, seat, self.high_bidder)
        self.n_bids = self.n_bids + active.long()

    def declare(self, decls: torch.Tensor, check: bool = True) -> None:
        """The auction's winner names declaration `decls[b]` in every game that needs one (ignored elsewhere)."""
        decls = torch.as_tensor(decls, dtype=torch.int64, device=self.dealer.device).reshape(-1)
        need = self.needs_declaration()
        if check:
            bad = need & ((decls < 0) | (decls >= N_DECLS))
            if bool(bad.any()):
                g = int(bad.nonzero()[0, 0])
                raise IllegalDeclarationError(f"game {g}: declaration {int(decls[g])} is outside 0..{N_DECLS - 1}")
        self.decl = torch.where(need, decls, self.decl)

    def _raise_illegal(self, actions: torch.Tensor, legal: torch.Tensor, ok: torch.Tensor) -> None:
        g = int((~ok).nonzero()[0, 0])
        a, seat, high = int(actions[g]), int(self.current[g]), int(self.high[g])
        allowed = ", ".join(bid_name(x) for x in legal[g].nonzero().flatten().tolist())
        if not 0 <= a < N_BID_ACTIONS:
            what = f"{a} is not a bid action (0..{N_BID_ACTIONS - 1})"
        elif a == PASS:
            what = "pass: the dealer must bid when the three others have passed (forced_bid)"
        elif int(BID_VALUES[a]) <= high:
            what = f"bid {bid_name(a)}: it does not top the high bid {bid_name(bid_action(high))}"
        else:
            what = f"bid {bid_name(a)}: a mark bid may be at most one mark above the high bid (2 marks at any time)"
        raise IllegalBidError(f"game {g}: seat {seat} cannot {what}; legal: {allowed}")


def hand_marks(team_points: torch.Tensor, bidder: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """[B, 2] marks each team gains from a finished hand: the bidder's team if it made `value`, else the other."""
    team = bidder % 2
    made = team_points.gather(1, team.view(-1, 1)).squeeze(1) >= points_needed(value)
    scorer = torch.where(made, team, 1 - team)
    gained = torch.zeros_like(team_points)
    gained.scatter_(1, scorer.view(-1, 1), marks_at_stake(value).view(-1, 1))
    return gained
