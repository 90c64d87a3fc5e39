"""The baseline and Monte Carlo bidders: legal bids, forced bids, information, locks, cache, explanations, specs."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeb_core.engine.dominoes import domino_id
from zeb_core.fullgame.auction import BID_VALUES, N_SEATS, PASS, AuctionState, bid_action
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.fullgame.bidders.baseline import BaselineBidder, estimate_points
from zeb_core.fullgame.bidders.montecarlo import MonteCarloBidder
from zeb_core.fullgame.views import auction_view
from zeb_core.players.interface import SpecError
from zeb_core.solver import search_nodes, warm_up

SIXES = [domino_id(6, p) for p in range(7)]  # all seven sixes: 42 points whatever the others hold
HOPELESS = [domino_id(*d) for d in ((2, 0), (2, 1), (4, 0), (4, 3), (5, 3), (6, 1), (6, 5))]  # no doubles, no count
FAST_MC = "mc:worlds=2,decls=2"
KINDS = ["baseline", "baseline:margin=0", FAST_MC, "mc:worlds=2,decls=3,threshold=0.5,bid=lowest", "random:pass=0.3"]
OURS = (BaselineBidder, MonteCarloBidder)  # the bidders that explain every decision


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warm_up()


def deal_with(own: list[int], seat: int, gen: torch.Generator, n: int = 1) -> torch.Tensor:
    """[n, 4, 7] deals where `seat` holds `own` and the other 21 dominoes are shuffled over the other seats."""
    rest = torch.tensor([d for d in range(28) if d not in own])
    out = torch.empty(n, N_SEATS, 7, dtype=torch.int64)
    for g in range(n):
        others = rest[torch.randperm(21, generator=gen)].view(3, 7)
        out[g] = torch.cat([others[:seat], torch.tensor(own).view(1, 7), others[seat:]])
    return out


def run_auction(bidders: list, hands: torch.Tensor, dealer: torch.Tensor, forced: bool) -> tuple[AuctionState, list]:
    """Plays the auction of every game with bidders[seat]; checks each bid against the view's legal mask."""
    auction = AuctionState.start(dealer, forced_bid=forced)
    lines: list[str] = []
    while not bool(auction.bidding_over().all()):
        actions = torch.zeros(auction.batch_size, dtype=torch.int64)
        for seat in range(N_SEATS):
            games = ((auction.current == seat) & ~auction.bidding_over()).nonzero().flatten()
            if not games.numel():
                continue
            view = auction_view(auction, hands, games)
            decision = bidders[seat].bid(view)
            assert bool(view.legal.gather(1, decision.actions.view(-1, 1)).all()), "an illegal bid"
            if isinstance(bidders[seat], OURS):
                assert decision.explanations is not None and len(decision.explanations) == len(games)
                lines += decision.explanations
            actions[games] = decision.actions
        auction.apply_bids(actions, check=True)
    decls = torch.zeros(auction.batch_size, dtype=torch.int64)
    for seat in range(N_SEATS):
        games = (auction.needs_declaration() & (auction.high_bidder == seat)).nonzero().flatten()
        if games.numel():
            view = auction_view(auction, hands, games, declaring=True)
            decision = bidders[seat].declare(view)
            if isinstance(bidders[seat], OURS):
                assert decision.explanations is not None and len(decision.explanations) == len(games)
                lines += decision.explanations
            decls[games] = decision.decls
    auction.declare(decls, check=True)  # raises on a declaration outside 0..9
    return auction, lines


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    kinds=st.lists(
        st.sampled_from(["baseline", "baseline:margin=0", FAST_MC, "random:pass=0.3"]), min_size=4, max_size=4
    ),
    forced=st.booleans(),
)
def test_every_bid_is_legal_in_random_auctions(seed: int, kinds: list[str], forced: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = 6
    hands = torch.rand(n, 28, generator=gen).argsort(1).view(n, N_SEATS, 7)
    dealer = torch.randint(0, N_SEATS, (n,), generator=gen)
    bidders = [make_bidder(k, seed=seed) for k in kinds]
    auction, lines = run_auction(bidders, hands, dealer, forced)
    assert bool(auction.done().all())
    if forced:
        assert not bool(auction.all_passed().any())
    assert all(line and "\n" not in line for line in lines)


@pytest.mark.parametrize("spec", ["baseline", "mc:worlds=8"])
def test_forced_dealer_bids_30_with_a_hopeless_hand(spec: str) -> None:
    gen = torch.Generator().manual_seed(1)
    dealer = 0
    hands = deal_with(HOPELESS, dealer, gen, n=3)
    passers = [make_bidder("random:pass=1") for _ in range(N_SEATS)]
    passers[dealer] = make_bidder(spec)
    auction, _ = run_auction(passers, hands, torch.full((3,), dealer), forced=True)
    assert auction.bids[:, dealer].tolist() == [bid_action(30)] * 3
    free, _ = run_auction(passers, hands, torch.full((3,), dealer), forced=False)
    assert free.bids[:, dealer].tolist() == [PASS] * 3, "unforced, a hopeless hand passes"


@pytest.mark.parametrize("spec", ["baseline", "mc:worlds=8"])
def test_a_hopeless_hand_passes(spec: str) -> None:
    gen = torch.Generator().manual_seed(2)
    hands = deal_with(HOPELESS, 1, gen)
    auction = AuctionState.start(torch.tensor([0]))
    decision = make_bidder(spec).bid(auction_view(auction, hands, torch.tensor([0])))
    assert decision.actions.tolist() == [PASS]


@pytest.mark.parametrize("spec", ["baseline", FAST_MC, "mc:worlds=6,threshold=0.7,decls=4"])
def test_a_bid_never_depends_on_the_other_seats_dominoes(spec: str) -> None:
    gen = torch.Generator().manual_seed(3)
    own = torch.randperm(28, generator=gen)[:7].tolist()
    seat = 2
    answers = set()
    for trial in range(4):
        hands = deal_with(own, seat, gen)
        auction = AuctionState.start(torch.tensor([1]))  # seat 2 speaks first
        bidder = make_bidder(spec, seed=5)  # a fresh bidder: no cache to lean on
        bid = bidder.bid(auction_view(auction, hands, torch.tensor([0])))
        auction.apply_bids(torch.tensor([bid_action(35)]))  # seat 2 (ours) bid 35
        for _ in range(3):
            auction.apply_bids(torch.tensor([PASS]))
        decl = bidder.declare(auction_view(auction, hands, torch.tensor([0]), declaring=True))
        answers.add((int(bid.actions[0]), bid.explanations[0], int(decl.decls[0]), decl.explanations[0]))
        assert trial == 0 or len(answers) == 1, answers


def test_seven_sixes_are_a_lock() -> None:
    gen = torch.Generator().manual_seed(4)
    hands = deal_with(SIXES, 1, gen)
    mc = MonteCarloBidder(worlds=8)
    p = mc.p_make(torch.tensor([SIXES]).numpy(), 42)
    assert p[0, 6] == 1.0, "P(make 42 with sixes trump) = 1"
    auction = AuctionState.start(torch.tensor([0]))  # seat 1 speaks first, not last
    view = auction_view(auction, hands, torch.tensor([0]))
    for bidder in (mc, BaselineBidder()):
        decision = bidder.bid(view)
        assert int(BID_VALUES[decision.actions[0]]) >= 42, decision.explanations
    line = mc.bid(view).explanations[0]
    assert line.startswith("P(make 1 mark) = 1.00 with sixes trump"), line
    auction.apply_bids(mc.bid(view).actions)
    for _ in range(3):
        auction.apply_bids(torch.tensor([PASS]))
    decl = mc.declare(auction_view(auction, hands, torch.tensor([0]), declaring=True))
    assert decl.decls.tolist() == [6]


def test_the_estimate_cache_makes_a_second_call_free() -> None:
    gen = torch.Generator().manual_seed(6)
    n = 4
    hands = torch.rand(n, 28, generator=gen).argsort(1).view(n, N_SEATS, 7)
    mc = MonteCarloBidder(worlds=8)
    auction = AuctionState.start(torch.zeros(n, dtype=torch.int64))
    view = auction_view(auction, hands, torch.arange(n))
    first = mc.bid(view)
    calls, nodes = mc.solver_calls, search_nodes()
    assert calls > 0 and mc.positions_solved > 0
    again = mc.bid(view)
    assert (mc.solver_calls, search_nodes()) == (calls, nodes), "the second call solved something"
    assert again.actions.tolist() == first.actions.tolist()
    auction.apply_bids(first.actions.clamp(min=bid_action(30)))  # seat 1 bids (at least 30) in every game
    for _ in range(3):
        auction.apply_bids(torch.zeros(n, dtype=torch.int64))
    mc.declare(auction_view(auction, hands, torch.arange(n), declaring=True))
    assert (mc.solver_calls, search_nodes()) == (calls, nodes), "declaring at a level it measured solved something"


def test_the_partner_is_outbid_only_by_a_clearly_stronger_hand() -> None:
    gen = torch.Generator().manual_seed(7)
    fair = [domino_id(*d) for d in ((3, 3), (3, 1), (3, 0), (3, 2), (5, 2), (4, 2), (1, 1))]  # about 38 points
    strong = [domino_id(*d) for d in ((4, 4), (4, 3), (4, 2), (4, 1), (4, 0), (5, 5), (6, 6))]
    bidder = BaselineBidder()
    assert 30 < estimate_points(torch.tensor([fair]).numpy()).max() - bidder.margin < 30 + 4
    for own, high_seat, expect_bid in ((fair, 1, False), (fair, 2, True), (strong, 1, True)):
        hands = deal_with(own, 3, gen)
        auction = AuctionState.start(torch.tensor([0]))  # seat 1 speaks first; seat 1 is seat 3's partner
        for seat in (1, 2):
            auction.apply_bids(torch.tensor([bid_action(30) if seat == high_seat else PASS]))
        decision = bidder.bid(auction_view(auction, hands, torch.tensor([0])))
        assert (int(decision.actions[0]) != PASS) == expect_bid, decision.explanations


def test_explanations_say_why_in_one_line() -> None:
    gen = torch.Generator().manual_seed(8)
    n = 5
    hands = torch.rand(n, 28, generator=gen).argsort(1).view(n, N_SEATS, 7)
    auction = AuctionState.start(torch.zeros(n, dtype=torch.int64))
    view = auction_view(auction, hands, torch.arange(n))
    for line in BaselineBidder().bid(view).explanations:
        assert re.fullmatch(r"[^\n]+: about \d+ points; (bid \S+( marks?)?|pass.*|forced: bid 30)", line), line
    for line in MonteCarloBidder(worlds=4).bid(view).explanations:
        assert re.fullmatch(r"P\(make \S+( marks?)?\) =( at least)? [01]\.\d\d with [a-z-]+( trump)?; [^\n]+", line), (
            line
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mc:worlds=0", "worlds=0 must be at least 1"),
        ("mc:worlds=4,threshold=1.5", "threshold=1.5 must be in (0, 1]"),
        ("mc:decls=11", "decls=11 must be in 1..10"),
        ("mc:bid=most", "bid='most' must be one of highest, lowest"),
        ("mc:worlds=four", "worlds='four' is not a valid int"),
        ("mc:world=4", "the mc bidder does not take world"),
        ("baseline:margin=x", "margin='x' is not a valid float"),
        ("baseline:trumps=3", "the baseline bidder does not take trumps"),
    ],
)
def test_spec_errors_are_clear(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        make_bidder(spec)
