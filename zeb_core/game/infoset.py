"""What one seat knows (its hand, the contract, the public plays), validated, and deals consistent with it.

A bot request, or a searching seat in MCTS, knows its own hand and every play. From the plays it also knows
*voids*: a seat that did not follow the led suit holds no domino of that suit. `InfoState.from_request` checks a
history is possible (turn order, no domino twice, the observer's own plays legal, nobody playing a suit they had
shown void in) and `sample_world` deals the unseen dominoes to the other seats uniformly at random among all the
deals that respect every constraint (counts and voids), exactly: `WorldSampler` counts the completions.
"""

from __future__ import annotations

import functools
import math
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
    # The last world sampler built and the position it counts (see `world_sampler`); not part of the state.
    _sampler: tuple[tuple, WorldSampler] | None = field(default=None, init=False, repr=False, compare=False)

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

    def world_sampler(self) -> WorldSampler:
        """The exact uniform sampler of this position's consistent deals, kept while the position is unchanged
        (a search draws several worlds of one position: the counting is done once)."""
        key = (
            self.seat,
            self.decl,
            tuple(self.hand),
            tuple(self.plays),
            tuple(sorted((s, tuple(sorted(v))) for s, v in self.voids.items())),
        )
        if self._sampler is not None and self._sampler[0] == key:
            sampler = self._sampler[1]
        else:
            allowed = {d: tuple(self.allowed_seats(d)) for d in self.unseen()}
            sampler = WorldSampler(allowed, self.capacities())
            self._sampler = (key, sampler)
        if sampler.total == 0:
            raise InvalidRequest("no deal of the unseen dominoes is consistent with the plays (voids and counts)")
        return sampler

    def count_worlds(self) -> int:
        """How many deals of the unseen dominoes to the other seats respect every hand size and void."""
        return WorldSampler({d: tuple(self.allowed_seats(d)) for d in self.unseen()}, self.capacities()).total

    def sample_world(self, rng: random.Random) -> list[list[int]]:
        """Current hands of all four seats in one deal drawn uniformly from those consistent with what this seat
        knows (hand sizes and every revealed void)."""
        return self.world_sampler().draw(rng, self.seat, self.hand)

    def sample_worlds(self, rng: random.Random, n: int) -> list[list[list[int]]]:
        """`n` independent uniform worlds (as `sample_world`), sharing one count of the completions."""
        sampler = self.world_sampler()
        return [sampler.draw(rng, self.seat, self.hand) for _ in range(n)]

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


class WorldSampler:
    """Draws deals of the unseen dominoes uniformly from all those that respect hand sizes and voids, exactly.

    Voids give each unseen domino a set of seats allowed to hold it, so the dominoes fall into at most 7 groups
    (one per set of the 3 other seats). A deal is then a split of each group's size over its seats plus an
    arrangement within the group; a split (k_s) of a group of n has n! / prod k_s! arrangements. `_ways(i, caps)`
    counts the deals of groups i.. into the capacities left (exact integers, memoized), so choosing each group's
    split with probability proportional to its arrangements times the deals of the rest, then shuffling the
    group, gives every consistent deal the same probability 1 / total. (A greedy deal that only keeps each choice
    completable is not uniform: it favours seats by how many choices lead through them, not how many deals.)
    """

    def __init__(self, allowed: dict[int, tuple[int, ...]], caps: dict[int, int]) -> None:
        self.seats = sorted(caps)
        by_set: dict[tuple[int, ...], list[int]] = {}
        for d in sorted(allowed):
            by_set.setdefault(tuple(sorted(allowed[d])), []).append(d)
        self.groups = sorted(by_set.items())
        self.caps = tuple(caps[s] for s in self.seats)
        self.splits = []
        for opts, ds in self.groups:
            bound = tuple(c if s in opts else 0 for s, c in zip(self.seats, self.caps))
            self.splits.append(_splits(len(ds), bound))
        self._memo: dict[tuple[int, tuple[int, ...]], int] = {}
        self.total = self._ways(0, self.caps) if sum(self.caps) == len(allowed) else 0

    def _ways(self, i: int, left: tuple[int, ...]) -> int:
        if i == len(self.groups):
            return 1 if not any(left) else 0
        key = (i, left)
        if key not in self._memo:
            total = 0
            for split, mult in self.splits[i]:
                rest = tuple(c - k for c, k in zip(left, split))
                if min(rest) >= 0:
                    total += mult * self._ways(i + 1, rest)
            self._memo[key] = total
        return self._memo[key]

    def draw(self, rng: random.Random, seat: int, hand: list[int]) -> list[list[int]]:
        """One uniform deal: the four seats' current hands, `seat` holding `hand`."""
        if self.total == 0:
            raise InvalidRequest("no deal of the unseen dominoes is consistent with the plays (voids and counts)")
        hands: list[list[int]] = [[] for _ in range(N_SEATS)]
        hands[seat] = list(hand)
        left = self.caps
        for i, (_, dominoes) in enumerate(self.groups):
            pick = rng.randrange(self._ways(i, left))
            for split, mult in self.splits[i]:
                rest = tuple(c - k for c, k in zip(left, split))
                if min(rest) < 0:
                    continue
                pick -= mult * self._ways(i + 1, rest)
                if pick < 0:
                    break
            left = rest
            order = list(dominoes)
            rng.shuffle(order)
            at = 0
            for j, k in enumerate(split):
                hands[self.seats[j]].extend(order[at : at + k])
                at += k
        return [sorted(h) for h in hands]


@functools.lru_cache(maxsize=4096)
def _splits(n: int, bound: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Every way to share n dominoes among the seats, at most bound[j] to seat j, with its arrangement count."""
    if not bound:
        return (((), 1),) if n == 0 else ()
    out = []
    for k in range(min(n, bound[0]) + 1):
        for rest, mult in _splits(n - k, bound[1:]):
            out.append(((k, *rest), mult * math.comb(n, k)))
    return tuple(out)
