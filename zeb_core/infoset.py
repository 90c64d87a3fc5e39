"""What one seat knows (its hand, the contract, the public plays), validated, and deals consistent with it.

A bot request, or a searching seat in MCTS, knows its own hand and every play. From the plays it also knows
*voids*: a seat that did not follow the led suit holds no domino of that suit. `InfoState.from_request` checks a
history is possible (turn order, no domino twice, the observer's own plays legal, nobody playing a suit they had
shown void in) and `sample_world` deals the unseen dominoes to the other seats so that every constraint holds
(counts and voids), exactly: a Hall-condition check keeps each greedy choice completable.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import torch

from zeb_core.engine.dominoes import (
    MAX_BID,
    MIN_BID,
    N_DECLS,
    N_DOMINOES,
    TABLES,
    domino_name,
)
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, N_SEATS, GameState

_FOLLOWS = TABLES["follows"]  # [decl, suit, domino]
_LED = TABLES["led"]
_RANK = TABLES["rank"]


class InvalidRequest(ValueError):
    """A request that cannot describe a real position; its message is one clear sentence."""


def _int(req: dict, key: str, lo: int, hi: int, what: str) -> int:
    if key not in req:
        raise InvalidRequest(f"missing field {key!r}")
    v = req[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidRequest(f"{key!r} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise InvalidRequest(f"{what} {v} is outside {lo}..{hi}")
    return v


def _domino(v: object, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < N_DOMINOES:
        raise InvalidRequest(f"{where}: {v!r} is not a domino id (0..27)")
    return v


@dataclass
class InfoState:
    seat: int
    hand: list[int]  # dominoes the seat still holds
    decl: int
    bidder: int
    bid: int
    leader: int
    plays: list[tuple[int, int]]  # (seat, domino) in order
    voids: dict[int, set[int]] = field(default_factory=dict)  # seat -> suits it has shown void in
    trick_winners: list[int] = field(default_factory=list)

    @classmethod
    def from_request(cls, req: object) -> InfoState:
        if not isinstance(req, dict):
            raise InvalidRequest("the request must be a JSON object")
        seat = _int(req, "seat", 0, N_SEATS - 1, "seat")
        decl = _int(req, "decl", 0, N_DECLS - 1, "declaration id")
        bidder = _int(req, "bidder", 0, N_SEATS - 1, "bidder seat")
        bid = _int(req, "bid", MIN_BID, MAX_BID, "bid")
        leader = req.get("leader", bidder)
        if not isinstance(leader, int) or isinstance(leader, bool) or not 0 <= leader < N_SEATS:
            raise InvalidRequest(f"leader seat {leader!r} is outside 0..3")
        hand_raw, plays_raw = req.get("hand"), req.get("plays", [])
        if not isinstance(hand_raw, list):
            raise InvalidRequest("'hand' must be a list of domino ids")
        if not isinstance(plays_raw, list):
            raise InvalidRequest("'plays' must be a list of [seat, domino] pairs")
        hand = [_domino(d, "hand") for d in hand_raw]
        plays: list[tuple[int, int]] = []
        for i, p in enumerate(plays_raw):
            if not (isinstance(p, (list, tuple)) and len(p) == 2):
                raise InvalidRequest(f"play {i + 1} must be a [seat, domino] pair, got {p!r}")
            s, d = p
            if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < N_SEATS:
                raise InvalidRequest(f"play {i + 1}: seat {s!r} is outside 0..3")
            plays.append((s, _domino(d, f"play {i + 1}")))
        info = cls(seat, hand, decl, bidder, bid, leader, plays)
        info._validate()
        return info

    def _validate(self) -> None:
        seen: dict[int, str] = {}
        for d in self.hand:
            if d in seen:
                raise InvalidRequest(f"domino {domino_name(d)} (id {d}) is in the hand twice")
            seen[d] = "the hand"
        for i, (_, d) in enumerate(self.plays):
            if d in seen:
                raise InvalidRequest(f"domino {domino_name(d)} (id {d}) is seen twice (play {i + 1} and {seen[d]})")
            seen[d] = f"play {i + 1}"
        if len(self.plays) >= N_PLAYS:
            raise InvalidRequest("the hand is over: all 28 dominoes have been played")
        own_played = [d for s, d in self.plays if s == self.seat]
        if len(self.hand) + len(own_played) != HAND_SIZE:
            raise InvalidRequest(
                f"seat {self.seat} holds {len(self.hand)} dominoes after playing {len(own_played)}; that is not 7"
            )
        held = set(self.hand) | set(own_played)
        to_move, led, best, best_seat = self.leader, -1, 0, self.leader
        voids: dict[int, set[int]] = {s: set() for s in range(N_SEATS)}
        for i, (s, d) in enumerate(self.plays):
            if s != to_move:
                raise InvalidRequest(f"play {i + 1} is by seat {s}, but it was seat {to_move}'s turn")
            if led < 0:
                led = int(_LED[self.decl, d])
            follows = bool(_FOLLOWS[self.decl, led, d])
            if s == self.seat and not follows:
                can = [x for x in held if _FOLLOWS[self.decl, led, x]]
                if can and i % 4:
                    raise InvalidRequest(
                        f"play {i + 1}: seat {s} played {domino_name(d)} but held {domino_name(can[0])} of the led suit"
                    )
            if any(_FOLLOWS[self.decl, v, d] for v in voids[s]):
                raise InvalidRequest(
                    f"play {i + 1}: seat {s} played {domino_name(d)} of a suit it had shown void in earlier"
                )
            if i % 4 and not follows:
                voids[s].add(led)
            if s == self.seat:
                held.discard(d)
            rank = int(_RANK[self.decl, led, d])
            if i % 4 == 0 or rank > best:
                best, best_seat = rank, s
            if i % 4 == 3:
                self.trick_winners.append(best_seat)
                to_move, led, best = best_seat, -1, 0
            else:
                to_move = (to_move + 1) % N_SEATS
        if to_move != self.seat:
            raise InvalidRequest(f"it is seat {to_move}'s turn, not seat {self.seat}'s")
        self.voids = {s: v for s, v in voids.items() if v}

    # ---------------------------------------------------------------- worlds
    def unseen(self) -> list[int]:
        gone = set(self.hand) | {d for _, d in self.plays}
        return [d for d in range(N_DOMINOES) if d not in gone]

    def capacities(self) -> dict[int, int]:
        played = {s: 0 for s in range(N_SEATS)}
        for s, _ in self.plays:
            played[s] += 1
        return {s: HAND_SIZE - played[s] for s in range(N_SEATS) if s != self.seat}

    def allowed_seats(self, d: int) -> list[int]:
        out = []
        for s in range(N_SEATS):
            if s == self.seat:
                continue
            if any(_FOLLOWS[self.decl, suit, d] for suit in self.voids.get(s, ())):
                continue
            out.append(s)
        return out

    def sample_world(self, rng: random.Random) -> list[list[int]]:
        """Current hands of all four seats in one deal consistent with everything this seat knows."""
        caps = self.capacities()
        allowed = {d: self.allowed_seats(d) for d in self.unseen()}
        if not _feasible(allowed, caps):
            raise InvalidRequest("no deal of the unseen dominoes is consistent with the plays (voids and counts)")
        order = list(allowed)
        rng.shuffle(order)
        order.sort(key=lambda d: len(allowed[d]))  # most constrained first, random among equals
        hands: dict[int, list[int]] = {s: [] for s in range(N_SEATS)}
        hands[self.seat] = list(self.hand)
        remaining = dict(allowed)
        for d in order:
            del remaining[d]
            choices = [s for s in allowed[d] if caps[s] > 0]
            rng.shuffle(choices)
            for s in choices:
                caps[s] -= 1
                if _feasible(remaining, caps):
                    hands[s].append(d)
                    break
                caps[s] += 1
            else:  # pragma: no cover - unreachable when the Hall check above passed
                raise InvalidRequest("no deal of the unseen dominoes is consistent with the plays")
        return [sorted(hands[s]) for s in range(N_SEATS)]

    def to_state(self, rng: random.Random | None = None, device: torch.device | str = "cpu") -> GameState:
        """A one-game GameState at this position, with the unseen dominoes dealt consistently."""
        current = self.sample_world(rng or random.Random(0))
        dealt = [list(h) for h in current]
        for s, d in self.plays:
            dealt[s].append(d)
        state = GameState.from_deal(
            torch.tensor([dealt], device=device),
            torch.tensor([self.decl]),
            torch.tensor([self.bidder]),
            torch.tensor([self.bid]),
            torch.tensor([self.leader]),
        )
        for _, d in self.plays:
            state.apply(torch.tensor([d], device=device), check=True)
        return state


def _feasible(allowed: dict[int, list[int]], caps: dict[int, int]) -> bool:
    """Hall's condition: every set S of seats can take all dominoes that may only go to seats in S."""
    if sum(caps.values()) != len(allowed):
        return False
    seats = list(caps)
    for r in range(1, len(seats) + 1):
        for subset in itertools.combinations(seats, r):
            sset = set(subset)
            need = sum(1 for opts in allowed.values() if set(opts) <= sset)
            if need > sum(caps[s] for s in subset):
                return False
    return True

