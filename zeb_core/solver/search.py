"""The exact play-phase search: fail-soft alpha-beta over bitmask hands, compiled with numba.

Values are always *team 0's points from the position to the end of the hand* (the trick in progress included);
team 0's seats maximise, team 1's minimise. The search uses
- a transposition table at trick boundaries, keyed on the remaining dominoes (28 bits) and the leader: given
  the deal, those fix every hand, and the points still to come do not depend on how the position was reached.
  Entries hold a lower and an upper bound and the best lead; a per-solve stamp invalidates old deals for free;
- move ordering: the table's lead first, then cheap trick winners, count on a partner's trick, low discards;
- equivalence: two dominoes of one hand that every remaining trick treats alike (same count, same led suit,
  same following and no domino still in play, or in the trick, ranked between them in any suit that can still be
  led) give the same value, so only the first is searched (as double-dummy bridge solvers do);
- the last trick played out directly, and bounds from the points still available.

The search is recursive, so it is compiled per process (about ten seconds; `warm_up`); numba's on-disk cache is
not used for it (it crashed when a second process loaded a cached recursive function).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from zeb_core.solver.tables import ABOVE, FIVE, FOLLOW, LEADS, LED, POINTS, RANK, TEN

TT_BITS = 20
_TT_MASK = (1 << TT_BITS) - 1
_HASH_MUL = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed 64-bit integer (Fibonacci hashing)
_KEY_MASK = (1 << 30) - 1
_STAMP_MAX = (1 << 16) - 1
_NO_MOVE = 31
INF = 1000


@njit(cache=True, inline="always")
def popcount(x: int) -> int:
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56 & 0xFF


@njit(cache=True, inline="always")
def lowest_bit(x: int) -> int:
    """Index of the lowest set bit of a non-zero mask below 2**28."""
    i = 0
    while (x >> i) & 1 == 0:
        i += 1
    return i


@njit(cache=True, inline="always")
def count_of(mask: int) -> int:
    return 10 * popcount(mask & TEN) + 5 * popcount(mask & FIVE)


class Tables:
    """Per-process search state handed to the kernels: the rule masks and the scratch and table arrays."""

    def __init__(self) -> None:
        self.follow, self.leads, self.led, self.rank, self.above = (
            FOLLOW,
            LEADS,
            LED,
            RANK,
            ABOVE,
        )
        self.points = POINTS
        self.tt = np.zeros(1 << TT_BITS, dtype=np.int64)  # packed entries, see _tt_store
        self.scratch = np.zeros((32, 16), dtype=np.int64)  # per depth: 8 moves, 8 scores
        self.stats = np.zeros(4, dtype=np.int64)  # [stamp, nodes, -, -]


@njit(cache=True)
def new_stamp(tt: np.ndarray, stats: np.ndarray) -> None:
    """Start a new deal: entries of older stamps no longer match (the table is cleared when stamps wrap)."""
    stats[0] += 1
    if stats[0] > _STAMP_MAX:
        tt[:] = 0
        stats[0] = 1


@njit(cache=True, inline="always")
def _tt_slot(key: int) -> int:
    return ((key * _HASH_MUL) >> 40) & _TT_MASK


@njit(cache=True, inline="always")
def _tt_store(tt, stats, key, lo, hi, move):
    """Packed entry: key (30 bits) | lo (6) | hi (6) | move (5) | stamp (16); bounds merge with a same-key entry."""
    slot = _tt_slot(key)
    e = tt[slot]
    stamp = stats[0]
    if (e >> 47) == stamp and (e & _KEY_MASK) == key:
        lo = max(lo, (e >> 30) & 63)
        hi = min(hi, (e >> 36) & 63)
        if move == _NO_MOVE:
            move = (e >> 42) & 31
    tt[slot] = key | (lo << 30) | (hi << 36) | (move << 42) | (stamp << 47)


@njit(cache=True)
def _last_trick(h, leader, follow, led, rank):
    """Team 0's points from the last trick, every seat holding one domino."""
    d = lowest_bit(h[leader])
    suit = led[d]
    best, best_seat, pts = rank[suit, d], leader, 1 + POINTS[d]
    for i in range(1, 4):
        s = (leader + i) & 3
        d = lowest_bit(h[s])
        r = rank[suit, d]
        pts += POINTS[d]
        if r > best:
            best, best_seat = r, s
    return pts if (best_seat & 1) == 0 else 0


@njit(cache=True, inline="always")
def _equivalent(a, b, suits, occupied, follow, led, rank, above):
    """Whether dominoes a and b (one hand) play alike in every trick still to come, given the live suits."""
    if POINTS[a] != POINTS[b] or led[a] != led[b]:
        return False
    for s in range(8):
        if (suits >> s) & 1 == 0:
            continue
        if ((follow[s] >> a) & 1) != ((follow[s] >> b) & 1):
            return False
        ra, rb = rank[s, a], rank[s, b]
        if ra < rb:
            between = above[s, a] & ~above[s, b]
        elif rb < ra:
            between = above[s, b] & ~above[s, a]
        else:
            continue
        if between & occupied:
            return False
    return True


@njit(cache=True, inline="always")
def _order_moves(
    h,
    seat,
    k,
    legal,
    led_suit,
    best_rank,
    best_seat,
    tt_move,
    follow,
    led,
    rank,
    above,
    out,
):
    """Write the legal moves into out[0:n], best first, scores in out[8:8+n]; return n."""
    n = 0
    opp = h[(seat + 1) & 3] | h[(seat + 3) & 3]
    x = legal
    while x:
        m = lowest_bit(x)
        x &= x - 1
        pts = POINTS[m]
        if k == 0:
            s = led[m]
            r = rank[s, m]
            if m == tt_move:
                score = 100000
            elif above[s, m] & opp == 0:  # nobody on the other team can beat it
                score = 5000 + 20 * pts + r
            else:
                score = 1000 - 20 * pts - r
        else:
            r = rank[led_suit, m]
            ours = (best_seat & 1) == (seat & 1)
            if ours:
                if k == 3:
                    score = 3000 + 20 * pts - r
                elif r > best_rank:
                    score = 1500 + 20 * pts - r
                else:
                    score = 2000 + 20 * pts - r
            elif r > best_rank:
                score = 4000 + 20 * pts - r
            else:
                score = 1000 - 20 * pts - r
        j = n
        while j > 0 and out[8 + j - 1] < score:
            out[j] = out[j - 1]
            out[8 + j] = out[8 + j - 1]
            j -= 1
        out[j] = m
        out[8 + j] = score
        n += 1
    return n


@njit(cache=False)
def alphabeta(
    h,
    seat,
    k,
    led_suit,
    best_rank,
    best_seat,
    tpts,
    tmask,
    alpha,
    beta,
    follow,
    leads,
    led,
    rank,
    above,
    tt,
    scratch,
    stats,
):
    """Team 0's points from here to the end: fail-soft alpha-beta in (alpha, beta).

    h: int64 [4] hands as masks (modified during the search, restored on return); seat: the seat to move; k: plays
    in the trick so far (0..3); led_suit, best_rank, best_seat: the trick so far; tpts: its count points;
    tmask: its dominoes as a mask.
    """
    stats[1] += 1
    remaining = h[0] | h[1] | h[2] | h[3]
    key = 0
    tt_move = _NO_MOVE
    if k == 0:
        if remaining == 0:
            return 0
        left = popcount(remaining)
        if left == 4:
            return _last_trick(h, seat, follow, led, rank)
        total = left // 4 + count_of(remaining)
        if alpha >= total:
            return total
        if beta <= 0:
            return 0
        key = remaining | (seat << 28)
        e = tt[_tt_slot(key)]
        if (e >> 47) == stats[0] and (e & _KEY_MASK) == key:
            lo = (e >> 30) & 63
            hi = (e >> 36) & 63
            if lo >= beta or lo == hi:
                return lo
            if hi <= alpha:
                return hi
            alpha = max(alpha, lo)
            beta = min(beta, hi)
            tt_move = (e >> 42) & 31
    alpha0, beta0 = alpha, beta

    hand = h[seat]
    legal = hand
    if k > 0:
        f = hand & follow[led_suit]
        if f:
            legal = f
    depth = popcount(remaining)
    buf = scratch[depth]
    n = _order_moves(
        h,
        seat,
        k,
        legal,
        led_suit,
        best_rank,
        best_seat,
        tt_move,
        follow,
        led,
        rank,
        above,
        buf,
    )

    suits = 0
    if n > 1:
        for s in range(8):
            if remaining & leads[s]:
                suits |= 1 << s
        if k > 0:
            suits |= 1 << led_suit
    live = remaining | tmask
    maximise = (seat & 1) == 0
    best = -INF if maximise else INF
    best_move = _NO_MOVE
    for i in range(n):
        m = buf[i]
        bit = 1 << m
        skip = False
        for j in range(i):
            o = buf[j]
            if _equivalent(m, o, suits, live & ~(bit | (1 << o)), follow, led, rank, above):
                skip = True
                break
        if skip:
            continue
        h[seat] ^= bit
        if k == 0:
            s2 = led[m]
            r2 = rank[s2, m]
            bs2 = seat
        else:
            s2 = led_suit
            r = rank[led_suit, m]
            if r > best_rank:
                r2, bs2 = r, seat
            else:
                r2, bs2 = best_rank, best_seat
        if k == 3:
            pts = tpts + POINTS[m] + 1
            gain = pts if (bs2 & 1) == 0 else 0
            v = gain + alphabeta(
                h,
                bs2,
                0,
                -1,
                0,
                0,
                0,
                0,
                alpha - gain,
                beta - gain,
                follow,
                leads,
                led,
                rank,
                above,
                tt,
                scratch,
                stats,
            )
        else:
            v = alphabeta(
                h,
                (seat + 1) & 3,
                k + 1,
                s2,
                r2,
                bs2,
                tpts + POINTS[m],
                tmask | bit,
                alpha,
                beta,
                follow,
                leads,
                led,
                rank,
                above,
                tt,
                scratch,
                stats,
            )
        h[seat] ^= bit
        if maximise:
            if v > best:
                best, best_move = v, m
                alpha = max(alpha, v)
        else:
            if v < best:
                best, best_move = v, m
                beta = min(beta, v)
        if alpha >= beta:
            break
    if k == 0:
        if best <= alpha0:
            _tt_store(tt, stats, key, 0, best, _NO_MOVE)
        elif best >= beta0:
            _tt_store(tt, stats, key, best, 63, best_move)
        else:
            _tt_store(tt, stats, key, best, best, best_move)
    return best


@njit(cache=True)
def root_trick(h, leader, trick, n_trick, led, rank):
    """The trick in progress: (seat to move, led suit, best rank, best seat, count points, mask of its dominoes)."""
    seat, led_suit, best_rank, best_seat, tpts, tmask = leader, -1, 0, leader, 0, 0
    for i in range(n_trick):
        d = trick[i]
        if i == 0:
            led_suit = led[d]
            best_rank = rank[led_suit, d]
        elif rank[led_suit, d] > best_rank:
            best_rank, best_seat = rank[led_suit, d], seat
        tpts += POINTS[d]
        tmask |= 1 << d
        seat = (seat + 1) & 3
    return seat, led_suit, best_rank, best_seat, tpts, tmask


@njit(cache=False)
def value_window(h, decl, leader, trick, n_trick, alpha, beta, tabs):
    """Fail-soft value (team 0's points still to come) of one position in the window (alpha, beta)."""
    follow, leads, led, rank, above, tt, scratch, stats = tabs
    fd, ld, lt, rk, ab = follow[decl], leads[decl], led[decl], rank[decl], above[decl]
    seat, s, br, bs, tp, tm = root_trick(h, leader, trick, n_trick, lt, rk)
    return alphabeta(
        h,
        seat,
        n_trick,
        s,
        br,
        bs,
        tp,
        tm,
        alpha,
        beta,
        fd,
        ld,
        lt,
        rk,
        ab,
        tt,
        scratch,
        stats,
    )


@njit(cache=True)
def points_left(h, n_trick, trick):
    """All points still to be scored: the remaining count, the trick in progress's count, one per trick left."""
    remaining = h[0] | h[1] | h[2] | h[3]
    tpts = 0
    for i in range(n_trick):
        tpts += POINTS[trick[i]]
    return count_of(remaining) + tpts + (popcount(remaining) + n_trick) // 4


@njit(cache=False)
def value_exact(h, decl, leader, trick, n_trick, guess, tabs):
    """Team 0's exact points still to come, by MTD(f): null-window searches from `guess` (-1: a full window)."""
    total = points_left(h, n_trick, trick)
    if guess < 0:
        return value_window(h, decl, leader, trick, n_trick, -1, total + 1, tabs)
    lower, upper = 0, total
    g = min(max(guess, 0), total)
    while lower < upper:
        beta = g + 1 if g == lower else g
        g = value_window(h, decl, leader, trick, n_trick, beta - 1, beta, tabs)
        if g < beta:
            upper = g
        else:
            lower = g
    return lower


@njit(cache=False)
def reaches(h, decl, leader, trick, n_trick, team, need, tabs):
    """Whether `team` can score at least `need` of the points still to come."""
    total = points_left(h, n_trick, trick)
    if need <= 0:
        return True
    if need > total:
        return False
    if team == 0:
        return value_window(h, decl, leader, trick, n_trick, need - 1, need, tabs) >= need
    t0 = total - need  # team 1 gets >= need  <=>  team 0 gets <= total - need
    return value_window(h, decl, leader, trick, n_trick, t0, t0 + 1, tabs) <= t0
