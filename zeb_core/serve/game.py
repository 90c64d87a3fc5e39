"""One hand of Texas 42 for the web page: a human at seat 0, bots at seats 1..3, every rule from the engine.

The bots are asked through the bot protocol (`BotSession.respond`) with only what their seat may know, so a
network bot plays the web page exactly as it would play any client; the engine's `GameState` holds the true deal,
checks the human's moves and scores the hand.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import torch

from zeb_core.engine import (
    DECL_NAMES,
    N_SEATS,
    GameState,
    IllegalMoveError,
    deal_benchmark,
    domino_name,
    make_generator,
)
from zeb_core.players.base import Player
from zeb_core.serve.bot import BotSession

HUMAN_SEAT = 0
SEAT_NAMES = ("You", "Left", "Partner", "Right")  # seats 0..3 clockwise, as drawn around the table
MAX_SEED = 2**63 - 1


class GameError(ValueError):
    """A request the game cannot honour; `status` is the HTTP status that fits it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PlayRecord:
    seat: int
    domino: int
    by: str  # "you" or the bot's spec
    policy: dict[str, float] | None = None
    value: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seat": self.seat,
            "domino": self.domino,
            "name": domino_name(self.domino),
            "by": self.by,
        }
        if self.policy is not None:
            out["policy"] = self.policy
        if self.value is not None:
            out["value"] = self.value
        return out


def tricks_of(state: GameState, plays: list[PlayRecord]) -> list[dict[str, Any]]:
    """The hand's tricks so far as the page draws them: leader and plays, and once complete the winner and points."""
    winners = state.trick_winners[0].tolist()
    points = state.trick_points[0].tolist()
    out = []
    for k in range(0, len(plays), 4):
        chunk = plays[k : k + 4]
        trick: dict[str, Any] = {"leader": chunk[0].seat, "plays": [[p.seat, p.domino] for p in chunk]}
        if len(chunk) == 4:
            trick["winner"], trick["points"] = winners[k // 4], points[k // 4]
        out.append(trick)
    return out


@dataclass
class Game:
    """The true state of one hand plus the record the page shows; mutate only under `lock`."""

    id: str
    seed: int
    state: GameState
    bots: dict[int, str]  # seat -> player spec
    sessions: dict[int, BotSession]
    plays: list[PlayRecord] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ facts read from the engine
    @property
    def done(self) -> bool:
        return bool(self.state.done()[0])

    @property
    def to_move(self) -> int:
        return int(self.state.current[0])

    def held(self, seat: int) -> list[int]:
        return self.state.held(torch.tensor([seat])).nonzero()[:, 1].tolist()

    def legal(self) -> list[int]:
        return self.state.legal_mask()[0].nonzero().flatten().tolist()

    def request_for(self, seat: int) -> dict[str, Any]:
        """The bot-protocol request for `seat`: its hand, the contract and the public plays, nothing more."""
        s = self.state
        return {
            "seat": seat,
            "hand": self.held(seat),
            "decl": int(s.decl[0]),
            "bidder": int(s.bidder[0]),
            "bid": int(s.bid[0]),
            "leader": int(s.leader[0]),
            "plays": [[p.seat, p.domino] for p in self.plays],
        }

    # ------------------------------------------------------------ moves
    def play_human(self, domino: object) -> None:
        if isinstance(domino, bool) or not isinstance(domino, int):
            raise GameError(f"'domino' must be a domino id (an integer 0..27), got {domino!r}")
        if self.done:
            raise GameError("the hand is over; start a new one", 409)
        if self.to_move != HUMAN_SEAT:
            raise GameError(f"it is seat {self.to_move}'s turn, not yours", 409)
        if not 0 <= domino <= 27:
            raise GameError(f"{domino} is not a domino id (0..27)")
        try:
            self.state.apply(torch.tensor([domino]))
        except IllegalMoveError as exc:
            raise GameError(str(exc).removeprefix("game 0: "), 422) from None
        self.plays.append(PlayRecord(HUMAN_SEAT, domino, "you"))

    def run_bots(self) -> None:
        """Let the bots play until it is the human's turn or the hand is over."""
        while not self.done and self.to_move != HUMAN_SEAT:
            seat = self.to_move
            reply = self.sessions[seat].respond(self.request_for(seat))
            if "error" in reply:
                raise GameError(f"the bot at seat {seat} ({self.bots[seat]}) failed: {reply['error']}", 500)
            self.state.apply(torch.tensor([int(reply["play"])]))
            self.plays.append(
                PlayRecord(seat, int(reply["play"]), self.bots[seat], reply.get("policy"), reply.get("value"))
            )

    # ------------------------------------------------------------ what the page sees
    def tricks(self) -> list[dict[str, Any]]:
        return tricks_of(self.state, self.plays)

    def result(self) -> dict[str, Any] | None:
        if not self.done:
            return None
        s = self.state
        pts = s.team_points[0].tolist()
        bidder_team = int(s.bidder[0]) % 2
        winner = 0 if pts[0] > pts[1] else 1 if pts[1] > pts[0] else None
        made = bool(s.contract_made()[0])
        return {
            "team_points": pts,
            "winner_team": winner,
            "you_won": winner == 0,
            "tie": winner is None,
            "bidder_team": bidder_team,
            "contract_made": made,
            "summary": _summary(pts, winner, int(s.bidder[0]), made, int(s.bid[0])),
            "values": [round(v, 4) for v in s.values()[0].tolist()],
            "hands": s.hands[0].tolist(),
        }

    def view(self) -> dict[str, Any]:
        """The state as seat 0 may see it (other hands only once the hand is over)."""
        s = self.state
        tricks = self.tricks()
        in_progress = tricks[-1] if tricks and "winner" not in tricks[-1] else None
        completed = [t for t in tricks if "winner" in t]
        team_tricks = [0, 0]
        for t in completed:
            team_tricks[t["winner"] % 2] += 1
        bidder, decl = int(s.bidder[0]), int(s.decl[0])
        done = self.done
        return {
            "id": self.id,
            "seed": self.seed,
            "seat": HUMAN_SEAT,
            "seat_names": list(SEAT_NAMES),
            "bots": {str(k): v for k, v in self.bots.items()},
            "contract": {
                "bidder": bidder,
                "bidder_name": SEAT_NAMES[bidder],
                "bidder_team": bidder % 2,
                "bid": int(s.bid[0]),
                "decl": decl,
                "decl_name": DECL_NAMES[decl],
                "leader": int(s.leader[0]),
            },
            "hand": self.held(HUMAN_SEAT),
            "legal": [] if done or self.to_move != HUMAN_SEAT else self.legal(),
            "to_move": None if done else self.to_move,
            "your_turn": not done and self.to_move == HUMAN_SEAT,
            "hand_counts": [len(self.held(seat)) for seat in range(N_SEATS)],
            "trick": in_progress["plays"] if in_progress else [],
            "last_trick": completed[-1] if completed else None,
            "tricks": completed,
            "team_points": s.team_points[0].tolist(),
            "team_tricks": team_tricks,
            "plays": [p.to_json() for p in self.plays],
            "n_plays": len(self.plays),
            "done": done,
            "result": self.result(),
        }


def _summary(pts: list[int], winner: int | None, bidder: int, made: bool, bid: int) -> str:
    teams = ("You and Partner", "Left and Right")
    head = "A 21-21 tie" if winner is None else f"{teams[winner]} won {pts[winner]}-{pts[1 - winner]}"
    whose = "Your" if bidder == HUMAN_SEAT else f"{SEAT_NAMES[bidder]}'s"
    return f"{head}; {whose} bid of {bid} was {'made' if made else 'set'}."


def new_seed(seed: int | None) -> int:
    """The seed a new game is dealt from: the client's, checked to be 0..MAX_SEED, or a random one."""
    if seed is None:
        return secrets.randbelow(2**31)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise GameError(f"'seed' must be an integer 0..{MAX_SEED}, got {seed!r}")
    return seed


class Session(Protocol):
    """What a store needs of a game: its id, its lock, and the bots' turns up to the human's next decision."""

    id: str
    lock: threading.Lock

    def run_bots(self) -> None: ...

    def view(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=Session)


class SessionStore(Generic[S]):
    """Games in memory by id, the least recently used first, within bounds that no client can use against another.

    A client (its address) keeps at most `per_client` games: its new game drops its own longest idle one. The store
    keeps at most `max_games`: past it the longest idle game goes, so a game being played outlives any number of
    new ones. A game untouched for `idle_s` is dropped. A game busy with an earlier request (its bots deciding) is
    waited for at most `lock_wait_s`, then the request is a 409.
    """

    kind = "game"  # what a missing id is said not to be

    def __init__(
        self, max_games: int = 1000, per_client: int = 20, idle_s: float = 3600.0, lock_wait_s: float = 10.0
    ) -> None:
        self.max_games, self.per_client, self.idle_s, self.lock_wait_s = max_games, per_client, idle_s, lock_wait_s
        self.games: OrderedDict[str, S] = OrderedDict()  # least recently used first
        self._owner: dict[str, str] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def _add(self, game: S, owner: str = "") -> S:
        """Let the bots move up to the human's first decision, then keep `game` for `owner` (a client address)."""
        with game.lock:
            game.run_bots()
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            mine = [gid for gid in self.games if self._owner[gid] == owner]
            for gid in mine[: max(0, len(mine) - self.per_client + 1)]:  # its own longest idle ones
                self._drop(gid)
            while len(self.games) >= self.max_games:
                self._drop(next(iter(self.games)))
            self.games[game.id] = game
            self._owner[game.id], self._touched[game.id] = owner, now
        return game

    def _drop(self, game_id: str) -> None:
        self.games.pop(game_id, None)
        self._owner.pop(game_id, None)
        self._touched.pop(game_id, None)

    def _expire(self, now: float) -> None:
        """Drop the games idle for `idle_s` (they are first in line)."""
        while self.games:
            oldest = next(iter(self.games))
            if now - self._touched[oldest] < self.idle_s:
                return
            self._drop(oldest)

    def get(self, game_id: str) -> S:
        """The game (touched: it is now the most recently used); 404 for one that is not there or expired."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            game = self.games.get(game_id)
            if game is not None:
                self.games.move_to_end(game_id)
                self._touched[game_id] = now
        if game is None:
            raise GameError(f"no {self.kind} with id {game_id!r} (it may have expired; start a new one)", 404)
        return game

    def owned(self, owner: str) -> list[str]:
        """The ids of `owner`'s games, the least recently used first."""
        with self._lock:
            return [gid for gid in self.games if self._owner[gid] == owner]

    @contextmanager
    def _locked(self, game: S) -> Iterator[None]:
        """The game's lock, waited for at most `lock_wait_s` (its bots may be deciding an earlier request)."""
        if not game.lock.acquire(timeout=self.lock_wait_s):
            raise GameError(f"the {self.kind} is busy: its bots are still deciding an earlier request; try again", 409)
        try:
            yield
        finally:
            game.lock.release()

    def view(self, game_id: str) -> dict[str, Any]:
        """The game as the page sees it, read under its lock (a move may be under way)."""
        game = self.get(game_id)
        with self._locked(game):
            return game.view()

    def act(self, game_id: str, action: Callable[[S], None]) -> S:
        """The human's decision on the game, then the bots' up to the human's next one."""
        game = self.get(game_id)
        with self._locked(game):
            action(game)
            game.run_bots()
        return game


class GameStore(SessionStore[Game]):
    """One-hand games."""

    def __init__(self, get_player: Callable[[str], Player], max_games: int = 1000, **bounds: Any) -> None:
        super().__init__(max_games, **bounds)
        self.get_player = get_player  # spec -> the player (the server's names it, so a game holds no network)

    def create(self, seed: int | None, bots: dict[int, str], owner: str = "") -> Game:
        seed = new_seed(seed)
        players = {seat: self.get_player(spec) for seat, spec in bots.items()}  # raises for an unknown spec
        state = deal_benchmark(1, make_generator(seed))
        sessions = {seat: BotSession(players[seat], seed + seat) for seat in bots}
        return self._add(Game(uuid.uuid4().hex[:16], seed, state, dict(bots), sessions), owner)

    def play(self, game_id: str, domino: object) -> Game:
        return self.act(game_id, lambda game: game.play_human(domino))
