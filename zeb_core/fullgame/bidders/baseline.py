"""The `baseline` bidder: counts trumps, the trump double, other doubles and count, as a person does at the table.

For each declaration it can name (the pip suits 0..6, doubles-trump 7, no-trump 9; never doubles-suit 8) the hand
is worth an estimated number of points for the bidder's team (the bidder leads):

    pip suit d:     12   + 4   x trumps  + 6 x [holds d-d] + 3 x other doubles + 0.2  x count held
    doubles-trump:  14.5 + 3.5 x doubles + 5 x [holds 6-6]                     + 0.35 x count held
    no-trump:       19   + 4   x doubles                                       + 0.3  x count held

Calibration (`bench/baseline_fit.py --hands 2600 --seed 2 --player heuristic`): least squares of the exact
solver's final points for the bidder's team (`solve_points`, the bidder's seat leading, the other 21 dominoes dealt
uniformly, all four seats playing perfectly) over 2,600 random hands x every declaration, one deal each; the
formula is the fit rounded (fitted: 12.5 + 3.9 t + 5.7 top + 2.8 doubles + 0.17 count; 15.1 + 3.2 d + 4.9 top +
0.36 count; 19.7 + 3.9 d + 0.30 count). Per band of the best estimate the solver's mean is close (30..34: 32.6
points, 34..38: 35.9), but one hand is uncertain (residual sd 11 points: the partner's hand is unknown), and real
play takes less: hands estimated 30..38 played out by `heuristic` take about 10 points fewer, by `pimc:worlds=8`
about 6 fewer (`--hands 400 --player pimc:worlds=8`).

Bidding: the best declaration's estimate less `margin` (default 6, that imperfect-information discount), rounded
down, when it clears 30 and tops the high bid. In full games to 7 marks with pimc:worlds=8 playing, margin 6 beat
margin 3 (66% of 80 games) and tied margin 9 (50%); with heuristic playing, larger margins win (9 beat 6 in 73.5%
and 12 beat 9 in 57% of 400 games each), as that player seldom makes a bid. 1 mark only for a near-lock (the estimate
itself at least 44), a further mark bid only over an opponent's mark bid with a near-lock; the partner is outbid
only by an estimate at least `PARTNER_MARGIN` points above its bid; the last seat to speak bids just enough to win
the auction (a points bid scores one mark whatever its level); forced (the dealer after three passes) it bids 30.
"""

from __future__ import annotations

import numpy as np
import torch

from zeb_core.engine.dominoes import COUNT, IS_DOUBLE, N_DECLS, NO_TRUMP, TABLES, TOTAL_POINTS, domino_id
from zeb_core.fullgame.auction import BID_VALUES, PASS, bid_action, bid_name
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision
from zeb_core.players.interface import SpecError, pop_param

DOUBLES_TRUMP = 7
NEAR_LOCK = 44.0  # estimate at which the bidder bids 1 mark
PARTNER_MARGIN = 4  # points above the partner's bid an estimate needs to outbid it
DEFAULT_MARGIN = 6.0  # points a bid stays below the estimate: real play takes fewer points than the solver
NOT_NAMED = -1e9  # the estimate of a declaration the bidder never names

_CALLED = TABLES["called"].astype(np.int64)  # [10, 28]
_OFF_DOUBLES = (IS_DOUBLE[None, :] & ~TABLES["called"]).astype(np.int64)  # [10, 28] doubles outside the called suit
_TOP = np.array([domino_id(d, d) for d in range(7)] + [domino_id(6, 6)], dtype=np.int64)  # highest trump of 0..7
_SINGULAR = ("blank", "one", "two", "three", "four", "five", "six")
_PLURAL = ("blanks", "ones", "twos", "threes", "fours", "fives", "sixes")


def one_hot(hand: np.ndarray) -> np.ndarray:
    """[n, 28] int64 from [n, 7] domino ids."""
    out = np.zeros((hand.shape[0], 28), dtype=np.int64)
    np.put_along_axis(out, hand, 1, axis=1)
    return out


def hand_features(hand: np.ndarray) -> dict[str, np.ndarray]:
    """Per declaration [n, 10]: trumps (called-suit dominoes held), top (holds the highest trump), other doubles;
    and count [n] (count points held)."""
    own = one_hot(hand)
    top = np.zeros((hand.shape[0], N_DECLS), dtype=np.int64)
    top[:, : len(_TOP)] = own[:, _TOP]
    top[:, 8] = 0  # doubles-suit has no trump power
    return {"trumps": own @ _CALLED.T, "top": top, "doubles": own @ _OFF_DOUBLES.T, "count": own @ COUNT}


def estimate_points(hand: np.ndarray) -> np.ndarray:
    """[n, 10] float: the estimated points of the bidder's team for each declaration (NOT_NAMED for 8)."""
    f = hand_features(hand)
    t, top, doubles, count = f["trumps"], f["top"], f["doubles"], f["count"][:, None]
    est = 12.0 + 4.0 * t + 6.0 * top + 3.0 * doubles + 0.2 * count
    est[:, DOUBLES_TRUMP] = (14.5 + 3.5 * t + 5.0 * top + 0.35 * count)[:, DOUBLES_TRUMP]
    est[:, NO_TRUMP] = (19.0 + 4.0 * doubles + 0.3 * count)[:, NO_TRUMP]
    est[:, 8] = NOT_NAMED
    return est


def rank_declarations(hand: np.ndarray) -> np.ndarray:
    """[n, 10] declarations from best to worst estimate (ties: lower id first); doubles-suit always last."""
    return np.argsort(-estimate_points(hand), axis=1, kind="stable")


def describe(hand: np.ndarray, decl: int) -> str:
    """What a person would say about one hand [7] for one declaration: "5 sixes with the 6-6, 2 other doubles"."""
    f = {k: v[0] for k, v in hand_features(hand.reshape(1, -1)).items()}
    count = int(f["count"])
    if decl == NO_TRUMP:
        n = int(f["doubles"][decl])
        parts = [f"no-trump with {n} double" + ("" if n == 1 else "s")]
    else:
        n, top = int(f["trumps"][decl]), bool(f["top"][decl])
        if decl == DOUBLES_TRUMP:
            parts = [f"{n} double" + ("" if n == 1 else "s") + (" with the 6-6" if top else "")]
        else:
            word = _SINGULAR[decl] if n == 1 else _PLURAL[decl]
            parts = [f"{n} {word}" + (f" with the {decl}-{decl}" if top else "")]
        others = int(f["doubles"][decl])
        if others:
            parts.append(f"{others} other double" + ("" if others == 1 else "s"))
    if count:
        parts.append(f"{count} count")
    return ", ".join(parts)


def lowest_bids(legal: np.ndarray) -> np.ndarray:
    """[n] the value of the lowest legal bid of each game (0 when only a pass is legal)."""
    bids = legal.copy()
    bids[:, PASS] = False
    first = bids.argmax(1)
    return np.where(bids.any(1), BID_VALUES.numpy()[first], 0)


def _decide_values(est: np.ndarray, margin: float, view: AuctionView) -> tuple[np.ndarray, list[str]]:
    """[n] bid values (0 pass) from the best estimate [n] of each game, and the reason for each.

    A points bid is the estimate less `margin`; a near-lock is judged on the estimate itself."""
    high = view.high.cpu().numpy()
    seat = view.seat.cpu().numpy()
    partner = (high > 0) & (view.high_bidder.cpu().numpy() == (seat + 2) % 4)
    legal = view.legal.cpu().numpy()
    last = seat == view.dealer.cpu().numpy()
    lowest = lowest_bids(legal)
    values = np.zeros(len(est), dtype=np.int64)
    reasons = []
    for g, e in enumerate(est):
        lock = e >= NEAR_LOCK
        e = e - margin
        if lowest[g] > TOTAL_POINTS:  # the high bid is a mark bid: only a near-lock goes one mark higher
            want = int(lowest[g]) if lock else 0
        else:
            want = TOTAL_POINTS if lock else min(int(np.floor(e)), TOTAL_POINTS - 1)
        can = lowest[g] > 0 and want >= lowest[g]
        if can and partner[g] and (e < high[g] + PARTNER_MARGIN or high[g] >= TOTAL_POINTS):
            why = f"pass: partner holds the bid at {bid_name(bid_action(int(high[g])))}"
        elif can:
            values[g] = lowest[g] if last[g] else want
            why = f"bid {bid_name(bid_action(int(values[g])))}"
        elif not legal[g, PASS]:
            values[g] = lowest[g]
            why = f"forced: bid {bid_name(bid_action(int(values[g])))}"
        else:
            why = "pass"
        reasons.append(why)
    return values, reasons


class BaselineBidder:
    """Bids the best declaration's estimated points (see the module docstring); declares that declaration."""

    def __init__(self, margin: float = DEFAULT_MARGIN) -> None:
        self.margin = margin
        self.name = f"baseline(margin={margin:g})"

    def bid(self, view: AuctionView) -> BidDecision:
        hand = view.hand.cpu().numpy()
        est = estimate_points(hand)
        best = est.argmax(1)
        top = est[np.arange(len(est)), best]
        values, reasons = _decide_values(top, self.margin, view)
        actions = torch.tensor([bid_action(int(v)) for v in values], dtype=torch.int64)
        lines = [
            f"{describe(hand[g], int(best[g]))}: about {int(np.floor(top[g]))} points; {reasons[g]}"
            for g in range(len(hand))
        ]
        return BidDecision(actions.to(view.legal.device), lines)

    def declare(self, view: AuctionView) -> DeclDecision:
        hand = view.hand.cpu().numpy()
        est = estimate_points(hand)
        best = est.argmax(1)
        lines = [
            f"{_decl_word(int(d))}: {describe(hand[g], int(d))}, about {int(np.floor(est[g, d]))} points"
            for g, d in enumerate(best)
        ]
        return DeclDecision(torch.as_tensor(best, dtype=torch.int64).to(view.hand.device), lines)


def _decl_word(decl: int) -> str:
    return "no-trump" if decl == NO_TRUMP else "doubles trump" if decl == DOUBLES_TRUMP else f"{_PLURAL[decl]} trump"


def reject_unknown_bidder(kind: str, params: dict[str, str]) -> None:
    """A clear error for parameters a bidder spec does not take."""
    if params:
        raise SpecError(f"the {kind} bidder does not take {', '.join(sorted(params))}")


def baseline_bidder_from_spec(params: dict[str, str], device: torch.device, seed: int) -> BaselineBidder:
    margin = pop_param(params, "margin", float, DEFAULT_MARGIN)
    reject_unknown_bidder("baseline", params)
    return BaselineBidder(margin)
