"""The exact play-phase search: fail-soft alpha-beta over bitmask hands, compiled with numba.

Values are always *team 0's points from the position to the end of the hand* (the trick in progress included);
team 0's seats maximise, team 1's minimise. The search uses
- a transposition table at trick boundaries, keyed on the remaining dominoes (28 bits) and the leader: given
  the deal, those fix every hand, and the points still to come do not depend on how the position was reached.
  Entries hold a lower and an upper bound and the best lead; a per-solve stamp invalidates old deals for free.
  Before the last seat of a trick moves, its children's entries are probed for a cutoff (enhanced transposition
  cutoffs);
- move ordering: the table's lead, then leads no opponent can beat, then leads the partner wins (with count),
  low leads last; when following, the moves after which the own team is projected to win the trick (each later
  seat answering with its top domino) come first, count on them, cheap otherwise;
- equivalence: two dominoes of one hand that every remaining trick treats alike (same count, same led suit,
  same following and no domino still in play, or in the trick, ranked between them in any suit that can still be
  led) give the same value, so only the first is searched (as double-dummy bridge solvers do);
- the last two tricks searched by a flat loop, and bounds from the points still available.

Arrays handed around: `rules` is one declaration's row of `tables.RULES` (follow/leads masks, led suits, ranks,
masks of higher-ranked dominoes, points); `tt` the table; `work` the statistics and per-depth move lists.
The search is recursive, so it is compiled when this module is imported (a few seconds) and never cached on disk
(numba crashed when a second process loaded a cached recursive function); the small helpers are cached.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from zeb_core.solver.tables import FIVE, R_ABOVE, R_FOLLOW, R_LEADS, R_LED, R_POINTS, R_RANK, RULES, TEN

TT_BITS = 20
_TT_MASK = (1 << TT_BITS) - 1
_HASH_MUL = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed 64-bit integer (Fibonacci hashing)
_KEY_MASK = (1 << 30) - 1
_STAMP_MAX = (1 << 16) - 1
_NO_MOVE = 31
INF = 1000
# work: [0] the table stamp, [1] nodes searched, [2..63] spare; from W_MOVES 16 per depth: 8 moves, 8 scores
W_STAMP, W_NODES, W_MOVES, WORK_SIZE = 0, 1, 64, 64 + 29 * 16


class Tables:
    """The per-process arrays the kernels work in: the transposition table and the work area."""

    def __init__(self) -> None:
        self.rules = RULES
        self.tt = np.zeros(1 << TT_BITS, dtype=np.int64)  # packed entries, see _tt_store
        self.work = np.zeros(WORK_SIZE, dtype=np.int64)

    def tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.rules, self.tt, self.work


@njit(cache=True)
def popcount(x: int) -> int:
    """Set bits of a mask below 2**32 (LLVM turns this into one instruction)."""
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    return ((x * 0x01010101) >> 24) & 0xFF


@njit(cache=True)
def lowest_bit(x: int) -> int:
    """Index of the lowest set bit of a non-zero mask."""
    return popcount((x & -x) - 1)


@njit(cache=True)
def count_of(mask: int) -> int:
    return 10 * popcount(mask & TEN) + 5 * popcount(mask & FIVE)


@njit(cache=True)
def new_stamp(tt: np.ndarray, work: np.ndarray) -> None:
    """Start a new deal: entries of older stamps no longer match (the table is cleared when stamps wrap)."""
    work[W_STAMP] += 1
    if work[W_STAMP] > _STAMP_MAX:
        tt[:] = 0
        work[W_STAMP] = 1


@njit(cache=True)
def _tt_slot(key: int) -> int:
    return ((key * _HASH_MUL) >> 40) & _TT_MASK


@njit(cache=True)
def _tt_store(tt, work, key, lo, hi, move):
    """Packed entry: key (30 bits) | lo (6) | hi (6) | move (5) | stamp (16); bounds merge with a same-key entry."""
    slot = _tt_slot(key)
    e = tt[slot]
    stamp = work[W_STAMP]
    if (e >> 47) == stamp and (e & _KEY_MASK) == key:
        lo = max(lo, (e >> 30) & 63)
        hi = min(hi, (e >> 36) & 63)
        if move == _NO_MOVE:
            move = (e >> 42) & 31
    tt[slot] = key | (lo << 30) | (hi << 36) | (move << 42) | (stamp << 47)


@njit(cache=True)
def _store_bound(tt, work, key, v, alpha, beta, move):
    """Store a fail-soft result v of a search in (alpha, beta) as the bound it is."""
    if v <= alpha:
        _tt_store(tt, work, key, 0, v, _NO_MOVE)
    elif v >= beta:
        _tt_store(tt, work, key, v, 63, move)
    else:
        _tt_store(tt, work, key, v, v, move)


@njit(cache=True)
def _choices(hand, suit, rules):
    """What `hand` may play in a trick of suit `suit`."""
    f = hand & rules[R_FOLLOW + suit]
    return f if f else hand


@njit(cache=True)
def _last_trick(h, leader, rules):
    """Team 0's points from the last trick, every seat holding one domino."""
    d0 = lowest_bit(h[leader])
    row = R_RANK + 28 * rules[R_LED + d0]
    best, win, pts = rules[row + d0], leader, 1 + rules[R_POINTS + d0]
    for i in range(1, 4):
        s = (leader + i) & 3
        d = lowest_bit(h[s])
        pts += rules[R_POINTS + d]
        if rules[row + d] > best:
            best, win = rules[row + d], s
    return 0 if win & 1 else pts


@njit(cache=True)
def _two_tricks(h, leader, alpha, beta, rules):
    """Team 0's points from the last two tricks (two dominoes per seat): alpha-beta over the <= 16 lines.

    Fail-soft in (alpha, beta). Inside, the leader's team maximises its own points L (team 0's are L or
    all the points left - L), so the four levels are max, min, max, min.
    """
    h0, h1, h2, h3 = h[leader], h[(leader + 1) & 3], h[(leader + 2) & 3], h[(leader + 3) & 3]
    total = 2 + count_of(h0 | h1 | h2 | h3)
    a, b = (total - beta, total - alpha) if leader & 1 else (alpha, beta)
    best0 = -1
    x0 = h0
    while x0:
        m0 = lowest_bit(x0)
        x0 &= x0 - 1
        suit = rules[R_LED + m0]
        row = R_RANK + 28 * suit
        alpha1, worst1 = max(a, best0), INF
        x1 = _choices(h1, suit, rules)
        while x1:
            m1 = lowest_bit(x1)
            x1 &= x1 - 1
            beta2, best2 = min(b, worst1), -1
            x2 = _choices(h2, suit, rules)
            while x2:
                m2 = lowest_bit(x2)
                x2 &= x2 - 1
                alpha3, worst3 = max(alpha1, best2), INF
                x3 = _choices(h3, suit, rules)
                while x3:
                    m3 = lowest_bit(x3)
                    x3 &= x3 - 1
                    best, win = rules[row + m0], 0  # first trick; `win` counts seats from the leader
                    if rules[row + m1] > best:
                        best, win = rules[row + m1], 1
                    if rules[row + m2] > best:
                        best, win = rules[row + m2], 2
                    if rules[row + m3] > best:
                        win = 3
                    pts1 = 1 + rules[R_POINTS + m0] + rules[R_POINTS + m1] + rules[R_POINTS + m2] + rules[R_POINTS + m3]
                    d = (h0 ^ (1 << m0), h1 ^ (1 << m1), h2 ^ (1 << m2), h3 ^ (1 << m3))  # the last dominoes
                    lead = lowest_bit(d[win])
                    row2 = R_RANK + 28 * rules[R_LED + lead]
                    best, win2 = rules[row2 + lead], win
                    for j in range(1, 4):
                        w = (win + j) & 3
                        r = rules[row2 + lowest_bit(d[w])]
                        if r > best:
                            best, win2 = r, w
                    mine = (0 if win & 1 else pts1) + (0 if win2 & 1 else total - pts1)
                    worst3 = min(worst3, mine)
                    if worst3 <= alpha3:
                        break
                best2 = max(best2, worst3)
                if best2 >= beta2:
                    break
            worst1 = min(worst1, best2)
            if worst1 <= alpha1:
                break
        best0 = max(best0, worst1)
        if best0 >= b:
            break
    return total - best0 if leader & 1 else best0


@njit(cache=True)
def _equivalent(a, b, suits, occupied, rules):
    """Whether dominoes a and b of one hand (same count and led suit) play alike in every live suit."""
    for s in range(8):
        if (suits >> s) & 1 == 0:
            continue
        f = rules[R_FOLLOW + s]
        if ((f >> a) & 1) != ((f >> b) & 1):
            return False
        ra, rb = rules[R_RANK + 28 * s + a], rules[R_RANK + 28 * s + b]
        if ra < rb:
            between = rules[R_ABOVE + 28 * s + a] & ~rules[R_ABOVE + 28 * s + b]
        elif rb < ra:
            between = rules[R_ABOVE + 28 * s + b] & ~rules[R_ABOVE + 28 * s + a]
        else:
            continue
        if between & occupied:
            return False
    return True


@njit(cache=True)
def _top_rank(hand, s, rules):
    """The highest rank `hand` can play in a trick of suit s."""
    c = _choices(hand, s, rules)
    best = 0
    while c:
        d = lowest_bit(c)
        c &= c - 1
        best = max(best, rules[R_RANK + 28 * s + d])
    return best


@njit(cache=True)
def _partner_tops(hp, s, m, c1, c3, rules):
    """Whether the partner, answering lead m of suit s with its best domino, beats both opponents' answers c1/c3."""
    cp = _choices(hp, s, rules)
    best, top = rules[R_RANK + 28 * s + m], -1
    while cp:
        d = lowest_bit(cp)
        cp &= cp - 1
        if rules[R_RANK + 28 * s + d] > best:
            best, top = rules[R_RANK + 28 * s + d], d
    if top < 0:
        return False
    up = rules[R_ABOVE + 28 * s + top]
    return (c1 & up) == 0 and (c3 & up) == 0


@njit(cache=True)
def _order_moves(h, seat, k, legal, led_suit, best_rank, best_seat, tt_move, rules, work, base):
    """Write the legal moves into work[base:base+n], best first, their scores at base+8; return n."""
    n = 0
    o1, o3 = h[(seat + 1) & 3], h[(seat + 3) & 3]
    t2 = t3 = 0
    if k == 1:  # later seats' best answers, for the projected winner of the trick
        t2 = _top_rank(h[(seat + 1) & 3], led_suit, rules)
    if k == 1 or k == 2:
        t3 = _top_rank(h[(seat + 3 - k) & 3], led_suit, rules)
    x = legal
    while x:
        m = lowest_bit(x)
        x &= x - 1
        pts = rules[R_POINTS + m]
        if k == 0:
            s = rules[R_LED + m]
            r = rules[R_RANK + 28 * s + m]
            up = rules[R_ABOVE + 28 * s + m]
            f1, f3 = o1 & rules[R_FOLLOW + s], o3 & rules[R_FOLLOW + s]
            c1 = f1 if f1 else o1  # what each opponent may answer with
            c3 = f3 if f3 else o3
            if m == tt_move:
                score = 1 << 40
            elif (c1 & up) == 0 and (c3 & up) == 0:  # no opponent can beat it
                score = (1 << 30) + 20 * pts + r
            elif _partner_tops(h[(seat + 2) & 3], s, m, c1, c3, rules):
                score = (1 << 25) + 20 * pts - r
            else:
                score = 1000 - 20 * pts - r
        else:
            r = rules[R_RANK + 28 * led_suit + m]
            b, bs = (r, seat) if r > best_rank else (best_rank, best_seat)
            if k == 1 and t2 > b:
                b, bs = t2, (seat + 1) & 3
            if k < 3 and t3 > b:
                b, bs = t3, (seat + 3 - k) & 3
            if (bs & 1) == (seat & 1):
                score = 3000 + 20 * pts - r
            else:
                score = 1000 - 20 * pts - r
        j = n
        while j > 0 and work[base + 8 + j - 1] < score:
            work[base + j] = work[base + j - 1]
            work[base + 8 + j] = work[base + 8 + j - 1]
            j -= 1
        work[base + j] = m
        work[base + 8 + j] = score
        n += 1
    return n


_I64 = types.int64
_V = types.Array(_I64, 1, "C")
_SEARCH_SIGNATURE = _I64(_V, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _V, _V, _V)


@njit(_SEARCH_SIGNATURE, cache=False)
def alphabeta(h, seat, k, led_suit, best_rank, best_seat, tpts, tmask, alpha, beta, rules, tt, work):
    """Team 0's points from here to the end: fail-soft alpha-beta in (alpha, beta).

    h: int64 [4] hands as masks (modified during the search, restored on return); seat: the seat to move; k: plays
    in the trick so far (0..3); led_suit, best_rank, best_seat: the trick so far; tpts: its count points;
    tmask: its dominoes as a mask.
    """
    work[W_NODES] += 1
    remaining = h[0] | h[1] | h[2] | h[3]
    left = popcount(remaining)
    key = 0
    tt_move = _NO_MOVE
    if k == 0:
        if left == 0:
            return 0
        if left == 4:
            return _last_trick(h, seat, rules)
        total = left // 4 + count_of(remaining)
        if alpha >= total:
            return total
        if beta <= 0:
            return 0
        key = remaining | (seat << 28)
        e = tt[_tt_slot(key)]
        if (e >> 47) == work[W_STAMP] and (e & _KEY_MASK) == key:
            lo, hi = (e >> 30) & 63, (e >> 36) & 63
            if lo >= beta or lo == hi:
                return lo
            if hi <= alpha:
                return hi
            alpha, beta = max(alpha, lo), min(beta, hi)
            tt_move = (e >> 42) & 31
        if left == 8:
            v = _two_tricks(h, seat, alpha, beta, rules)
            _store_bound(tt, work, key, v, alpha, beta, _NO_MOVE)
            return v
    alpha0, beta0 = alpha, beta

    hand = h[seat]
    legal = hand
    if k > 0:
        f = hand & rules[R_FOLLOW + led_suit]
        if f:
            legal = f
    base = W_MOVES + 16 * left
    n = _order_moves(h, seat, k, legal, led_suit, best_rank, best_seat, tt_move, rules, work, base)
    maximise = (seat & 1) == 0
    row = R_RANK + 28 * led_suit

    if k == 3 and left > 5:  # enhanced transposition cutoff: a child's table bound may decide already
        for i in range(n):
            m = work[base + i]
            w = seat if rules[row + m] > best_rank else best_seat
            gain = 0 if w & 1 else tpts + rules[R_POINTS + m] + 1
            ckey = (remaining ^ (1 << m)) | (w << 28)
            e = tt[_tt_slot(ckey)]
            if (e >> 47) == work[W_STAMP] and (e & _KEY_MASK) == ckey:
                if maximise and gain + ((e >> 30) & 63) >= beta:
                    return gain + ((e >> 30) & 63)
                if not maximise and gain + ((e >> 36) & 63) <= alpha:
                    return gain + ((e >> 36) & 63)

    suits = 0  # suits that can still be led (or are being followed), for the equivalence test
    if n > 1:
        for s in range(8):
            if remaining & rules[R_LEADS + s]:
                suits |= 1 << s
        if k > 0:
            suits |= 1 << led_suit
    live = remaining | tmask
    best = -INF if maximise else INF
    best_move = _NO_MOVE
    z = np.int64(0)  # typed zeros: literal arguments would compile a second copy of the search
    for i in range(n):
        m = work[base + i]
        bit = 1 << m
        skip = False
        for j in range(i):
            o = work[base + j]
            if (
                rules[R_POINTS + m] == rules[R_POINTS + o]
                and rules[R_LED + m] == rules[R_LED + o]
                and _equivalent(m, o, suits, live & ~(bit | (1 << o)), rules)
            ):
                skip = True
                break
        if skip:
            continue
        h[seat] ^= bit
        if k == 0:
            s2 = rules[R_LED + m]
            r2, bs2 = rules[R_RANK + 28 * s2 + m], seat
        else:
            s2 = led_suit
            r = rules[row + m]
            r2, bs2 = (r, seat) if r > best_rank else (best_rank, best_seat)
        if k == 3:
            gain = 0 if bs2 & 1 else tpts + rules[R_POINTS + m] + 1
            v = gain + alphabeta(h, bs2, z, z - 1, z, z, z, z, alpha - gain, beta - gain, rules, tt, work)
        else:
            pts2 = tpts + rules[R_POINTS + m]
            v = alphabeta(h, (seat + 1) & 3, k + 1, s2, r2, bs2, pts2, tmask | bit, alpha, beta, rules, tt, work)
        h[seat] ^= bit
        if maximise:
            if v > best:
                best, best_move = v, m
                alpha = max(alpha, v)
        elif v < best:
            best, best_move = v, m
            beta = min(beta, v)
        if alpha >= beta:
            break
    if k == 0:
        _store_bound(tt, work, key, best, alpha0, beta0, best_move)
    return best


@njit(cache=True)
def root_trick(h, leader, trick, n_trick, rules):
    """The trick in progress: (seat to move, led suit, best rank, best seat, count points, mask of its dominoes)."""
    seat, led_suit, best_rank, best_seat, tpts, tmask = leader, -1, 0, leader, 0, 0
    for i in range(n_trick):
        d = trick[i]
        if i == 0:
            led_suit = rules[R_LED + d]
        r = rules[R_RANK + 28 * led_suit + d]
        if i == 0 or r > best_rank:
            best_rank, best_seat = r, seat
        tpts += rules[R_POINTS + d]
        tmask |= 1 << d
        seat = (seat + 1) & 3
    return seat, led_suit, best_rank, best_seat, tpts, tmask


@njit(cache=False)
def value_window(h, leader, trick, n_trick, alpha, beta, rules, tt, work):
    """Fail-soft value (team 0's points still to come) of one position in the window (alpha, beta)."""
    seat, s, br, bs, tp, tm = root_trick(h, leader, trick, n_trick, rules)
    return alphabeta(h, seat, n_trick, s, br, bs, tp, tm, alpha, beta, rules, tt, work)


@njit(cache=True)
def points_left(h, n_trick, trick, rules):
    """All points still to be scored: the remaining count, the trick in progress's count, one per trick left."""
    remaining = h[0] | h[1] | h[2] | h[3]
    tpts = 0
    for i in range(n_trick):
        tpts += rules[R_POINTS + trick[i]]
    return count_of(remaining) + tpts + (popcount(remaining) + n_trick) // 4


@njit(cache=False)
def value_exact(h, leader, trick, n_trick, guess, rules, tt, work):
    """Team 0's exact points still to come, by MTD(f): null-window searches from `guess` (< 0: half the points left).

    Points change only trick by trick, so a few null windows (each cheap, all sharing the table) pin the value.
    """
    total = points_left(h, n_trick, trick, rules)
    lower, upper = 0, total
    g = min(guess, total) if guess >= 0 else total // 2
    while lower < upper:
        beta = g + 1 if g == lower else g
        g = value_window(h, leader, trick, n_trick, beta - 1, beta, rules, tt, work)
        if g < beta:
            upper = g
        else:
            lower = g
    return lower


@njit(cache=False)
def reaches(h, leader, trick, n_trick, team, need, rules, tt, work):
    """Whether `team` can score at least `need` of the points still to come (one null-window search)."""
    total = points_left(h, n_trick, trick, rules)
    if need <= 0:
        return True
    if need > total:
        return False
    if team == 0:
        return value_window(h, leader, trick, n_trick, need - 1, need, rules, tt, work) >= need
    t0 = total - need  # team 1 gets >= need  <=>  team 0 gets <= total - need
    return value_window(h, leader, trick, n_trick, t0, t0 + 1, rules, tt, work) <= t0


@njit(cache=False)
def outcome(h, leader, trick, n_trick, team, mine, rules, tt, work):
    """+1 / 0 / -1 as `team`, holding `mine` points already, ends with more than / exactly / fewer than 21.

    One search with the two-point window around 21 answers all three (fail-soft: a value inside it is exact).
    """
    total = points_left(h, n_trick, trick, rules)
    if team == 0:
        v = value_window(h, leader, trick, n_trick, 20 - mine, 22 - mine, rules, tt, work)
        return 1 if v >= 22 - mine else (-1 if v <= 20 - mine else 0)
    lo = total - 22 + mine  # team 1 wins  <=>  team 0's points still to come <= lo
    v = value_window(h, leader, trick, n_trick, lo, lo + 2, rules, tt, work)
    return 1 if v <= lo else (-1 if v >= lo + 2 else 0)
