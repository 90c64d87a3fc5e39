"""A whole game of Texas 42 for the web page: hands to `target` marks, each an auction then the 28 plays.

One sequential state machine per game over the engine's own pieces, batch of one: an `AuctionState` for the
bidding (its rule checks refuse the human's illegal bids), a `GameState` for the play and `hand_marks` for the
score. The phases: `bid` -> `declare` -> `play` -> `hand_over` (the human asks for the next deal) or `game_over`;
when all four pass the next dealer redeals at once (or, with `forced_bid`, the dealer must bid). The deal passes
left after every hand.

The bots are asked through the bot protocol version 2 (`BotSession.respond`, docs/bot-protocol-v2.md) with only
what their seat may know, so a bot plays the page exactly as it would play any client.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from zeb_core.engine import DECL_NAMES, N_SEATS, GameState, IllegalMoveError, make_generator
from zeb_core.engine.dominoes import N_DECLS, N_DOMINOES
from zeb_core.fullgame.auction import (
    BID_VALUES,
    AuctionState,
    IllegalBidError,
    IllegalDeclarationError,
    bid_action,
    bid_name,
    hand_marks,
    marks_at_stake,
    points_needed,
)
from zeb_core.serve.bot import BotSession
from zeb_core.serve.game import HUMAN_SEAT, SEAT_NAMES, GameError, PlayRecord, SessionStore, new_seed, tricks_of

BID, DECLARE, PLAY, HAND_OVER, GAME_OVER = "bid", "declare", "play", "hand_over", "game_over"
DEFAULT_TARGET = 7
TEAMS = ("You and Partner", "Left and Right")


@dataclass
class BidRecord:
    seat: int
    value: int  # 0 pass, 30..41, 42 x marks
    by: str  # "you" or the bot's spec
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seat": self.seat,
            "bid": self.value,
            "name": bid_name(bid_action(self.value)),
            "by": self.by,
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


def _deal(gen: torch.Generator) -> torch.Tensor:
    """[1, 4, 7] a shuffled deal, each hand ascending."""
    perm = torch.rand(1, N_DOMINOES, generator=gen).argsort(dim=1)
    return perm.view(1, N_SEATS, 7).sort(dim=2).values


@dataclass
class FullGame:
    """The true state of one game plus the record the page shows; mutate only under `lock`."""

    id: str
    seed: int
    target: int
    forced_bid: bool
    bots: dict[int, str]  # seat -> BIDDER+PLAYER spec
    sessions: dict[int, BotSession]
    gen: torch.Generator
    dealer: int
    marks: list[int] = field(default_factory=lambda: [0, 0])
    deal_no: int = 0  # deals so far, redeals included: the hand number on the marks board
    phase: str = BID
    hands: torch.Tensor = field(default_factory=lambda: torch.zeros(1, N_SEATS, 7, dtype=torch.int64))
    auction: AuctionState | None = None
    bids: list[BidRecord] = field(default_factory=list)
    decl_explanation: str | None = None
    state: GameState | None = None
    plays: list[PlayRecord] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # finished deals, hands shown
    n_actions: int = 0  # decisions and deals so far: the page sees that something changed
    created: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ facts
    @property
    def high(self) -> int:
        return int(self.auction.high[0]) if self.auction is not None else 0

    @property
    def high_bidder(self) -> int:
        return int(self.auction.high_bidder[0]) if self.auction is not None else -1

    def to_act(self) -> int | None:
        """The seat whose decision the game waits for (None between hands and at the end)."""
        if self.phase == BID and self.auction is not None:
            return int(self.auction.current[0])
        if self.phase == DECLARE:
            return self.high_bidder
        if self.phase == PLAY and self.state is not None:
            return int(self.state.current[0])
        return None

    def held(self, seat: int) -> list[int]:
        if self.state is None:
            return self.hands[0, seat].tolist()
        return self.state.held(torch.tensor([seat])).nonzero()[:, 1].tolist()

    def legal_bids(self) -> list[int]:
        assert self.auction is not None
        return [int(BID_VALUES[a]) for a in self.auction.legal_mask()[0].nonzero().flatten().tolist()]

    def legal_plays(self) -> list[int]:
        assert self.state is not None
        return self.state.legal_mask()[0].nonzero().flatten().tolist()

    # ------------------------------------------------------------ bot-protocol requests (what the seat may know)
    def _context(self) -> dict[str, Any]:
        return {"version": 2, "marks": list(self.marks), "target": self.target, "forced_bid": self.forced_bid}

    def _bid_pairs(self) -> list[list[int]]:
        return [[b.seat, b.value] for b in self.bids]

    def bid_request(self, seat: int) -> dict[str, Any]:
        return {
            **self._context(),
            "phase": BID,
            "seat": seat,
            "dealer": self.dealer,
            "hand": self.hands[0, seat].tolist(),
            "bids": self._bid_pairs(),
        }

    def declare_request(self, seat: int) -> dict[str, Any]:
        return {**self.bid_request(seat), "phase": DECLARE}

    def play_request(self, seat: int) -> dict[str, Any]:
        assert self.state is not None
        return {
            **self._context(),
            "phase": PLAY,
            "seat": seat,
            "hand": self.held(seat),
            "decl": int(self.state.decl[0]),
            "bidder": self.high_bidder,
            "bid": self.high,
            "leader": int(self.state.leader[0]),
            "plays": [[p.seat, p.domino] for p in self.plays],
            "dealer": self.dealer,
            "bids": self._bid_pairs(),
        }

    def _ask(self, seat: int, request: dict[str, Any]) -> dict[str, Any]:
        reply = self.sessions[seat].respond(request)
        if "error" in reply:
            raise GameError(f"the bot at seat {seat} ({self.bots[seat]}) failed: {reply['error']}", 500)
        return reply

    # ------------------------------------------------------------ the state machine
    def new_deal(self) -> None:
        self.deal_no += 1
        self.n_actions += 1
        self.hands = _deal(self.gen)
        self.auction = AuctionState.start(torch.tensor([self.dealer]), forced_bid=self.forced_bid)
        self.bids, self.plays, self.state, self.decl_explanation = [], [], None, None
        self.phase = BID

    def _bid(self, seat: int, value: int, by: str, explanation: str | None = None) -> None:
        assert self.auction is not None
        self.auction.apply_bids(torch.tensor([bid_action(value)]))  # the engine's rule check
        self.bids.append(BidRecord(seat, value, by, explanation))
        self.n_actions += 1
        if bool(self.auction.bidding_over()[0]):
            if bool(self.auction.all_passed()[0]):
                self.history.append(self._record(redeal=True))
                self.dealer = (self.dealer + 1) % N_SEATS
                self.new_deal()
            else:
                self.phase = DECLARE

    def _declare(self, decl: int, explanation: str | None = None) -> None:
        assert self.auction is not None
        self.auction.declare(torch.tensor([decl]))
        self.decl_explanation = explanation
        self.n_actions += 1
        bidder = self.high_bidder
        self.state = GameState.from_deal(
            self.hands,
            torch.tensor([decl]),
            torch.tensor([bidder]),
            points_needed(torch.tensor([self.high])),
            torch.tensor([bidder]),
        )
        self.phase = PLAY

    def _after_play(self) -> None:
        assert self.state is not None
        self.n_actions += 1
        if not bool(self.state.done()[0]):
            return
        gained = hand_marks(self.state.team_points, torch.tensor([self.high_bidder]), torch.tensor([self.high]))
        for team in (0, 1):
            self.marks[team] += int(gained[0, team])
        self.history.append(self._record(redeal=False, gained=gained[0].tolist()))
        self.phase = GAME_OVER if max(self.marks) >= self.target else HAND_OVER

    def run_bots(self) -> None:
        """Let the bots bid, declare and play until the human must act, the hand is over, or the game is."""
        while True:
            seat = self.to_act()
            if seat is None or seat == HUMAN_SEAT:
                return
            if self.phase == BID:
                reply = self._ask(seat, self.bid_request(seat))
                self._bid(seat, int(reply["bid"]), self.bots[seat], reply.get("explanation"))
            elif self.phase == DECLARE:
                reply = self._ask(seat, self.declare_request(seat))
                self._declare(int(reply["decl"]), reply.get("explanation"))
            else:
                assert self.state is not None
                reply = self._ask(seat, self.play_request(seat))
                self.state.apply(torch.tensor([int(reply["play"])]))
                self.plays.append(
                    PlayRecord(seat, int(reply["play"]), self.bots[seat], reply.get("policy"), reply.get("value"))
                )
                self._after_play()

    # ------------------------------------------------------------ the human's decisions
    def _wait_for_you(self, phase: str, what: str) -> None:
        if self.phase == GAME_OVER:
            raise GameError("the game is over; start a new one", 409)
        if self.phase != phase:
            raise GameError(f"you cannot {what} now: {self._phase_text()}", 409)
        seat = self.to_act()
        if seat != HUMAN_SEAT:
            raise GameError(f"it is {SEAT_NAMES[seat] if seat is not None else 'nobody'}'s turn, not yours", 409)

    def _phase_text(self) -> str:
        return {
            BID: "the auction is on",
            DECLARE: "the auction's winner is naming trumps",
            PLAY: "the hand is being played",
            HAND_OVER: "the hand is over; ask for the next hand",
        }.get(self.phase, "the game is over")

    def bid_human(self, value: int) -> None:
        self._wait_for_you(BID, "bid")
        try:
            bid_action(value)
            self._bid(HUMAN_SEAT, value, "you")
        except IllegalBidError as exc:
            message = str(exc).removeprefix("game 0: ").replace(f"seat {HUMAN_SEAT} cannot", "you cannot")
            raise GameError(message, 422) from None

    def declare_human(self, decl: int) -> None:
        self._wait_for_you(DECLARE, "declare")
        try:
            self._declare(decl)
        except IllegalDeclarationError as exc:
            raise GameError(str(exc).removeprefix("game 0: "), 422) from None

    def play_human(self, domino: int) -> None:
        self._wait_for_you(PLAY, "play a domino")
        assert self.state is not None
        try:
            self.state.apply(torch.tensor([domino]))
        except IllegalMoveError as exc:
            raise GameError(str(exc).removeprefix("game 0: "), 422) from None
        self.plays.append(PlayRecord(HUMAN_SEAT, domino, "you"))
        self._after_play()

    def next_hand(self) -> None:
        if self.phase == GAME_OVER:
            raise GameError("the game is over; start a new one", 409)
        if self.phase != HAND_OVER:
            raise GameError(f"the hand is not over yet: {self._phase_text()}", 409)
        self.dealer = (self.dealer + 1) % N_SEATS
        self.new_deal()

    # ------------------------------------------------------------ what the page sees
    def _record(self, redeal: bool, gained: list[int] | None = None) -> dict[str, Any]:
        """A finished deal, hands shown: the record a test replays through the engine."""
        out: dict[str, Any] = {
            "hand": self.deal_no,
            "dealer": self.dealer,
            "hands": self.hands[0].tolist(),
            "bids": [b.to_json() for b in self.bids],
            "redeal": redeal,
            "marks": list(self.marks),
        }
        if not redeal and self.state is not None:
            s = self.state
            bidder, value = self.high_bidder, self.high
            made = bool(gained is not None and gained[bidder % 2] > 0)
            out.update(
                bidder=bidder,
                bid=value,
                bid_name=bid_name(bid_action(value)),
                decl=int(s.decl[0]),
                decl_name=DECL_NAMES[int(s.decl[0])],
                plays=[[p.seat, p.domino] for p in self.plays],
                team_points=s.team_points[0].tolist(),
                made=made,
                marks_gained=gained,
                summary=_hand_summary(bidder, value, made, s.team_points[0].tolist(), gained or [0, 0]),
            )
        else:
            out["summary"] = f"Everyone passed; {SEAT_NAMES[(self.dealer + 1) % N_SEATS]} deals again."
        return out

    def contract(self) -> dict[str, Any] | None:
        if self.state is None:
            return None
        bidder, value, decl = self.high_bidder, self.high, int(self.state.decl[0])
        return {
            "bidder": bidder,
            "bidder_name": SEAT_NAMES[bidder],
            "bidder_team": bidder % 2,
            "bid": value,
            "bid_name": bid_name(bid_action(value)),
            "points_needed": int(points_needed(torch.tensor(value))),
            "marks_at_stake": int(marks_at_stake(torch.tensor(value))),
            "decl": decl,
            "decl_name": DECL_NAMES[decl],
            "leader": bidder,
            "explanation": self.decl_explanation,
        }

    def tricks(self) -> list[dict[str, Any]]:
        return [] if self.state is None else tricks_of(self.state, self.plays)

    def view(self) -> dict[str, Any]:
        """The game as seat 0 may see it (other hands only in the record of finished deals)."""
        seat = self.to_act()
        yours = seat == HUMAN_SEAT
        tricks = self.tricks()
        completed = [t for t in tricks if "winner" in t]
        in_progress = tricks[-1] if tricks and "winner" not in tricks[-1] else None
        team_tricks = [0, 0]
        for t in completed:
            team_tricks[t["winner"] % 2] += 1
        over = self.phase == GAME_OVER
        last = self.history[-1] if self.history and self.phase in (HAND_OVER, GAME_OVER) else None
        return {
            "id": self.id,
            "mode": "full",
            "seed": self.seed,
            "seat": HUMAN_SEAT,
            "seat_names": list(SEAT_NAMES),
            "bots": {str(k): v for k, v in self.bots.items()},
            "target": self.target,
            "forced_bid": self.forced_bid,
            "marks": list(self.marks),
            "hand_number": self.deal_no,
            "dealer": self.dealer,
            "dealer_name": SEAT_NAMES[self.dealer],
            "phase": self.phase,
            "to_act": seat,
            "your_turn": yours,
            "your_bid": yours and self.phase == BID,
            "your_declaration": yours and self.phase == DECLARE,
            "auction": {
                "dealer": self.dealer,
                "bids": [b.to_json() for b in self.bids],
                "high": self.high,
                "high_name": bid_name(bid_action(self.high)) if self.high else None,
                "high_bidder": self.high_bidder if self.high else None,
            },
            "legal_bids": (
                [{"bid": v, "name": bid_name(bid_action(v))} for v in self.legal_bids()]
                if yours and self.phase == BID
                else []
            ),
            "declarations": (
                [{"decl": d, "name": DECL_NAMES[d]} for d in range(N_DECLS)] if yours and self.phase == DECLARE else []
            ),
            "contract": self.contract(),
            "hand": self.held(HUMAN_SEAT) if self.phase in (BID, DECLARE, PLAY) else [],
            "legal": self.legal_plays() if yours and self.phase == PLAY else [],
            "hand_counts": [len(self.held(s)) for s in range(N_SEATS)]
            if self.phase in (BID, DECLARE, PLAY)
            else [0] * 4,
            "trick": in_progress["plays"] if in_progress else [],
            "last_trick": completed[-1] if completed else None,
            "tricks": completed,
            "team_points": self.state.team_points[0].tolist() if self.state is not None else [0, 0],
            "team_tricks": team_tricks,
            "plays": [p.to_json() for p in self.plays],
            "n_plays": len(self.plays),
            "n_actions": self.n_actions,
            "history": self.history,
            "hand_result": last if last is not None and not last["redeal"] else None,
            "done": over,
            "result": self.result() if over else None,
        }

    def result(self) -> dict[str, Any]:
        winner = 0 if self.marks[0] >= self.target else 1
        hands = sum(1 for h in self.history if not h["redeal"])
        head = f"{TEAMS[winner]} won the game {self.marks[winner]}-{self.marks[1 - winner]}"
        return {
            "winner_team": winner,
            "you_won": winner == 0,
            "marks": list(self.marks),
            "hands_played": hands,
            "summary": f"{head} in {hands} hand{'s' if hands != 1 else ''}.",
        }


def _hand_summary(bidder: int, value: int, made: bool, pts: list[int], gained: list[int]) -> str:
    whose = "Your" if bidder == HUMAN_SEAT else f"{SEAT_NAMES[bidder]}'s"
    team = gained.index(max(gained))
    n = max(gained)
    return (
        f"{whose} bid of {bid_name(bid_action(value))} was {'made' if made else 'set'} ({pts[0]}-{pts[1]}); "
        f"{TEAMS[team]} +{n} mark{'s' if n != 1 else ''}."
    )


class FullGameStore(SessionStore[FullGame]):
    """Games to `target` marks."""

    kind = "full game"

    def __init__(self, make_session: Callable[[str, int], BotSession], max_games: int = 1000, **bounds: Any) -> None:
        super().__init__(max_games, **bounds)
        self.make_session = make_session  # (BIDDER+PLAYER spec, seed) -> a bot session (naming its bots, not holding)

    def create(
        self, seed: int | None, bots: dict[int, str], target: int, forced_bid: bool, owner: str = ""
    ) -> FullGame:
        seed = new_seed(seed)
        sessions = {seat: self.make_session(spec, seed + seat) for seat, spec in bots.items()}
        gen = make_generator(seed)
        dealer = int(torch.randint(0, N_SEATS, (1,), generator=gen))
        game = FullGame(uuid.uuid4().hex[:16], seed, target, forced_bid, dict(bots), sessions, gen, dealer)
        with game.lock:
            game.new_deal()
        return self._add(game, owner)


__all__ = ["BID", "DECLARE", "DEFAULT_TARGET", "GAME_OVER", "HAND_OVER", "PLAY", "FullGame", "FullGameStore"]
