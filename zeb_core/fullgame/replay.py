"""The replay format of whole games (JSONL, one game a line) and its check by re-simulation through the engine.

A line is one game:

    {"format": "zeb-fullgame", "version": 1, "target_marks": 7, "forced_bid": false, "first_dealer": 0,
     "teams": ["A spec", "B spec"],                       # optional: who played team 0 and team 1
     "hands": [{"dealer": 0, "deal": [[7 ids] x 4],      # seat s holds deal[s], domino ids 0..27
                "bids": [30, 0, 31, 0],                  # bid values in speaking order (dealer+1 first), 0 = pass
                "winner": 2, "bid": 31, "decl": 4,       # null, 0, null for a redeal (all passed)
                "plays": [28 ids], "team_points": [12, 30], "marks": [0, 1]}, ...],
     "final_marks": [3, 7], "winner": 1}

`load_and_check` replays every game, all games' hand h in one batch: the auction's legality (a bid below the high
bid, a mark bid that jumps, a forced pass), the winner and bid, the declaration's range, every play's legality,
the points, the marks, the dealer passing left, and the game's end at the target. Each disagreement is reported
with its line and hand; a line that is not a game is reported, never raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zeb_core.engine.dominoes import N_DECLS, N_DOMINOES, domino_name
from zeb_core.engine.replay import ReplayResult
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, N_SEATS, GameState
from zeb_core.fullgame.auction import (
    BID_VALUES,
    AuctionState,
    IllegalBidError,
    IllegalDeclarationError,
    bid_action,
    bid_name,
    hand_marks,
    points_needed,
)
from zeb_core.fullgame.game import FullGames

FORMAT = "zeb-fullgame"
VERSION = 1
_VALUES = set(BID_VALUES.tolist())
_HAND_KEYS = ("dealer", "deal", "bids", "winner", "bid", "decl", "plays", "team_points", "marks")


# ---------------------------------------------------------------- writing
def game_records(games: FullGames, teams: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """One replay record per game of `games` (played with `record=True`); `teams` names team 0 and team 1."""
    records: list[dict[str, Any]] = [
        {
            "format": FORMAT,
            "version": VERSION,
            "target_marks": games.target_marks,
            "forced_bid": games.forced_bid,
            "first_dealer": int(d),
            **({"teams": list(teams)} if teams else {}),
            "hands": [],
        }
        for d in games.first_dealer.tolist()
    ]
    for entry in games.log:
        if entry.deal is None or entry.plays is None:
            raise ValueError("the games were played without record=True: no deals or plays to write")
        order = (entry.dealer.view(-1, 1) + 1 + torch.arange(N_SEATS, device=entry.dealer.device)) % N_SEATS
        spoken = BID_VALUES.to(entry.bids.device)[entry.bids.gather(1, order)]
        rows = zip(
            entry.games.tolist(), entry.dealer.tolist(), entry.deal.tolist(), spoken.tolist(),
            entry.winner.tolist(), entry.value.tolist(), entry.decl.tolist(), entry.plays.tolist(),
            entry.team_points.tolist(), entry.gained.tolist(),
        )  # fmt: skip
        for g, dealer, deal, bids, winner, value, decl, plays, points, gained in rows:
            redeal = winner < 0
            records[g]["hands"].append(
                {
                    "dealer": dealer,
                    "deal": deal,
                    "bids": bids,
                    "winner": None if redeal else winner,
                    "bid": value,
                    "decl": None if redeal else decl,
                    "plays": [] if redeal else plays,
                    "team_points": points,
                    "marks": gained,
                }
            )
    for rec, final, won in zip(records, games.marks.tolist(), games.winner.tolist()):
        rec["final_marks"], rec["winner"] = final, won
    return records


def write_games(path: Path | str, records: list[dict[str, Any]]) -> None:
    """Write replay records as JSONL (one game a line)."""
    with Path(path).open("w") as f:
        for rec in records:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------- reading
@dataclass
class _Game:
    """A parsed record and its replay state."""

    index: int
    line: int
    rec: dict[str, Any]
    marks: list[int] = field(default_factory=lambda: [0, 0])
    alive: bool = True


def load_records(path: Path | str) -> tuple[list[_Game], dict[int, list[str]]]:
    """Parse a replay file; a line that is not a well-formed game is reported (by record index), not raised."""
    games: list[_Game] = []
    problems: dict[int, list[str]] = {}
    for lineno, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        idx = len(games) + len(problems)
        try:
            rec = json.loads(raw.decode("utf-8"))
            _check_shape(rec)
        except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
            problems[idx] = [f"line {lineno}: not a valid game record: {exc}"]
            continue
        games.append(_Game(idx, lineno, rec))
    return games, problems


def load_and_check(path: Path | str, device: str = "cpu") -> ReplayResult:
    """Replay every game of a file through the engine; `failures` maps record index -> messages with line and hand."""
    games, problems = load_records(path)
    result = ReplayResult(total=len(games) + len(problems), failures=dict(problems))
    check_games(games, result, device)
    return result


def check_games(games: list[_Game], result: ReplayResult, device: str = "cpu") -> None:
    n_hands = max((len(g.rec["hands"]) for g in games), default=0)
    for h in range(n_hands):
        for forced in (False, True):
            batch = [g for g in games if g.alive and len(g.rec["hands"]) > h and g.rec["forced_bid"] == forced]
            if batch:
                _check_hand(batch, h, forced, result, device)
    for g in games:
        if not g.alive:
            continue
        rec, target, marks = g.rec, g.rec["target_marks"], g.marks
        if max(marks) < target:
            _fail(result, g, None, f"the game stops after {len(rec['hands'])} hands at marks {marks}, "
                                   f"before a team reached {target}")  # fmt: skip
        if rec["final_marks"] != marks:
            _fail(result, g, None, f"final marks {rec['final_marks']} != replayed {marks}")
        won = int(marks[1] >= target)
        if max(marks) >= target and rec["winner"] != won:
            _fail(result, g, None, f"winner team {rec['winner']} != replayed team {won}")


def _fail(result: ReplayResult, g: _Game, hand: int | None, msg: str) -> None:
    where = f"line {g.line}" + ("" if hand is None else f", hand {hand + 1}")
    result.failures.setdefault(g.index, []).append(f"{where}: {msg}")


def _check_hand(batch: list[_Game], h: int, forced: bool, result: ReplayResult, device: str) -> None:
    """Hand h of every game in `batch` (all with the same forced_bid), in one auction batch and one play batch."""
    hands = [g.rec["hands"][h] for g in batch]
    for g, hd in zip(batch, hands):
        expected = (g.rec["first_dealer"] + h) % N_SEATS
        if max(g.marks) >= g.rec["target_marks"]:
            _fail(result, g, h, f"a hand is played after the game ended at marks {g.marks}")
            g.alive = False
        elif hd["dealer"] != expected:
            _fail(result, g, h, f"dealer {hd['dealer']}, expected {expected} (the deal passes left every hand)")
    live = [(g, hd) for g, hd in zip(batch, hands) if g.alive]
    if not live:
        return
    batch, hands = [g for g, _ in live], [hd for _, hd in live]
    n = len(batch)
    ok = [True] * n
    auction = AuctionState.start(torch.tensor([hd["dealer"] for hd in hands], device=device), forced)
    spoken = torch.tensor([[bid_action(v) for v in hd["bids"]] for hd in hands], device=device)
    for k in range(N_SEATS):
        legal = auction.legal_mask()
        acts = spoken[:, k]
        good = legal.gather(1, acts.view(-1, 1)).squeeze(1)
        for j in (~good).nonzero().flatten().tolist():
            if ok[j]:
                _fail(result, batch[j], h, f"bid {k + 1}: {_bid_error(auction, j, int(acts[j]))}")
                ok[j] = False
        first_legal = legal.float().argmax(dim=1)
        auction.apply_bids(torch.where(good, acts, first_legal), check=False)
    winner, value = auction.high_bidder.tolist(), auction.high.tolist()
    for j, (g, hd) in enumerate(zip(batch, hands)):
        if not ok[j]:
            continue
        rec_winner = -1 if hd["winner"] is None else hd["winner"]
        if (rec_winner, hd["bid"]) != (winner[j], value[j]):
            _fail(result, g, h, f"auction won by {_who(rec_winner, hd['bid'])} in the record, "
                                f"by {_who(winner[j], value[j])} in the engine")  # fmt: skip
            ok[j] = False
        elif winner[j] < 0:
            if hd["decl"] is not None or hd["plays"] or hd["team_points"] != [0, 0] or hd["marks"] != [0, 0]:
                _fail(result, g, h, "all passed (a redeal) but the record has a declaration, plays, points or marks")
        elif hd["decl"] is None or not 0 <= hd["decl"] < N_DECLS:
            _fail(result, g, h, _decl_error(auction, j, hd["decl"]))
            ok[j] = False
        elif len(hd["plays"]) != N_PLAYS:
            _fail(result, g, h, f"{len(hd['plays'])} plays, expected {N_PLAYS}")
            ok[j] = False
    play = [j for j in range(n) if ok[j] and winner[j] >= 0]
    for j in range(n):
        if not ok[j]:
            batch[j].alive = False
    if play:
        _check_play([batch[j] for j in play], [hands[j] for j in play], h, result, device)


def _check_play(batch: list[_Game], hands: list[dict[str, Any]], h: int, result: ReplayResult, device: str) -> None:
    n = len(batch)
    as_t = lambda key: torch.tensor([hd[key] for hd in hands], dtype=torch.int64, device=device)
    bidder, value = as_t("winner"), as_t("bid")
    state = GameState.from_deal(as_t("deal"), as_t("decl"), bidder, points_needed(value), leader=bidder)
    plays = as_t("plays")
    alive = torch.ones(n, dtype=torch.bool, device=device)
    for k in range(N_PLAYS):
        legal = state.legal_mask()
        move = plays[:, k]
        safe = move.clamp(0, N_DOMINOES - 1)
        good = (move >= 0) & (move < N_DOMINOES) & legal.gather(1, safe.view(-1, 1)).squeeze(1)
        for j in (alive & ~good).nonzero().flatten().tolist():
            m, seat = int(move[j]), int(state.current[j])
            allowed = ", ".join(domino_name(d) for d in legal[j].nonzero().flatten().tolist())
            what = f"{domino_name(m)} (id {m})" if 0 <= m < N_DOMINOES else f"id {m}"
            _fail(result, batch[j], h, f"play {k + 1}: seat {seat} cannot play {what}; legal: {allowed}")
            batch[j].alive = False
        alive &= good
        state.n_plays[~alive] = N_PLAYS  # an abandoned hand is finished off so the batch goes on
        state.apply(torch.where(alive, move, torch.full_like(move, -1)), check=False)
    gained = hand_marks(state.team_points, bidder, value)
    for j, (g, hd) in enumerate(zip(batch, hands)):
        if not bool(alive[j]):
            continue
        points, marks = state.team_points[j].tolist(), gained[j].tolist()
        if hd["team_points"] != points:
            _fail(result, g, h, f"team points {hd['team_points']} != replayed {points}")
        if hd["marks"] != marks:
            _fail(result, g, h, f"marks gained {hd['marks']} != replayed {marks} (bid {hd['bid']}, points {points})")
        g.marks = [g.marks[0] + marks[0], g.marks[1] + marks[1]]


def _refusal(
    auction: AuctionState,
    j: int,
    act: Callable[[AuctionState, torch.Tensor], None],
    value: int,
    error: type[ValueError],
) -> str | None:
    """The engine's own reason why game `j` may not take `act(value)`, asked of that game alone (None: it may)."""
    one = auction.index(torch.tensor([j], device=auction.dealer.device))
    try:
        act(one, torch.tensor([value], device=auction.dealer.device))
    except error as exc:
        return str(exc).removeprefix("game 0: ")
    return None


def _bid_error(auction: AuctionState, j: int, action: int) -> str:
    why = _refusal(auction, j, AuctionState.apply_bids, action, IllegalBidError)
    return why or f"{bid_name(action)} is not legal here"


def _decl_error(auction: AuctionState, j: int, decl: object) -> str:
    if not isinstance(decl, int):
        return f"the auction's winner must name a declaration 0..{N_DECLS - 1}, the record has {decl!r}"
    why = _refusal(auction, j, AuctionState.declare, decl, IllegalDeclarationError)
    return why or f"declaration {decl} is not allowed"


def _who(seat: int, value: int) -> str:
    return "nobody (all passed)" if seat < 0 else f"seat {seat} with {bid_name(bid_action(value))}"


# ---------------------------------------------------------------- shape checks (before any tensor is built)
def _check_shape(rec: Any) -> None:
    """Raise ValueError with a clear message when `rec` is not shaped as a game record (types, sizes, ranges)."""
    if not isinstance(rec, dict):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    if rec.get("format") != FORMAT:
        raise ValueError(f"format is {rec.get('format')!r}, expected {FORMAT!r}")
    if rec.get("version") != VERSION:
        raise ValueError(f"version {rec.get('version')!r} is not supported (this reader knows version {VERSION})")
    _int(rec, "target_marks", 1, 10_000)
    if not isinstance(rec.get("forced_bid"), bool):
        raise ValueError("forced_bid must be true or false")
    _int(rec, "first_dealer", 0, N_SEATS - 1)
    _int_list(rec, "final_marks", 2, 0, 10**6)
    _int(rec, "winner", 0, 1)
    teams = rec.get("teams", ["", ""])
    if not isinstance(teams, list) or len(teams) != 2 or not all(isinstance(t, str) for t in teams):
        raise ValueError("teams, when present, must be a list of 2 names")
    hands = rec.get("hands")
    if not isinstance(hands, list) or not hands:
        raise ValueError("hands must be a non-empty list")
    for h, hd in enumerate(hands, start=1):
        try:
            _check_hand_shape(hd)
        except ValueError as exc:
            raise ValueError(f"hand {h}: {exc}") from None


def _check_hand_shape(hd: Any) -> None:
    if not isinstance(hd, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in _HAND_KEYS if k not in hd]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    _int(hd, "dealer", 0, N_SEATS - 1)
    deal = hd.get("deal")
    if not isinstance(deal, list) or len(deal) != N_SEATS or not all(isinstance(s, list) for s in deal):
        raise ValueError(f"deal must be {N_SEATS} lists of {HAND_SIZE} domino ids")
    flat = [d for seat in deal for d in seat]
    if any(len(s) != HAND_SIZE for s in deal) or not all(_is_int(d) for d in flat):
        raise ValueError(f"deal must be {N_SEATS} lists of {HAND_SIZE} domino ids")
    if sorted(flat) != list(range(N_DOMINOES)):
        raise ValueError("deal must hold each domino id 0..27 exactly once")
    bids = _int_list(hd, "bids", N_SEATS, 0, 10**6)
    bad = [v for v in bids if v not in _VALUES]
    if bad:
        raise ValueError(f"bid value {bad[0]} is not a bid (0 pass, 30..41, or 42 x 1..7 marks)")
    if hd.get("winner") is not None:
        _int(hd, "winner", 0, N_SEATS - 1)
    if _int(hd, "bid", 0, 10**6) not in _VALUES:
        raise ValueError(f"bid {hd['bid']} is not a bid value (0 for a redeal, 30..41, or 42 x 1..7 marks)")
    if hd["decl"] is not None and not (_is_int(hd["decl"]) and abs(hd["decl"]) <= 10**6):
        raise ValueError(f"decl must be an integer or null, got {hd['decl']!r}")
    plays = hd["plays"]
    if not isinstance(plays, list) or not all(_is_int(p) and abs(p) <= 10**6 for p in plays):
        raise ValueError("plays must be a list of domino ids")
    _int_list(hd, "team_points", 2, -(10**6), 10**6)
    _int_list(hd, "marks", 2, -(10**6), 10**6)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _int(d: dict[str, Any], key: str, lo: int, hi: int) -> int:
    x: Any = d.get(key)
    if not _is_int(x) or not lo <= x <= hi:
        raise ValueError(f"{key} must be an integer in {lo}..{hi}, got {x!r}")
    return x


def _int_list(d: dict[str, Any], key: str, n: int, lo: int, hi: int) -> list[int]:
    x: Any = d.get(key)
    if not isinstance(x, list) or len(x) != n or not all(_is_int(v) and lo <= v <= hi for v in x):
        raise ValueError(f"{key} must be a list of {n} integers, got {x!r}")
    return x
