"""Bot protocol version 2 (docs/bot-protocol-v2.md): whole auctions, declarations and hands played through
`BotSession.respond`, each request built from a real engine state and each reply checked legal by the engine;
version 1 answered exactly as the play-phase code answers it; malformed version-2 requests get one clear error;
the JSON-lines and HTTP transports carry both versions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from test_bot import bot_replies, request_from_state

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.engine.dominoes import MAX_BID, N_DECLS
from zeb_core.fullgame.auction import BID_VALUES, AuctionState, bid_action
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision
from zeb_core.serve.app import create_app
from zeb_core.serve.bot import SPEC_EXAMPLE as EXAMPLE
from zeb_core.serve.bot import BotSession

HAND = [0, 1, 2, 3, 4, 5, 27]
BID = {"version": 2, "phase": "bid", "seat": 1, "dealer": 0, "hand": HAND, "bids": []}
DECLARE = {**BID, "phase": "declare", "bids": [[1, 31], [2, 0], [3, 0], [0, 0]]}
PLAY_V2 = {"version": 2, "phase": "play"}
PLAY = {**EXAMPLE, **PLAY_V2}


def _legal(auction: AuctionState) -> list[int]:
    return [int(BID_VALUES[a]) for a in auction.legal_mask()[0].nonzero().flatten().tolist()]


def play_hand(spec: str, seed: int, forced_bid: bool, play: bool = True) -> dict[str, Any]:
    """One hand through the protocol, seat by seat, every request cut from the engine's true state (without
    `play`: the auction and the declaration only)."""
    gen = make_generator(seed)
    hands = torch.rand(1, 28, generator=gen).argsort(dim=1).view(1, 4, 7).sort(dim=2).values
    dealer, marks = seed % 4, [seed % 3, (seed // 3) % 3]
    sessions = [BotSession.from_spec(spec, seed=seed * 4 + s) for s in range(4)]
    auction = AuctionState.start(torch.tensor([dealer]), forced_bid=forced_bid)
    bids: list[list[int]] = []
    context = {"version": 2, "marks": marks, "target": 7, "forced_bid": forced_bid}
    while not bool(auction.bidding_over()[0]):
        seat = int(auction.current[0])
        legal = _legal(auction)
        request = {**context, "phase": "bid", "seat": seat, "dealer": dealer, "hand": hands[0, seat].tolist()}
        reply = sessions[seat].respond({**request, "bids": bids, "legal": legal})
        assert set(reply) == {"bid", "name", "explanation"}, reply
        assert reply["bid"] in legal and reply["explanation"].strip() and "\n" not in reply["explanation"]
        auction.apply_bids(torch.tensor([bid_action(reply["bid"])]), check=True)
        bids.append([seat, reply["bid"]])
    out: dict[str, Any] = {"bids": bids}
    if bool(auction.all_passed()[0]):
        assert not forced_bid
        return out
    winner, value = int(auction.high_bidder[0]), int(auction.high[0])
    request = {**context, "phase": "declare", "seat": winner, "dealer": dealer, "hand": hands[0, winner].tolist()}
    reply = sessions[winner].respond({**request, "bids": bids})
    assert set(reply) == {"decl", "name", "explanation"} and 0 <= reply["decl"] < N_DECLS, reply
    decl = reply["decl"]
    auction.declare(torch.tensor([decl]), check=True)
    out.update(winner=winner, value=value, decl=decl)
    if not play:
        return out
    state = GameState.from_deal(
        hands, torch.tensor([decl]), torch.tensor([winner]), torch.tensor([min(value, MAX_BID)]), torch.tensor([winner])
    )
    plays: list[list[int]] = []
    while not bool(state.done()[0]):
        seat = int(state.current[0])
        held = state.held(torch.tensor([seat]))[0].nonzero().flatten().tolist()
        request = {**context, "phase": "play", "seat": seat, "hand": held, "decl": decl, "bidder": winner}
        request.update(bid=value, leader=winner, plays=plays, dealer=dealer, bids=bids)
        reply = sessions[seat].respond(request)
        assert bool(state.legal_mask()[0, reply["play"]]), (reply, request)
        state.apply(torch.tensor([reply["play"]]), check=True)
        plays.append([seat, reply["play"]])
    out["points"] = state.team_points[0].tolist()
    return out


@pytest.mark.parametrize("spec", ["random+random", "baseline+heuristic", "mc:worlds=2+heuristic"])
def test_auctions_declarations_and_hands_through_the_protocol(spec: str) -> None:
    seeds = range(2) if spec.startswith("mc") else range(6)
    results = [play_hand(spec, seed, forced_bid=seed % 2 == 1) for seed in seeds]
    played = [r for r in results if "winner" in r]
    assert played and all(sum(r["points"]) == 42 for r in played)
    assert all(len(r["bids"]) == 4 for r in results)


def test_random_bidders_reach_mark_bids_and_redeals() -> None:
    results = [play_hand("random:pass=0.6+random", seed, forced_bid=False, play=False) for seed in range(24)]
    assert any("winner" not in r for r in results), "some auction is passed out"
    assert any(r.get("value", 0) >= 84 for r in results), "some auction reaches 2 marks or more"


# ---------------------------------------------------------------- version 1 unchanged
def _positions(n: int) -> list[dict[str, Any]]:
    gen = make_generator(3)
    state = deal_benchmark(n, gen)
    requests = []
    for step in range(0, 27, 4):
        while int(state.n_plays[0]) < step:
            legal = state.legal_mask()
            state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))
        requests += [request_from_state(state, g) for g in range(n)]
    return requests


@pytest.mark.parametrize("spec", ["random", "heuristic"])
def test_v1_requests_are_answered_as_the_play_phase_answers_them(spec: str) -> None:
    """No version, version 1, and a version-2 play of a points bid: the same reply as the version-1 code path
    (`respond_play`) from a session seeded alike, for real positions and for impossible ones."""
    requests = [*_positions(3), {**EXAMPLE, "seat": 1}, {**EXAMPLE, "decl": 12}, {**EXAMPLE, "hand": "abc"}]
    for i, req in enumerate(requests):
        expected = BotSession.from_spec(spec, seed=i).respond_play(req)
        assert BotSession.from_spec(spec, seed=i).respond(req) == expected
        assert BotSession.from_spec(spec, seed=i).respond({**req, "version": 1}) == expected
        if "error" not in expected:
            assert "play" in expected and BotSession.from_spec(spec, seed=i).respond({**req, **PLAY_V2}) == expected
    assert BotSession.from_spec("heuristic").respond([1, 2]) == {"error": "the request must be a JSON object"}


def test_a_mark_bid_plays_as_a_bid_of_all_42_points() -> None:
    v1 = BotSession.from_spec("heuristic").respond({**EXAMPLE, "bid": 42})
    v2 = BotSession.from_spec("heuristic").respond({**PLAY, "bid": 126})
    assert v1 == v2 and v1["play"] in (15, 20)


# ---------------------------------------------------------------- malformed version-2 requests
def _with(base: dict[str, Any], **change: Any) -> dict[str, Any]:
    out = {**base, **change}
    return {k: v for k, v in out.items() if v is not ...}


BAD = [
    (_with(BID, version=3), "'version' must be 1 or 2"),
    (_with(BID, version="2"), "'version' must be 1 or 2"),
    (_with(BID, version=True), "'version' must be 1 or 2"),
    (_with(BID, phase=...), "missing field 'phase'"),
    (_with(BID, phase="auction"), "'phase' must be one of bid, declare, play"),
    (_with(BID, hand=...), "missing field 'hand'"),
    (_with(BID, hand=HAND[:6]), "'hand': list should have at least 7 items"),
    (_with(BID, hand=[0, 1, 2, 3, 4, 5, 5]), "is in the hand twice"),
    (_with(BID, hand=[0, 1, 2, 3, 4, 5, 28]), "'hand[6]': input should be less than or equal to 27"),
    (_with(BID, seat=4), "'seat': input should be less than or equal to 3"),
    (_with(BID, seat="1"), "'seat': input should be a valid integer"),
    (_with(BID, seat=2), "it is seat 1's turn to bid, not seat 2's"),
    (_with(BID, seat=3, bids=[[2, 30], [1, 31]]), "bid 1 is by seat 2, but it was seat 1's turn"),
    (_with(BID, seat=3, bids=[[1, 31], [2, 30]]), "bid 2: seat 2 cannot bid 30: it does not top the high bid 31"),
    (_with(BID, seat=3, bids=[[1, 84], [2, 168]]), "at most one mark above the high bid"),
    (_with(BID, seat=2, bids=[[1, 29]]), "bid 1: 29 is not a bid"),
    (_with(BID, seat=2, bids=[[1, 30, 5]]), "'bids[0]': list should have at most 2 items"),
    (_with(BID, seat=0, bids=[[1, 0], [2, 0], [3, 0], [0, 0]]), "'bids': list should have at most 3 items"),
    (_with(BID, legal=[0, 30]), "'legal' [0, 30] is not what the rules allow here"),
    (_with(BID, marks=[7, 2]), "the game is over: team 0 has 7 marks of 7"),
    (_with(BID, marks=[1]), "'marks': list should have at least 2 items"),
    (_with(BID, target=0), "'target': input should be greater than or equal to 1"),
    (_with(BID, forced_bid="yes"), "'forced_bid': input should be a valid boolean"),
    (_with(BID, seat=0, bids=[[1, 0], [2, 0], [3, 0]], forced_bid=True, legal=[0, 30]), "is not what the rules"),
    (_with(DECLARE, bids=[[1, 0], [2, 0], [3, 0], [0, 0]]), "every seat passed"),
    (_with(DECLARE, seat=2), "seat 1 won the auction, so seat 1 declares, not seat 2"),
    (_with(DECLARE, bids=[[1, 31], [2, 0], [3, 0]]), "'bids': list should have at least 4 items"),
    (_with(PLAY, bid=43), "'bid' 43 is not a bid"),
    (_with(PLAY, bid=300), "'bid': input should be less than or equal to 294"),
    (_with(PLAY, decl=10), "'decl': input should be less than or equal to 9"),
    (_with(PLAY, dealer=2), "'dealer' and 'bids' (the auction) come together"),
    (_with(PLAY, dealer=2, bids=[[3, 40], [0, 0], [1, 0], [2, 0]], bidder=0), "was won by seat 3 with 40"),
    (_with(PLAY, dealer=2, bids=[[3, 0], [0, 0], [1, 0], [2, 0]]), "every seat passed in 'bids'"),
    (_with(PLAY, dealer=2, bids=[[3, 40], [0, 0], [1, 0], [2, 0]], leader=0), "leads the first trick, not seat 0"),
    (_with(PLAY, seat=1), "it is seat 0's turn, not seat 1's"),
    (_with(PLAY, hand=[0, 6, 8, 9, 15, 15]), "twice"),
]


@pytest.mark.parametrize("request_, fragment", BAD, ids=[f for _, f in BAD])
def test_malformed_v2_requests_get_one_clear_error(request_: dict[str, Any], fragment: str) -> None:
    reply = BotSession.from_spec("random+heuristic").respond(request_)
    assert set(reply) == {"error"} and fragment in reply["error"], reply


def test_good_v2_requests_beside_the_bad_ones_are_answered() -> None:
    session = BotSession.from_spec("random+heuristic")
    assert session.respond(BID)["bid"] in _legal(AuctionState.start(torch.tensor([0])))
    assert session.respond({**BID, "seat": 2, "bids": [[1, 84]], "legal": [0, 126]})["bid"] in (0, 126)
    assert session.respond(DECLARE)["decl"] in range(N_DECLS)
    auction = {"dealer": 2, "bids": [[3, 40], [0, 0], [1, 0], [2, 0]], "marks": [3, 6], "target": 7}
    assert session.respond({**PLAY, **auction})["play"] in (15, 20)
    plain = BotSession.from_spec("heuristic")  # a player spec alone bids with the default bidder
    assert plain.respond(BID)["bid"] in (0, *range(30, 42), 42, 84)


class IllegalBidder:
    """A bidder with a bug: always 7 marks, and trumps out of range."""

    name = "buggy"

    def bid(self, view: AuctionView) -> BidDecision:
        return BidDecision(torch.full((len(view.seat),), 19))

    def declare(self, view: AuctionView) -> DeclDecision:
        return DeclDecision(torch.full((len(view.seat),), 12))


class RaisingBidder(IllegalBidder):
    def bid(self, view: AuctionView) -> BidDecision:
        raise RuntimeError("out of cheese")


def test_a_buggy_bidder_gets_an_error_reply_never_a_raise() -> None:
    player = BotSession.from_spec("heuristic").player
    buggy = BotSession(player, bidder=IllegalBidder())
    assert buggy.respond(BID) == {"error": "internal error: bidder buggy chose an illegal bid 19"}
    assert "declaration 12 outside 0..9" in buggy.respond(DECLARE)["error"]
    raising = BotSession(player, bidder=RaisingBidder())
    assert raising.respond(BID) == {"error": "internal error: RuntimeError: out of cheese"}
    assert raising.respond(EXAMPLE)["play"] in (15, 20)  # and it keeps serving


# ---------------------------------------------------------------- transports
def test_json_lines_carry_both_versions() -> None:
    lines = [EXAMPLE, BID, {"version": 9}, DECLARE, {**PLAY, "bid": 84}, {**EXAMPLE, "version": 1}]
    replies = bot_replies("random+heuristic", "\n".join(json.dumps(x) for x in lines) + "\n{oops\n")
    assert len(replies) == 7
    assert replies[0]["play"] in (15, 20) and replies[5]["play"] in (15, 20) and replies[4]["play"] in (15, 20)
    assert replies[1]["bid"] in (0, *range(30, 42), 42, 84) and replies[3]["decl"] in range(N_DECLS)
    assert "'version' must be 1 or 2" in replies[2]["error"] and "not valid JSON" in replies[6]["error"]


def test_http_move_answers_both_versions() -> None:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        assert c.post("/v1/move", json=EXAMPLE).json()["play"] in (15, 20)
        for params in ({"player": "random+heuristic"}, {"player": "heuristic"}, {}):
            reply = c.post("/v1/move", params=params, json=BID)
            assert reply.status_code == 200 and reply.json()["bid"] in (0, *range(30, 42), 42, 84), reply.text
        assert c.post("/v1/move", json={**DECLARE, "player": "random:pass=1+random"}).json()["decl"] in range(10)
        assert c.post("/v1/move", json={**EXAMPLE, "player": "random+heuristic"}).json()["play"] in (15, 20)
        bad = c.post("/v1/move", json={**BID, "seat": 2})
        assert bad.status_code == 400 and "turn to bid" in bad.json()["error"]
        bad = c.post("/v1/move", params={"player": "random:x=1+heuristic"}, json=BID)
        assert bad.status_code == 400 and "does not take x" in bad.json()["error"]
        schema = c.get("/openapi.json").json()["paths"]["/v1/move"]["post"]["requestBody"]["content"]
        branches = schema["application/json"]["schema"]["anyOf"]
        assert [b["properties"]["version"]["const"] for b in branches] == [1, 2, 2, 2]


def test_the_documented_examples_are_answered_as_documented() -> None:
    """docs/bot-protocol-v2.md: every request example gets a reply of the documented shape, legal by the rules."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "bot-protocol-v2.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc, flags=re.S)]
    requests = [b for b in blocks if b.get("version") == 2]
    assert [r["phase"] for r in requests] == ["bid", "declare", "play"]
    session = BotSession.from_spec("baseline+heuristic")
    bid, decl, play = (session.respond(r) for r in requests)
    assert set(bid) == {"bid", "name", "explanation"} and bid["bid"] in (0, *range(31, 42), 42, 84)
    assert set(decl) == {"decl", "name", "explanation"} and decl["decl"] in range(N_DECLS)
    assert play["play"] == 1  # the only legal play, as the doc says
