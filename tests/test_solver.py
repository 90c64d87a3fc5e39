"""The exact solver agrees with plain searches written here from the engine's tables, independent of its code.

Positions come from random benchmark deals played forward by random legal moves through the engine
(`GameState.apply(check=True)`), so they are real positions, mid-trick ones included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.dominoes import COUNT, TABLES
from zeb_core.engine.state import GameState
from zeb_core.solver import (
    Positions,
    can_reach,
    contract_targets,
    move_reach_values,
    move_values,
    points_to_come,
    result_for,
    solve_points,
    warm_up,
)

FOLLOWS = TABLES["follows"].tolist()
LED = TABLES["led"].tolist()
RANK = TABLES["rank"].tolist()
PTS = COUNT.tolist()


def random_positions(n: int, min_plays: int, max_plays: int, seed: int) -> tuple[Positions, GameState]:
    """n positions with min_plays..max_plays plays made by random legal moves, and the matching states."""
    gen = make_generator(seed)
    state = deal_benchmark(n, gen)
    target = torch.randint(min_plays, max_plays + 1, (n,), generator=gen)
    snaps = {}
    for step in range(max_plays + 1):
        if step >= min_plays:
            snaps[step] = state.clone()
        if step == max_plays:
            break
        legal = state.legal_mask()
        noise = torch.rand(legal.shape, generator=gen)
        state.apply(torch.where(legal, noise, -1.0).argmax(1), check=True)
    rows = [snaps[int(target[g])].index(torch.tensor([g])) for g in range(n)]
    picked = GameState(**{k: torch.cat([getattr(r, k) for r in rows]) for k in state.__dict__})
    return Positions.from_state(picked), picked


# ------------------------------------------------------------------ independent reference searches
def _unpack(p: Positions, i: int) -> tuple[list[set[int]], int, int, list[tuple[int, int]]]:
    hands = [{d for d in range(28) if (int(p.hands[i, s]) >> d) & 1} for s in range(4)]
    leader, k = int(p.leader[i]), int(p.n_trick[i])
    trick = [((leader + j) % 4, int(p.trick[i, j])) for j in range(k)]
    return hands, int(p.decl[i]), (leader + k) % 4, trick


def _legal(hand: set[int], decl: int, trick: list[tuple[int, int]]) -> list[int]:
    if not trick:
        return sorted(hand)
    suit = LED[decl][trick[0][1]]
    follow = [d for d in hand if FOLLOWS[decl][suit][d]]
    return sorted(follow or hand)


def _trick_result(decl: int, trick: list[tuple[int, int]]) -> tuple[int, int]:
    suit = LED[decl][trick[0][1]]
    best_seat, best = trick[0][0], RANK[decl][suit][trick[0][1]]
    for seat, d in trick[1:]:
        if RANK[decl][suit][d] > best:
            best_seat, best = seat, RANK[decl][suit][d]
    return best_seat, 1 + sum(PTS[d] for _, d in trick)


def _children(hands, decl, seat, trick):
    """(move, gain for team 0, next seat, next trick) for each legal move; the move is removed from the hand."""
    for m in _legal(hands[seat], decl, trick):
        t2 = [*trick, (seat, m)]
        if len(t2) == 4:
            winner, pts = _trick_result(decl, t2)
            yield m, (pts if winner % 2 == 0 else 0), winner, []
        else:
            yield m, 0, (seat + 1) % 4, t2


def minimax(hands, decl, seat, trick) -> int:
    """Team 0's points to come, every line searched."""
    if not any(hands):
        return 0
    values = []
    for m, gain, nxt, t2 in _children(hands, decl, seat, trick):
        hands[seat].remove(m)
        values.append(gain + minimax(hands, decl, nxt, t2))
        hands[seat].add(m)
    return max(values) if seat % 2 == 0 else min(values)


def alphabeta(hands, decl, seat, trick, alpha: int, beta: int) -> int:
    """Team 0's points to come: plain fail-hard alpha-beta, no table, no move ordering."""
    if not any(hands):
        return 0
    maximise = seat % 2 == 0
    for m, gain, nxt, t2 in _children(hands, decl, seat, trick):
        hands[seat].remove(m)
        v = gain + alphabeta(hands, decl, nxt, t2, alpha - gain, beta - gain)
        hands[seat].add(m)
        if maximise:
            alpha = max(alpha, v)
        else:
            beta = min(beta, v)
        if alpha >= beta:
            break
    return alpha if maximise else beta


def reference_points(p: Positions, i: int, full: bool) -> int:
    hands, decl, seat, trick = _unpack(p, i)
    return minimax(hands, decl, seat, trick) if full else alphabeta(hands, decl, seat, trick, -1, 43)


def reference_move_points(p: Positions, i: int) -> dict[int, int]:
    """The final points of the mover's team after each legal move, by plain minimax."""
    hands, decl, seat, trick = _unpack(p, i)
    team = seat % 2
    left = 42 - int(p.points[i].sum())
    out = {}
    for m, gain, nxt, t2 in list(_children(hands, decl, seat, trick)):
        hands[seat].remove(m)
        v0 = gain + minimax(hands, decl, nxt, t2)
        hands[seat].add(m)
        out[m] = int(p.points[i, team]) + (v0 if team == 0 else left - v0)
    return out


# ------------------------------------------------------------------ tests
@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


def test_positions_from_state_match_engine() -> None:
    p, state = random_positions(200, 0, 27, seed=1)
    assert np.array_equal(p.legal_mask(), state.legal_mask().numpy())
    assert np.array_equal(p.current, state.current.numpy())
    assert np.array_equal(p.points, state.team_points.numpy())


def test_exact_points_agree_with_plain_minimax_three_tricks_left() -> None:
    p, _ = random_positions(500, 16, 27, seed=2)
    assert (p.n_trick > 0).sum() > 300  # mid-trick positions are most of them
    got = points_to_come(p)
    want = [reference_points(p, i, full=True) for i in range(len(p))]
    assert got.tolist() == want


def test_exact_points_agree_with_plain_alphabeta_from_fourth_trick() -> None:
    p, _ = random_positions(400, 12, 15, seed=3)  # enough to catch a wrong equivalence (about 1 in 40 is hit)
    got = points_to_come(p)
    want = [reference_points(p, i, full=False) for i in range(len(p))]
    assert got.tolist() == want


def test_move_values_agree_with_minimax() -> None:
    p, state = random_positions(150, 16, 27, seed=4)
    values = move_values(p, "points")
    legal = state.legal_mask().numpy()
    assert np.array_equal(~np.isnan(values), legal)
    for i in range(len(p)):
        ref = reference_move_points(p, i)
        assert {m: int(values[i, m]) for m in ref} == ref


def test_move_values_only_some_moves() -> None:
    p, _ = random_positions(30, 4, 27, seed=10)
    full = move_values(p, "win")
    only = ~np.isnan(full) & (np.arange(28)[None, :] % 2 == 0)
    part = move_values(p, "win", only=only)
    assert np.array_equal(~np.isnan(part), only)
    assert np.array_equal(part[only], full[only])


def test_totals_are_42_and_finished_games_keep_their_points() -> None:
    p, _ = random_positions(60, 0, 28, seed=5)
    pts = solve_points(p)
    assert (pts.sum(1) == 42).all()
    done = p.hands.sum(1) == 0
    assert done.any() and np.array_equal(pts[done], p.points[done])


def test_threshold_form_agrees_with_exact_points() -> None:
    p, _ = random_positions(60, 4, 27, seed=6)
    pts = solve_points(p)
    for team in (0, 1):
        for target in (0, 12, 18, 21, 22, 26, 30, 42, 43):
            assert np.array_equal(can_reach(p, team, target), pts[:, team] >= target), (
                team,
                target,
            )


def test_results_agree_with_exact_points_ties_included() -> None:
    p, _ = random_positions(3000, 14, 27, seed=12)
    pts = solve_points(p)
    assert (pts[:, 0] == 21).sum() >= 5  # 21-21 ties are rare: make sure some are checked
    for team in (0, 1):
        assert np.array_equal(result_for(p, team), np.sign(pts[:, team] - 21)), team


def test_move_values_win_form_agrees_with_points_form() -> None:
    p, _ = random_positions(40, 4, 27, seed=7)
    points = move_values(p, "points")
    win = move_values(p, "win")
    legal = ~np.isnan(points)
    assert np.array_equal(legal, ~np.isnan(win))
    assert np.array_equal(win[legal], np.sign(points[legal] - 21))
    # the best move's value is the position's value for the mover
    best = np.nanmax(points, axis=1)
    mover = p.current % 2
    assert np.array_equal(best, solve_points(p)[np.arange(len(p)), mover])


def test_move_reach_values_agree_with_points_form_for_every_target() -> None:
    p, _ = random_positions(40, 4, 27, seed=17)
    points = move_values(p, "points")
    legal = ~np.isnan(points)
    rng = np.random.default_rng(3)
    for target in (1, 13, 22, 30, 35, 42, rng.integers(1, 43, len(p))):
        reach = move_reach_values(p, target)
        assert np.array_equal(legal, ~np.isnan(reach))
        need = np.broadcast_to(np.asarray(target), (len(p),))[:, None]
        assert np.array_equal(reach[legal], np.where(points >= need, 1.0, -1.0)[legal]), target


def test_contract_targets_are_the_bid_for_the_bidders_and_its_complement_for_the_defenders() -> None:
    _, state = random_positions(12, 0, 20, seed=18)
    state.bid = torch.randint(30, 43, (12,), generator=torch.Generator().manual_seed(1))
    targets = contract_targets(state)
    other_side = state.clone()
    other_side.current = (state.current + 1) % 4  # the next seat: the other team's target for the same hand
    theirs = contract_targets(other_side)
    for g in range(12):
        bidders = int(state.current[g]) % 2 == int(state.bidder[g]) % 2
        bid = int(state.bid[g])
        assert targets[g] == (bid if bidders else 43 - bid)
        # the two targets split the 42 points: whatever the final score, exactly one side meets its own
        assert all((mine >= targets[g]) != (42 - mine >= theirs[g]) for mine in range(43)), g
    # and under best play exactly one side can reach its target, by the exact solver
    team = (state.current % 2).numpy()
    p = Positions.from_state(state)
    assert np.array_equal(can_reach(p, team, targets), ~can_reach(p, 1 - team, theirs))


def test_from_first_lead_bounds_and_consistency() -> None:
    p, _ = random_positions(8, 0, 0, seed=8)
    pts = solve_points(p)
    assert (pts.sum(1) == 42).all() and (pts >= 0).all()
    assert np.array_equal(can_reach(p, p.leader % 2, 22), pts[np.arange(8), p.leader % 2] >= 22)


def test_bad_objective_is_refused() -> None:
    p, _ = random_positions(2, 0, 0, seed=9)
    with pytest.raises(ValueError):
        move_values(p, "contract")
