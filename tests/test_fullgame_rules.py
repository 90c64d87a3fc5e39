"""The full game's rules (issue 16, Engine): the auction's checks, the redeal, forced_bid, marks, the game's end.

Whole games are played through `play_full_games` with `check=True` (every play checked for legality) and
recorded, and the rules are read back from the records.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch
from fullgame_bidders import DOUBLES, DoublesBidder, FixedBidder, PassBidder
from hypothesis import given, settings
from hypothesis import strategies as st

from zeb_core.engine.deal import make_generator
from zeb_core.engine.dominoes import domino_id
from zeb_core.fullgame.auction import (
    BID_VALUES,
    PASS,
    AuctionState,
    IllegalBidError,
    IllegalDeclarationError,
    bid_action,
    hand_marks,
)
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.fullgame.game import GameTooLongError, deals_from_generator, play_full_games
from zeb_core.fullgame.interface import AuctionView, FullGamePlayer
from zeb_core.fullgame.replay import game_records, load_and_check, write_games
from zeb_core.players import make_player


def fgp(bidder, player: str = "random", seed: int = 0) -> FullGamePlayer:  # type: ignore[no-untyped-def]
    bidder = make_bidder(bidder, seed=seed) if isinstance(bidder, str) else bidder
    return FullGamePlayer(f"{bidder.name}+{player}", bidder, make_player(player, seed=seed))


def play(a: FullGamePlayer, b: FullGamePlayer, n: int = 16, seed: int = 0, **kw):  # type: ignore[no-untyped-def]
    team_of_a = torch.arange(n) % 2
    dealer = torch.randint(0, 4, (n,), generator=make_generator(seed + 1))
    games = play_full_games((a, b), team_of_a, deals_from_generator(n, make_generator(seed)), dealer, check=True,
                            record=True, **kw)  # fmt: skip
    return games, game_records(games)


def one_auction(*values: int, dealer: int = 0, forced: bool = False) -> AuctionState:
    auction = AuctionState.start(torch.tensor([dealer]), forced)
    for v in values:
        auction.apply_bids(torch.tensor([bid_action(v)]))
    return auction


# ---------------------------------------------------------------- the auction's checks
def test_doubles_table() -> None:
    assert tuple(domino_id(p, p) for p in range(7)) == DOUBLES


def test_a_bid_below_or_equal_to_the_high_bid_is_refused() -> None:
    auction = one_auction(31)
    for low in (30, 31):
        with pytest.raises(IllegalBidError, match="does not top the high bid 31"):
            auction.apply_bids(torch.tensor([bid_action(low)]))
    auction.apply_bids(torch.tensor([bid_action(32)]))
    assert int(auction.high) == 32 and int(auction.high_bidder) == 2


def test_a_mark_bid_that_jumps_is_refused() -> None:
    with pytest.raises(IllegalBidError, match="at most one mark above"):
        one_auction(42, 126)  # 1 mark then 3 marks
    with pytest.raises(IllegalBidError, match="at most one mark above"):
        one_auction(84, 168)  # 2 marks then 4 marks
    auction = one_auction(84, 126, 168)  # 2, 3, 4 marks: each one more
    assert int(auction.high) == 168 and int(auction.high_bidder) == 3


def test_two_marks_is_allowed_as_an_opening_three_is_not() -> None:
    assert int(one_auction(84).high) == 84
    assert int(one_auction(30, 84).high) == 84  # over a points bid, too
    with pytest.raises(IllegalBidError, match="at most one mark above"):
        one_auction(126)


def test_a_declaration_out_of_range_is_refused() -> None:
    auction = one_auction(30, 0, 0, 0)
    assert bool(auction.needs_declaration())
    for bad in (-1, 10, 99):
        with pytest.raises(IllegalDeclarationError, match=r"outside 0\.\.9"):
            auction.declare(torch.tensor([bad]))
    auction.declare(torch.tensor([9]))
    assert bool(auction.done()) and int(auction.decl) == 9


def test_seats_speak_left_of_the_dealer_first() -> None:
    auction = one_auction(dealer=2)
    spoken = []
    for v in (30, 31, 0, 32):
        spoken.append(int(auction.current))
        auction.apply_bids(torch.tensor([bid_action(v)]))
    assert spoken == [3, 0, 1, 2]
    assert int(auction.high_bidder) == 2 and bool(auction.bidding_over())


def _legal_by_the_rules(high: int, value: int, forced_pass: bool) -> bool:
    """The spec's bid rules, written plainly: the reference the batched legal mask must agree with."""
    if value == 0:
        return not forced_pass
    if value <= high:
        return False
    if value < 42:
        return True
    return value // 42 <= 2 or value // 42 == high // 42 + 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 19), min_size=4, max_size=4), st.integers(0, 3), st.booleans())
def test_every_bid_is_accepted_exactly_when_the_rules_allow_it(actions: list[int], dealer: int, forced: bool) -> None:
    auction = AuctionState.start(torch.tensor([dealer]), forced)
    high = 0
    for k, a in enumerate(actions):
        value = int(BID_VALUES[a])
        allowed = _legal_by_the_rules(high, value, forced and k == 3 and high == 0)
        if not allowed:
            with pytest.raises(IllegalBidError):
                auction.apply_bids(torch.tensor([a]))
            a, value = PASS, 0
            if forced and k == 3 and high == 0:
                a, value = 1, 30
        auction.apply_bids(torch.tensor([a]))
        high = max(high, value)
    assert int(auction.high) == high and bool(auction.bidding_over())


def test_the_driver_refuses_an_illegal_bid_from_a_bidder() -> None:
    # seat after seat bids 30: the second 30 does not top the first
    with pytest.raises(IllegalBidError, match="does not top the high bid 30"):
        play(fgp(FixedBidder(bid_action(30))), fgp(FixedBidder(bid_action(30))), n=2)
    with pytest.raises(IllegalDeclarationError, match=r"outside 0\.\.9"):
        play(fgp(PassBidder(decl=12)), fgp(PassBidder(decl=12)), n=2, forced_bid=True)


# ---------------------------------------------------------------- redeals and the dealer
def test_all_passed_is_a_redeal_by_the_next_dealer_with_no_marks() -> None:
    games, records = play(fgp("random:pass=0.8", seed=1), fgp("random:pass=0.8", seed=2), n=24, seed=3,
                          target_marks=3)  # fmt: skip
    redeals = 0
    for rec in records:
        for h, hand in enumerate(rec["hands"]):
            assert hand["dealer"] == (rec["first_dealer"] + h) % 4  # passes left every hand, redeals included
            if hand["winner"] is None:
                redeals += 1
                assert hand["bids"] == [0, 0, 0, 0] and hand["bid"] == 0 and hand["decl"] is None
                assert hand["plays"] == [] and hand["marks"] == [0, 0] and hand["team_points"] == [0, 0]
                if h + 1 < len(rec["hands"]):
                    assert rec["hands"][h + 1]["deal"] != hand["deal"]  # a fresh deal
            else:
                assert hand["bids"] != [0, 0, 0, 0] and len(hand["plays"]) == 28
    assert redeals > 20  # 0.8^4 of the hands: the rule was exercised
    assert int(games.redeals.sum()) == redeals
    assert games.hands.tolist() == [len(r["hands"]) for r in records]


def test_bidders_that_always_pass_never_end_a_game() -> None:
    with pytest.raises(GameTooLongError, match="has not ended after 12 hands"):
        play(fgp(PassBidder()), fgp(PassBidder()), n=2, max_hands=12)


def test_forced_bid_makes_the_dealer_bid_and_no_hand_is_redealt(tmp_path: Path) -> None:
    games, records = play(fgp(PassBidder()), fgp(PassBidder()), n=8, forced_bid=True, target_marks=3)
    assert int(games.redeals.sum()) == 0
    for rec in records:
        assert rec["forced_bid"] is True
        for hand in rec["hands"]:
            assert hand["bids"] == [0, 0, 0, 30] and hand["winner"] == hand["dealer"] and hand["bid"] == 30
    # random bidders that would often all pass: still no redeal, and the dealer never passes after three passes
    games, records = play(fgp("random:pass=0.9", seed=4), fgp("random:pass=0.9", seed=5), n=16, forced_bid=True,
                          target_marks=2)  # fmt: skip
    assert int(games.redeals.sum()) == 0
    forced = [h for r in records for h in r["hands"] if h["bids"][:3] == [0, 0, 0]]
    assert len(forced) > 10 and all(h["bids"][3] > 0 for h in forced)
    # the replay check knows the rule too: a recorded all-pass in a forced_bid game is refused
    path = tmp_path / "forced.jsonl"
    write_games(path, records)
    assert load_and_check(path).failed == 0
    g, h = next((i, h) for i, r in enumerate(records) for h, hd in enumerate(r["hands"]) if hd["bids"][:3] == [0, 0, 0])
    records[g]["hands"][h]["bids"] = [0, 0, 0, 0]
    write_games(path, records)
    failures = load_and_check(path).failures
    assert list(failures) == [g] and f"hand {h + 1}: bid 4" in failures[g][0], failures
    assert "the dealer must bid" in failures[g][0]


# ---------------------------------------------------------------- marks and the game's end
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 42), st.sampled_from(BID_VALUES[1:].tolist()), st.integers(0, 3))
def test_a_hand_scores_marks_to_exactly_one_team(points: int, value: int, bidder: int) -> None:
    team = bidder % 2
    team_points = torch.zeros(1, 2, dtype=torch.int64)
    team_points[0, team], team_points[0, 1 - team] = points, 42 - points
    gained = hand_marks(team_points, torch.tensor([bidder]), torch.tensor([value]))[0].tolist()
    stake = 1 if value < 42 else value // 42
    made = points >= min(value, 42)
    assert gained[team if made else 1 - team] == stake and gained[1 - team if made else team] == 0


def test_hand_marks_examples() -> None:
    def marks(points: int, value: int, bidder: int = 0) -> list[int]:
        tp = torch.tensor([[points, 42 - points]]) if bidder % 2 == 0 else torch.tensor([[42 - points, points]])
        return hand_marks(tp, torch.tensor([bidder]), torch.tensor([value]))[0].tolist()

    assert marks(30, 30) == [1, 0]  # a points bid made: 1 mark
    assert marks(29, 30) == [0, 1]  # set: the mark goes to the other team
    assert marks(41, 41) == [1, 0]
    assert marks(42, 84) == [2, 0]  # a 2-mark bid needs every trick
    assert marks(41, 84) == [0, 2]
    assert marks(42, 126, bidder=3) == [0, 3]
    assert marks(40, 42, bidder=1) == [1, 0]


def test_recorded_hands_score_the_bid_in_marks_and_games_end_at_the_target() -> None:
    for target in (1, 4):
        games, records = play(fgp("random:pass=0.3", seed=6), fgp("random:pass=0.3", seed=7), n=16, seed=target,
                              target_marks=target)  # fmt: skip
        for rec, final in zip(records, games.marks.tolist()):
            marks = [0, 0]
            for hand in rec["hands"]:
                assert max(marks) < target  # no hand is dealt once a team has the target
                if hand["winner"] is not None:
                    team, value = hand["winner"] % 2, hand["bid"]
                    made = hand["team_points"][team] >= min(value, 42)
                    want = [0, 0]
                    want[team if made else 1 - team] = max(1, value // 42)
                    assert hand["marks"] == want and sum(hand["team_points"]) == 42
                marks = [marks[0] + hand["marks"][0], marks[1] + hand["marks"][1]]
            assert marks == final == rec["final_marks"] and max(marks) >= target
            assert rec["winner"] == (0 if marks[0] >= target else 1) and min(marks) < target


def test_deterministic_games_are_reproducible() -> None:
    a = fgp(DoublesBidder(), "heuristic")
    g1, r1 = play(a, a, n=6, seed=9, target_marks=3)
    g2, r2 = play(a, a, n=6, seed=9, target_marks=3)
    assert r1 == r2 and g1.marks.tolist() == g2.marks.tolist()


# ---------------------------------------------------------------- information
class SpyBidder:
    """Records every view it is shown, with the hand index `clock()` says (then bids as the random bidder)."""

    def __init__(self, clock) -> None:  # type: ignore[no-untyped-def]
        self.inner = make_bidder("random:pass=0.5", seed=3)
        self.name, self.clock = "spy", clock
        self.views: list[tuple[str, int, AuctionView]] = []

    def bid(self, view: AuctionView):  # type: ignore[no-untyped-def]
        self.views.append(("bid", self.clock(), view))
        return self.inner.bid(view)

    def declare(self, view: AuctionView):  # type: ignore[no-untyped-def]
        self.views.append(("declare", self.clock(), view))
        return self.inner.declare(view)


def test_a_bidders_view_holds_its_own_dominoes_and_nobody_elses() -> None:
    # every game of a hand gets the same deal, so each view row can be compared with the seat's own hand
    n, gen = 8, make_generator(11)
    dealt: list[torch.Tensor] = []

    def deals(hand: int) -> torch.Tensor:
        one = torch.rand(28, generator=gen).argsort().view(4, 7).sort(dim=1).values
        dealt.append(one)
        return one.expand(n, 4, 7).clone()

    spy = SpyBidder(lambda: len(dealt) - 1)
    a = FullGamePlayer("spy+random", spy, make_player("random", seed=1))
    b = fgp("random:pass=0.5", seed=2)
    team_of_a = torch.zeros(n, dtype=torch.int64)  # the spy sits at seats 0 and 2
    play_full_games((a, b), team_of_a, deals, torch.arange(n) % 4, target_marks=3, check=True)
    names = {f.name for f in fields(AuctionView)}
    assert names == {"seat", "dealer", "hand", "bids", "high", "high_bidder", "legal", "marks", "target_marks"}
    assert len(spy.views) > 10 and {k for k, _, _ in spy.views} == {"bid", "declare"}
    for kind, hand, view in spy.views:
        deal = dealt[hand]
        assert view.hand.shape == (len(view.seat), 7)
        assert bool((view.seat % 2 == 0).all())  # only its own team's seats
        for row, seat in enumerate(view.seat.tolist()):
            assert view.hand[row].tolist() == deal[seat].tolist()
            others = torch.cat([deal[s] for s in range(4) if s != seat])
            assert not bool(torch.isin(view.hand[row], others).any())
        if kind == "declare":
            assert bool((view.seat == view.high_bidder).all()) and not bool(view.legal.any())
