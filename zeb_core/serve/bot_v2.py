"""Bot protocol version 2 (docs/bot-protocol-v2.md): the auction (a bid or a pass, a declaration) and plays that
may carry the auction's result. `BotSession.respond` sends every request whose `version` is not 1 here.

Requests are checked in two steps, each failure one clear sentence in `{"error": ...}`, never a raise: their shape
by pydantic models (the same models give `zeb serve` its OpenAPI schema, so the schema never promises more than
the bot accepts), then the rules by replaying the bids so far through the engine's `AuctionState`. The bidder is
shown an `AuctionView` built by `fullgame.views.auction_view` from the requesting seat's own hand only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from zeb_core.engine.dominoes import DECL_NAMES, MAX_BID, N_DECLS, N_DOMINOES, TOTAL_POINTS, domino_name
from zeb_core.fullgame.auction import (
    BID_VALUES,
    MAX_MARKS,
    N_SEATS,
    PASS,
    AuctionState,
    IllegalBidError,
    bid_action,
    bid_name,
)
from zeb_core.fullgame.interface import Bidder
from zeb_core.fullgame.views import auction_view

if TYPE_CHECKING:
    from zeb_core.serve.bot import BotSession

VERSION = 2
PHASES = ("bid", "declare", "play")
MAX_TARGET = 21  # marks a game may be played to (7 is usual)
MAX_BID_VALUE = TOTAL_POINTS * MAX_MARKS  # 7 marks

Seat = Annotated[StrictInt, Field(ge=0, le=N_SEATS - 1)]
Domino = Annotated[StrictInt, Field(ge=0, le=N_DOMINOES - 1, description="a domino id (spec/texas42.md)")]
BidValue = Annotated[
    StrictInt, Field(ge=0, le=MAX_BID_VALUE, description="0 pass, 30..41 points, 42 x k for a bid of k marks")
]
Pair = Annotated[list[StrictInt], Field(min_length=2, max_length=2, description="[seat, bid value] or [seat, domino]")]
Marks = Annotated[
    list[Annotated[StrictInt, Field(ge=0)]],
    Field(min_length=2, max_length=2, description="the game score in marks: team 0 (seats 0, 2), team 1"),
]
Target = Annotated[StrictInt, Field(ge=1, le=MAX_TARGET, description="marks that win the game")]
FULL_HAND = Annotated[list[Domino], Field(min_length=7, max_length=7, description="the seat's seven dominoes")]


class _V2(BaseModel):
    """Fields every version-2 request has; unknown fields are ignored, as in version 1."""

    model_config = ConfigDict(extra="ignore")
    version: Literal[2]
    seat: Seat
    marks: Marks = [0, 0]
    target: Target = 7
    forced_bid: StrictBool = Field(False, description="house rule: the dealer may not pass after three passes")


class BidRequest(_V2):
    """The seat to speak: its hand, the dealer and the bids so far, in speaking order from the dealer's left."""

    phase: Literal["bid"]
    dealer: Seat
    hand: FULL_HAND
    bids: Annotated[list[Pair], Field(max_length=N_SEATS - 1)] = []
    legal: Annotated[list[BidValue], Field(max_length=len(BID_VALUES))] | None = Field(
        None, description="optional: the bids the client believes legal; checked against the rules"
    )


class DeclareRequest(_V2):
    """The auction's winner names the declaration: its hand and the whole auction."""

    phase: Literal["declare"]
    dealer: Seat
    hand: FULL_HAND
    bids: Annotated[list[Pair], Field(min_length=N_SEATS, max_length=N_SEATS)]


class PlayRequest(_V2):
    """A version-1 play request whose bid may be a mark bid, optionally with the auction that set the contract."""

    phase: Literal["play"]
    hand: Annotated[list[Domino], Field(max_length=7)]
    decl: Annotated[StrictInt, Field(ge=0, le=N_DECLS - 1)]
    bidder: Seat
    bid: Annotated[StrictInt, Field(ge=30, le=MAX_BID_VALUE, description="30..41 points or 42 x k for k marks")]
    leader: Seat | None = None
    plays: Annotated[list[Pair], Field(max_length=27, description="[seat, domino id] in order")] = []
    dealer: Seat | None = None
    bids: Annotated[list[Pair], Field(min_length=N_SEATS, max_length=N_SEATS)] | None = None


MODELS: dict[str, type[_V2]] = {"bid": BidRequest, "declare": DeclareRequest, "play": PlayRequest}


class InvalidV2Request(ValueError):
    """A version-2 request that is malformed or impossible; the message is one clear sentence."""


# ---------------------------------------------------------------- messages
def validation_message(exc: ValidationError) -> str:
    """Pydantic's first complaint as one sentence: `missing field 'hand'`, `'seat': input should be ..., got 9`."""
    first = exc.errors()[0]
    loc = [str(x) for x in first.get("loc", ())]
    where = repr(loc[0] + "".join(f"[{x}]" for x in loc[1:])) if loc else "the request"
    if first.get("type") == "missing":
        return f"missing field {where}"
    msg = str(first.get("msg", "is invalid"))
    got = repr(first.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{where}: {msg[:1].lower()}{msg[1:]}, got {got}"


def parse_request(request: object) -> _V2:
    """The request as a model of its phase, or InvalidV2Request."""
    if not isinstance(request, dict):
        raise InvalidV2Request("the request must be a JSON object")
    version = request.get("version")
    if type(version) is not int or version != VERSION:
        raise InvalidV2Request(f"'version' must be 1 or 2 (the versions this bot speaks), got {version!r}")
    phase = request.get("phase")
    if "phase" not in request:
        raise InvalidV2Request("missing field 'phase' (a version-2 request is a bid, declare or play request)")
    if not isinstance(phase, str) or phase not in MODELS:
        raise InvalidV2Request(f"'phase' must be one of {', '.join(PHASES)}, got {phase!r}")
    try:
        return MODELS[phase].model_validate(request)
    except ValidationError as exc:
        raise InvalidV2Request(validation_message(exc)) from None


# ---------------------------------------------------------------- the auction from a request
def replay_auction(dealer: int, bids: list[list[int]], forced_bid: bool) -> AuctionState:
    """The auction after `bids` ([seat, value] in speaking order), every bid checked by the engine's rules."""
    auction = AuctionState.start(torch.tensor([dealer]), forced_bid=forced_bid)
    for i, (seat, value) in enumerate(bids):
        turn = int(auction.current[0])
        if seat != turn:
            raise InvalidV2Request(f"bid {i + 1} is by seat {seat}, but it was seat {turn}'s turn (dealer {dealer})")
        try:
            auction.apply_bids(torch.tensor([bid_action(value)]))
        except IllegalBidError as exc:
            raise InvalidV2Request(f"bid {i + 1}: {str(exc).removeprefix('game 0: ')}") from None
    return auction


def legal_values(auction: AuctionState) -> list[int]:
    """The bid values the seat to speak may make (0 = pass), ascending."""
    return [int(BID_VALUES[a]) for a in auction.legal_mask()[0].nonzero().flatten().tolist()]


def _check_hand(hand: list[int], where: str = "hand") -> None:
    seen: set[int] = set()
    for d in hand:
        if d in seen:
            raise InvalidV2Request(f"domino {domino_name(d)} (id {d}) is in the {where} twice")
        seen.add(d)


def _check_score(req: _V2) -> None:
    for team, m in enumerate(req.marks):
        if m >= req.target:
            raise InvalidV2Request(f"the game is over: team {team} has {m} marks of {req.target}")


def _one_game(req: BidRequest | DeclareRequest, auction: AuctionState, declaring: bool) -> Any:
    """The view of `req.seat`: its own hand in a deal whose other seats hold the rest (never shown to it)."""
    rest = [d for d in range(N_DOMINOES) if d not in req.hand]
    hands = []
    for s in range(N_SEATS):
        hands.append(list(req.hand) if s == req.seat else [rest.pop() for _ in range(7)])
    return auction_view(
        auction,
        torch.tensor([hands]),
        torch.tensor([0]),
        marks=torch.tensor([req.marks]),
        target_marks=req.target,
        declaring=declaring,
    )


def _line(explanations: list[str] | None, fallback: str) -> str:
    text = explanations[0] if explanations else None
    if not isinstance(text, str) or not text.strip():
        return fallback
    return " ".join(text.split())


# ---------------------------------------------------------------- answering
def answer_bid(req: BidRequest, bidder: Bidder) -> dict[str, Any]:
    _check_hand(req.hand)
    _check_score(req)
    auction = replay_auction(req.dealer, req.bids, req.forced_bid)
    turn = int(auction.current[0])
    if req.seat != turn:
        raise InvalidV2Request(f"it is seat {turn}'s turn to bid, not seat {req.seat}'s")
    legal = legal_values(auction)
    if req.legal is not None and sorted(set(req.legal)) != legal:
        raise InvalidV2Request(
            f"'legal' {sorted(set(req.legal))} is not what the rules allow here: {legal}"
            + (" (is forced_bid set as at the table?)" if req.forced_bid or req.bids else "")
        )
    view = _one_game(req, auction, declaring=False)
    decision = bidder.bid(view)
    action = int(decision.actions[0])
    if not 0 <= action < len(BID_VALUES) or not bool(view.legal[0, action]):
        return {"error": f"internal error: bidder {bidder.name} chose an illegal bid {action}"}
    value, name = int(BID_VALUES[action]), bid_name(action)
    plain = f"{bidder.name} passes" if action == PASS else f"{bidder.name} bids {name}"
    return {"bid": value, "name": name, "explanation": _line(decision.explanations, plain)}


def answer_declare(req: DeclareRequest, bidder: Bidder) -> dict[str, Any]:
    _check_hand(req.hand)
    _check_score(req)
    auction = replay_auction(req.dealer, req.bids, req.forced_bid)
    if bool(auction.all_passed()[0]):
        raise InvalidV2Request("every seat passed: the hand is redealt and nobody declares")
    winner = int(auction.high_bidder[0])
    if req.seat != winner:
        raise InvalidV2Request(f"seat {winner} won the auction, so seat {winner} declares, not seat {req.seat}")
    decision = bidder.declare(_one_game(req, auction, declaring=True))
    decl = int(decision.decls[0])
    if not 0 <= decl < N_DECLS:
        return {"error": f"internal error: bidder {bidder.name} chose declaration {decl} outside 0..{N_DECLS - 1}"}
    plain = f"{bidder.name} names {DECL_NAMES[decl]}"
    return {"decl": decl, "name": DECL_NAMES[decl], "explanation": _line(decision.explanations, plain)}


def play_request_v1(req: PlayRequest) -> dict[str, Any]:
    """The version-1 request the play phase answers: the contract's bid as the points the bidder needs."""
    try:
        bid_action(req.bid)
    except IllegalBidError:
        raise InvalidV2Request(f"'bid' {req.bid} is not a bid: 30..41 points or 42 x 1..{MAX_MARKS} marks") from None
    _check_score(req)
    if (req.dealer is None) != (req.bids is None):
        raise InvalidV2Request("'dealer' and 'bids' (the auction) come together, or neither")
    leader = req.bidder if req.leader is None else req.leader
    if req.bids is not None and req.dealer is not None:
        auction = replay_auction(req.dealer, req.bids, req.forced_bid)
        high, winner = int(auction.high[0]), int(auction.high_bidder[0])
        if high == 0:
            raise InvalidV2Request("every seat passed in 'bids': the hand was redealt, so there is nothing to play")
        if (winner, high) != (req.bidder, req.bid):
            raise InvalidV2Request(
                f"the auction in 'bids' was won by seat {winner} with {bid_name(bid_action(high))}, "
                f"but the request says seat {req.bidder} bid {req.bid}"
            )
        if leader != winner:
            raise InvalidV2Request(f"the auction's winner (seat {winner}) leads the first trick, not seat {leader}")
    return {
        "seat": req.seat,
        "hand": list(req.hand),
        "decl": req.decl,
        "bidder": req.bidder,
        "bid": min(req.bid, MAX_BID),
        "leader": leader,
        "plays": [list(p) for p in req.plays],
    }


def respond_v2(session: BotSession, request: object) -> dict[str, Any]:
    """A version-2 reply: `{"bid", "name", "explanation"}`, `{"decl", "name", "explanation"}`, a play, or an error."""
    try:
        req = parse_request(request)
        if isinstance(req, PlayRequest):
            return session.respond_play(play_request_v1(req))
        bidder = session.get_bidder()
        if isinstance(req, BidRequest):
            return answer_bid(req, bidder)
        assert isinstance(req, DeclareRequest)
        return answer_declare(req, bidder)
    except InvalidV2Request as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a bidder's bug is an error reply, never a dead bot
        return {"error": f"internal error: {type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------- specs
def default_bidder_spec() -> str:
    """The bidder a plain player spec bids with: `baseline` where it exists, else `random`."""
    from zeb_core.fullgame.bidders import BIDDERS

    return "baseline" if "baseline" in BIDDERS else "random"


def split_full_spec(spec: str) -> tuple[str | None, str]:
    """`BIDDER+PLAYER` -> (bidder spec, player spec); a plain player spec -> (None, spec).

    A `+` after a player kind is part of that player spec (a path may hold one); after anything else it must
    follow a known bidder kind."""
    from zeb_core.fullgame.bidders import BIDDERS
    from zeb_core.players.base import PLAYERS
    from zeb_core.players.interface import SpecError, parse_spec

    head, plus, tail = spec.partition("+")
    if not plus:
        return None, spec.strip()
    try:
        kind, _ = parse_spec(head)
    except SpecError:
        return None, spec.strip()
    if kind not in BIDDERS:
        if kind in PLAYERS:
            return None, spec.strip()
        raise SpecError(f"unknown bidder {kind!r} in {spec!r} (BIDDER+PLAYER); known: {', '.join(sorted(BIDDERS))}")
    if not tail.strip():
        raise SpecError(f"full-game player {spec!r} must be BIDDER+PLAYER, e.g. {kind}+heuristic")
    return head.strip(), tail.strip()


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each phase's request (for `zeb serve`'s OpenAPI document)."""
    return {phase: model.model_json_schema() for phase, model in MODELS.items()}
