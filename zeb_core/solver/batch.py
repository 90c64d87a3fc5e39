"""Batched numba entry points: one loop over positions per call, so Python pays its call overhead once.

Each position is a deal of its own, so each gets a fresh transposition-table stamp; the moves of one position
share it (their subtrees overlap, and table entries are true bounds whatever window found them).
`tabs` is `search.Tables().tuple()`: (RULES [10, 520], tt, work).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from zeb_core.solver.search import new_stamp, outcome, points_left, reaches, root_trick, value_exact
from zeb_core.solver.tables import R_FOLLOW, R_POINTS, R_RANK

WIN = 22  # a team wins with more than 21 of the 42 points


@njit(cache=False, nogil=True)  # no GIL: other threads run meanwhile (solver.api: per-thread tables)
def exact_batch(hands, decl, leader, trick, n_trick, guess, tabs, out):
    """out[i] = team 0's points still to come in position i under best play (guess: MTD(f) start, -1 default)."""
    rules, tt, work = tabs
    for i in range(hands.shape[0]):
        new_stamp(tt, work)
        h = hands[i].copy()
        out[i] = value_exact(h, leader[i], trick[i], n_trick[i], guess[i], rules[decl[i]], tt, work)


@njit(cache=False, nogil=True)  # no GIL: other threads run meanwhile (solver.api: per-thread tables)
def reaches_batch(hands, decl, leader, trick, n_trick, team, need, tabs, out):
    """out[i] = whether team[i] can score at least need[i] of the points still to come in position i."""
    rules, tt, work = tabs
    for i in range(hands.shape[0]):
        new_stamp(tt, work)
        h = hands[i].copy()
        out[i] = reaches(h, leader[i], trick[i], n_trick[i], team[i], need[i], rules[decl[i]], tt, work)


@njit(cache=False, nogil=True)  # no GIL: other threads run meanwhile (solver.api: per-thread tables)
def outcome_batch(hands, decl, leader, trick, n_trick, team, mine, tabs, out):
    """out[i] = +1 / 0 / -1 as team[i], with mine[i] points already, ends position i with > / = / < 21 points."""
    rules, tt, work = tabs
    for i in range(hands.shape[0]):
        new_stamp(tt, work)
        h = hands[i].copy()
        out[i] = outcome(h, leader[i], trick[i], n_trick[i], team[i], mine[i], rules[decl[i]], tt, work)


@njit(cache=True)
def play(h, leader, trick, n_trick, m, rules):
    """Play domino m for the seat to move, in place on h and trick: (next leader, next n_trick, points, their team)."""
    seat, led_suit, best_rank, best_seat, tpts, _ = root_trick(h, leader, trick, n_trick, rules)
    h[seat] ^= 1 << m
    if n_trick < 3:
        trick[n_trick] = m
        return leader, n_trick + 1, 0, 0
    if rules[R_RANK + 28 * led_suit + m] > best_rank:
        best_seat = seat
    trick[:] = -1
    return best_seat, 0, tpts + rules[R_POINTS + m] + 1, best_seat & 1


@njit(cache=True)
def legal_moves(h, leader, trick, n_trick, rules):
    """(seat to move, mask of its legal dominoes)."""
    seat, led_suit, _, _, _, _ = root_trick(h, leader, trick, n_trick, rules)
    hand = h[seat]
    if n_trick > 0 and hand & rules[R_FOLLOW + led_suit]:
        return seat, hand & rules[R_FOLLOW + led_suit]
    return seat, hand


MOVE_POINTS, MOVE_WIN, MOVE_REACH = 0, 1, 2  # what move_values_batch puts in out[i, m]


@njit(cache=False, nogil=True)  # no GIL: other threads run meanwhile (solver.api: per-thread tables)
def move_values_batch(hands, decl, leader, trick, n_trick, points, only, mode, target, tabs, out):
    """out[i, m] for each legal m of position i in the mask only[i], after m and best play by both teams: the
    mover's team's final points (MOVE_POINTS), +1/0/-1 as they end above, at or below 21 (MOVE_WIN), or +1/-1 as
    they can still end with at least target[i] points (MOVE_REACH, one null-window search). Other entries are left
    as they are (the caller fills them with NaN).
    """
    rules_all, tt, work = tabs
    child_trick = np.empty(3, dtype=np.int64)
    for i in range(hands.shape[0]):
        new_stamp(tt, work)
        rules = rules_all[decl[i]]
        seat, legal = legal_moves(hands[i], leader[i], trick[i], n_trick[i], rules)
        legal &= only[i]
        team = seat & 1
        guess = -1
        x = legal
        while x:
            m = 0
            while (x >> m) & 1 == 0:
                m += 1
            x &= x - 1
            h = hands[i].copy()
            child_trick[:] = trick[i]
            lead2, n2, gain, gteam = play(h, leader[i], child_trick, n_trick[i], m, rules)
            mine = points[i, team] + (gain if gteam == team else 0)
            if mode == MOVE_WIN:
                out[i, m] = outcome(h, lead2, child_trick, n2, team, mine, rules, tt, work)
            elif mode == MOVE_REACH:
                ok = reaches(h, lead2, child_trick, n2, team, target[i] - mine, rules, tt, work)
                out[i, m] = 1.0 if ok else -1.0
            else:
                v0 = value_exact(h, lead2, child_trick, n2, guess, rules, tt, work)
                guess = v0
                total = points_left(h, n2, child_trick, rules)
                out[i, m] = mine + (v0 if team == 0 else total - v0)
