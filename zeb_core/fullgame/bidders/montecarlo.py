"""The `mc` bidder: P(make) of every bid per declaration by Monte Carlo over deals, each solved exactly.

As mk5-main's forge/bidding estimates P(make) for one hand by simulating games from it, this bidder deals the 21
unseen dominoes uniformly to the three other seats `worlds` times and plays each deal out perfectly with the
exact solver (`zeb_core.solver`), its own seat declaring and leading. P(make b | d) is the share of worlds where
the bidder's team ends with at least `points_needed(b)` points.

Speed, documented choices:
- Declarations: only the `decls` best by the baseline's estimate (`bidders.baseline`, default 4 of 0..7 and 9)
  are simulated; the others count as P(make) = 0. With 8 worlds the best of all nine is in the top 4 for most
  hands (bench/bidders.py prints the share).
- Search: not each world's exact points but whether it reaches the level asked (`solver.can_reach`, about ten
  times cheaper than `solve_points` at the first lead), and only the levels the decision needs: the lowest legal
  bid for every candidate, then 42 (bid=lowest) or a bisection up to 42 over the declarations that cleared every
  level so far (bid=highest: one that misses the threshold at a level misses it above). Each world keeps bounds
  on its points, so nothing is solved twice. Each round is one batched solver call over every hand, world and
  declaration of the view.
- Cache: the estimate of a hand (its dominoes are the key) is kept, so the same seat asked again in the deal
  (to declare after winning: its bid was measured at that level) costs nothing. The worlds of a hand come from a
  generator seeded by the seed and the hand's dominoes, so the estimate is a function of the hand alone: the
  other seats' dominoes never matter.

Bidding (`bid=lowest`, the default): the lowest legal bid if its P(make) with the best declaration clears
`threshold`, or 1 mark when P(make 42) clears it (a lock loses nothing by shutting the others out); `bid=highest`
(the rule mk5-main's P(make) table suggests): the highest legal bid up to 1 mark that clears it. Over an opponent's
mark bid: one mark more when P(make 42) clears it. The partner is outbid only at `PARTNER_MARGIN` points above its
bid or more; the last seat to speak bids just enough to win; forced, 30. The declaration maximises P(make the
winning bid), ties to the baseline's preference.

Tuning (full games to 7 marks, `zeb eval A vs B --full-game`, every seat playing `pimc:worlds=8`; worlds=8): the
solver's worlds are far kinder than real play (the bidder's side knows every domino), so the threshold goes to the
top. `bid=highest` vs `baseline`: threshold 0.5 won 0% of 60 games (it bid 1 mark in most hands and made 20% of
its bids), 0.75 15%, 0.875 28%, 1.0 53%; `bid=lowest` vs `baseline`: 0.75 38%, 1.0 58%; head to head at 1.0,
lowest beat highest in 63% of 100 games (without the lock rule) and 70% of 60 (with it); worlds=16 beat
worlds=8 in 63% of 60 games (bid=highest: every one of 16 worlds is a stricter test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from zeb_core.engine.dominoes import DECL_NAMES, MIN_BID, N_DECLS, TOTAL_POINTS
from zeb_core.fullgame.auction import PASS, bid_action, bid_name
from zeb_core.fullgame.bidders.baseline import PARTNER_MARGIN, lowest_bids, rank_declarations, reject_unknown_bidder
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision
from zeb_core.players.interface import SpecError, pop_param
from zeb_core.solver.tables import BITS

BELOW = MIN_BID - 1  # a world's lower bound before anything is known (the team may take fewer than 30)
UNSOLVED = 0.0  # P(make) of a declaration that is not simulated
DEFAULT_THRESHOLD = 1.0  # P(make) a bid needs: every world (the solver's worlds are far kinder than real play)
DEFAULT_MODE = "lowest"
MODES = ("highest", "lowest")  # bid the highest level that clears the threshold, or the lowest legal one (or a lock)
MAX_CACHE = 100_000  # hands kept; the oldest go first


def deal_worlds(hand: np.ndarray, worlds: int, seed: int) -> np.ndarray:
    """[worlds, 4, 7] deals with `hand` [7] at seat 0 and the 21 other dominoes shuffled over seats 1..3.

    The generator is seeded by `seed` and the hand, so the same hand always gets the same worlds.
    """
    rng = np.random.default_rng([seed, *sorted(int(d) for d in hand)])
    unseen = np.setdiff1d(np.arange(28), hand)
    others = rng.permuted(np.tile(unseen, (worlds, 1)), axis=1).reshape(worlds, 3, 7)
    return np.concatenate([np.tile(np.sort(hand), (worlds, 1, 1)), others], axis=1)


@dataclass
class HandEstimate:
    """What is known of one hand: per simulated declaration and world, bounds on the bidder's team's points."""

    cands: np.ndarray  # [c] the declarations simulated, the baseline's favourite first
    masks: np.ndarray  # [worlds, 4] int64 the worlds' hands as solver bitmasks (the bidder at seat 0)
    lo: np.ndarray  # [c, worlds] the points are at least lo (BELOW: nothing known)
    hi: np.ndarray  # [c, worlds] and at most hi

    def known(self, level: int) -> np.ndarray:
        """[c] whether P(make level) is known exactly for each declaration."""
        return np.asarray(((self.lo >= level) | (self.hi < level)).all(1))

    def p_make(self, level: int) -> np.ndarray:
        """[10] P(make level | d), exact where `known`, a lower bound elsewhere; UNSOLVED off the candidates."""
        out = np.full(N_DECLS, UNSOLVED)
        out[self.cands] = (self.lo >= level).mean(1)
        return out

    def p_upper(self, level: int) -> np.ndarray:
        out = np.full(N_DECLS, UNSOLVED)
        out[self.cands] = (self.hi >= level).mean(1)
        return out


class MonteCarloBidder:
    """P(make) per declaration from `worlds` solved deals per hand (see the module docstring)."""

    def __init__(
        self,
        worlds: int = 8,
        threshold: float = DEFAULT_THRESHOLD,
        seed: int = 0,
        decls: int = 4,
        mode: str = DEFAULT_MODE,
    ) -> None:
        if worlds < 1:
            raise SpecError(f"worlds={worlds} must be at least 1")
        if not 0.0 < threshold <= 1.0:
            raise SpecError(f"threshold={threshold} must be in (0, 1]")
        if not 1 <= decls <= N_DECLS:
            raise SpecError(f"decls={decls} must be in 1..{N_DECLS}")
        if mode not in MODES:
            raise SpecError(f"bid={mode!r} must be one of {', '.join(MODES)}")
        self.worlds, self.threshold, self.seed, self.decls, self.mode = worlds, threshold, seed, decls, mode
        self.name = f"mc(worlds={worlds},threshold={threshold:g})"
        self.cache: dict[tuple[int, ...], HandEstimate] = {}
        self.solver_calls = 0  # batched solver calls so far
        self.positions_solved = 0  # threshold searches so far (one per world and declaration asked)

    # ---- the estimate ----

    def estimates(self, hand: np.ndarray) -> list[HandEstimate]:
        """The estimate of each hand [n, 7] (new ones start with nothing solved)."""
        out = []
        for h in hand:
            key = tuple(int(d) for d in np.sort(h))
            est = self.cache.get(key)
            if est is None:
                est = self._new_estimate(np.array(key, dtype=np.int64))
                if len(self.cache) >= MAX_CACHE:
                    self.cache.pop(next(iter(self.cache)))
                self.cache[key] = est
            out.append(est)
        return out

    def _new_estimate(self, hand: np.ndarray) -> HandEstimate:
        cands = rank_declarations(hand.reshape(1, -1))[0, : self.decls]
        deals = deal_worlds(hand, self.worlds, self.seed)
        masks = BITS[deals].sum(2)  # [worlds, 4] int64 bitmask hands
        shape = (len(cands), self.worlds)
        return HandEstimate(cands, masks, np.full(shape, BELOW), np.full(shape, TOTAL_POINTS))

    def resolve(self, asks: list[tuple[HandEstimate, int, np.ndarray]]) -> None:
        """Make P(make level | d) exact for each (estimate, level, [c] bool which declarations) in one solver call."""
        from zeb_core.solver import Positions, can_reach

        rows: list[tuple[HandEstimate, int, int, int]] = []  # (estimate, candidate index, world index, level)
        for est, level, which in asks:
            open_ = which[:, None] & (est.lo < level) & (est.hi >= level)
            rows.extend((est, int(i), int(w), level) for i, w in zip(*np.nonzero(open_), strict=True))
        if not rows:
            return
        n = len(rows)
        hands = np.stack([est.masks[w] for est, _, w, _ in rows])
        decl = np.array([est.cands[i] for est, i, _, _ in rows], dtype=np.int64)
        zeros = np.zeros(n, dtype=np.int64)
        pos = Positions(hands, decl, zeros, np.full((n, 3), -1, dtype=np.int64), zeros, np.zeros((n, 2), np.int64))
        target = np.array([level for *_, level in rows], dtype=np.int64)
        reached = can_reach(pos, 0, target)
        self.solver_calls += 1
        self.positions_solved += n
        for (est, i, w, level), ok in zip(rows, reached, strict=True):
            if ok:
                est.lo[i, w] = max(est.lo[i, w], level)
            else:
                est.hi[i, w] = min(est.hi[i, w], level - 1)

    def p_make(self, hand: np.ndarray, level: int) -> np.ndarray:
        """[n, 10] exact P(make level | d) (UNSOLVED for the declarations not simulated); solves what is missing."""
        ests = self.estimates(hand)
        self.resolve([(e, level, np.ones(len(e.cands), dtype=bool)) for e in ests])
        return np.stack([e.p_make(level) for e in ests])

    def best_levels(self, ests: list[HandEstimate], low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """[n] the highest level in low[g]..high[g] (points needed, 30..42) whose P(make) with the best declaration
        clears the threshold, or 0 if none; bisection over levels, one batched solver call per round."""
        n = len(ests)
        alive = [np.ones(len(e.cands), dtype=bool) for e in ests]  # declarations that cleared every level so far
        self.resolve([(ests[g], int(low[g]), alive[g]) for g in range(n) if low[g]])
        ok = np.zeros(n, dtype=np.int64)  # the highest level known to clear (0: none)
        fail = high + 1  # the lowest level known not to clear
        for g in range(n):
            if low[g]:
                clears = ests[g].p_make(int(low[g]))[ests[g].cands] >= self.threshold
                alive[g] &= clears
                ok[g] = low[g] if clears.any() else 0
                fail[g] = fail[g] if clears.any() else low[g]
        while True:
            todo = [g for g in range(n) if ok[g] and fail[g] - ok[g] > 1]
            if not todo:
                return ok
            mids = {g: int(ok[g] + fail[g]) // 2 for g in todo}
            self.resolve([(ests[g], mids[g], alive[g]) for g in todo])
            for g in todo:
                clears = alive[g] & (ests[g].p_make(mids[g])[ests[g].cands] >= self.threshold)
                if clears.any():
                    ok[g], alive[g] = mids[g], clears
                else:
                    fail[g] = mids[g]

    # ---- the decisions ----

    def bid(self, view: AuctionView) -> BidDecision:
        hand = view.hand.cpu().numpy()
        ests = self.estimates(hand)
        order = rank_declarations(hand)
        high = view.high.cpu().numpy()
        seat = view.seat.cpu().numpy()
        partner = (high > 0) & (view.high_bidder.cpu().numpy() == (seat + 2) % 4)
        legal = view.legal.cpu().numpy()
        last = seat == view.dealer.cpu().numpy()
        lowest = lowest_bids(legal)  # value of the lowest legal bid, 0 if none
        low = np.where(lowest > 0, np.minimum(lowest, TOTAL_POINTS), 0)  # the points it needs
        over_partner = np.where(high < TOTAL_POINTS, np.minimum(high + PARTNER_MARGIN, TOTAL_POINTS), 0)
        low = np.where(partner, over_partner, low)  # the partner is outbid only by a clearly stronger hand
        top = np.where(last | (self.mode == "lowest"), low, TOTAL_POINTS)  # the last seat only needs to win
        level = self.best_levels(ests, low, top)
        if self.mode == "lowest":  # a lock bids 1 mark all the same: it costs nothing and shuts the others out
            lock = (level > 0) & (level < TOTAL_POINTS) & ~last
            full = np.full(len(hand), TOTAL_POINTS)
            level = np.where(lock & (self.best_levels(ests, np.where(lock, full, 0), full) > 0), full, level)
        actions = np.zeros(len(hand), dtype=np.int64)
        lines = []
        for g in range(len(hand)):
            value = 0
            if level[g]:
                value = int(lowest[g]) if lowest[g] > TOTAL_POINTS else int(level[g])
                why = f"bid {bid_name(bid_action(value))}"
            elif partner[g]:
                why = f"pass: partner holds the bid at {bid_name(bid_action(int(high[g])))}"
            elif lowest[g] and not legal[g, PASS]:
                value, why = int(lowest[g]), f"forced: bid {bid_name(bid_action(int(lowest[g])))}"
            else:
                why = "pass" if lowest[g] else "pass: no bid is left"
            shown = value or int(level[g] or lowest[g] or MIN_BID)  # the bid made, or the one not made
            at = min(shown, TOTAL_POINTS)
            p = ests[g].p_make(at)
            d = _best_decl(p, order[g])
            exact = "" if d not in ests[g].cands or ests[g].known(at)[list(ests[g].cands).index(d)] else " at least"
            lines.append(f"P(make {_level_name(shown)}) ={exact} {p[d]:.2f} with {_trump(d)}; {why}")
            actions[g] = bid_action(value)
        return BidDecision(torch.from_numpy(actions).to(view.legal.device), lines)

    def declare(self, view: AuctionView) -> DeclDecision:
        """The declaration with the highest P(make the winning bid); only undecided contenders are solved (none
        after this bidder's own winning bid: it was measured at that level, the others failed at a lower one)."""
        hand = view.hand.cpu().numpy()
        ests = self.estimates(hand)
        order = rank_declarations(hand)
        levels = [min(max(int(v), MIN_BID), TOTAL_POINTS) for v in view.high.cpu().numpy()]
        asks = []
        for e, level in zip(ests, levels, strict=True):
            best_known = e.p_make(level)[e.cands].max()
            asks.append((e, level, ~e.known(level) & (e.p_upper(level)[e.cands] > best_known)))
        self.resolve(asks)
        decls = np.array([_best_decl(e.p_make(lv), o) for e, lv, o in zip(ests, levels, order, strict=True)])
        lines = [
            f"P(make {_level_name(int(v))}) = {ests[g].p_make(levels[g])[d]:.2f} with {_trump(int(d))}"
            for g, (v, d) in enumerate(zip(view.high.cpu().numpy(), decls, strict=True))
        ]
        return DeclDecision(torch.from_numpy(decls.astype(np.int64)).to(view.hand.device), lines)


def _best_decl(p: np.ndarray, order: np.ndarray) -> int:
    """The declaration with the highest P(make) in `p` [10]; ties go to the earlier one in `order`."""
    return int(order[int(np.argmax(p[order]))])


def _level_name(value: int) -> str:
    return bid_name(bid_action(int(value))) if value else str(MIN_BID)


def _trump(decl: int) -> str:
    return DECL_NAMES[decl] if decl >= 7 else f"{DECL_NAMES[decl]} trump"


def mc_bidder_from_spec(params: dict[str, str], device: torch.device, seed: int) -> MonteCarloBidder:
    worlds = pop_param(params, "worlds", int, 8)
    threshold = pop_param(params, "threshold", float, DEFAULT_THRESHOLD)
    decls = pop_param(params, "decls", int, 4)
    mode = pop_param(params, "bid", str, DEFAULT_MODE)
    seed = pop_param(params, "seed", int, seed)
    reject_unknown_bidder("mc", params)
    return MonteCarloBidder(worlds, threshold, seed, decls, mode)
