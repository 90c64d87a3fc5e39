"""Team-symmetric full-game matches: each game to `target_marks` is played twice, teams swapped, same deals.

Pair p's two games see the same first dealer and the same deal at every hand index h (a generator per hand index,
seeded from the seed, the batch and h), so luck of the deal cancels within a pair; the win rate's 95% interval is
computed over pairs (`zeb_core.evaluation.match.pair_interval`). The two halves drift apart as the players bid
differently (one may redeal where the other plays), but hand h is always dealt the same.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from zeb_core.engine.deal import make_generator
from zeb_core.engine.state import N_SEATS
from zeb_core.evaluation.match import pair_interval
from zeb_core.fullgame.auction import BID_VALUES, N_BID_ACTIONS, bid_name
from zeb_core.fullgame.game import DEFAULT_TARGET_MARKS, FullGames, play_full_games, random_deals
from zeb_core.fullgame.interface import FullGamePlayer
from zeb_core.fullgame.replay import game_records


@dataclass
class FullMatchResult:
    player_a: str
    player_b: str
    games: int
    win_rate: float  # A's share of games won (a game always has a winner)
    ci_low: float
    ci_high: float
    hands: int  # hands dealt over all games, redeals included
    hands_per_game: float
    redeal_rate: float  # share of hands dealt where all four passed
    a_marks_per_hand: float  # marks A's team gained per hand played (redeals not counted)
    b_marks_per_hand: float
    a_auction_rate: float  # share of hands played whose auction A's team won
    a_bid_made_rate: float  # hands where A's team won the auction: made / won
    b_bid_made_rate: float
    a_bid_levels: dict[str, int]  # winning bid level -> hands, when A's team won the auction ("30", "1 mark", ...)
    b_bid_levels: dict[str, int]
    target_marks: int
    forced_bid: bool
    seconds: float
    games_per_s: float
    seed: int
    records: list[dict[str, Any]] | None = field(default=None, repr=False)  # replay records, with `record=True`

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("records")
        return d

    def summary(self) -> str:
        return (
            f"{self.player_a} vs {self.player_b}: game win rate {self.win_rate:.1%} "
            f"(95% CI {self.ci_low:.1%}..{self.ci_high:.1%}) over {self.games} games to {self.target_marks} marks, "
            f"marks/hand {self.a_marks_per_hand:.2f} vs {self.b_marks_per_hand:.2f}, "
            f"bids made {self.a_bid_made_rate:.1%} vs {self.b_bid_made_rate:.1%}, "
            f"{self.hands_per_game:.1f} hands/game, {self.games_per_s:,.1f} games/s"
        )


class _Tally:
    """Per-hand counts over the logs of finished games, for the result's statistics."""

    def __init__(self) -> None:
        self.hands = self.redeals = 0
        self.marks = [0, 0]  # A, B
        self.won = [0, 0]
        self.made = [0, 0]
        self.levels = [torch.zeros(N_BID_ACTIONS, dtype=torch.int64) for _ in range(2)]

    def add(self, games: FullGames) -> None:
        lut = torch.full((int(BID_VALUES.max()) + 1,), -1, dtype=torch.int64)
        lut[BID_VALUES] = torch.arange(N_BID_ACTIONS)
        for entry in games.log:
            team_a = games.team_of_a[entry.games].cpu()
            winner, value, gained = entry.winner.cpu(), entry.value.cpu(), entry.gained.cpu()
            played = winner >= 0
            self.hands += len(winner)
            self.redeals += int((~played).sum())
            a_gain = gained.gather(1, team_a.view(-1, 1)).squeeze(1)
            self.marks[0] += int(a_gain.sum())
            self.marks[1] += int(gained.sum()) - int(a_gain.sum())
            bidder_team = winner % 2
            made = gained.gather(1, bidder_team.clamp(min=0).view(-1, 1)).squeeze(1) > 0
            for side, mine in enumerate((played & (bidder_team == team_a), played & (bidder_team != team_a))):
                self.won[side] += int(mine.sum())
                self.made[side] += int((mine & made).sum())
                self.levels[side] += torch.bincount(lut[value[mine]], minlength=N_BID_ACTIONS)

    def level_names(self, side: int) -> dict[str, int]:
        return {bid_name(a): int(c) for a, c in enumerate(self.levels[side].tolist()) if c}


def _seed_of(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs and platforms (Python's hash is salted)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def pair_deals(seed: int, first_pair: int, pairs: int, device: torch.device | str = "cpu"):
    """The deal source of `pairs` pairs, both halves stacked ([pairs A-on-team-0 ; pairs A-on-team-1])."""

    def deals(hand: int) -> torch.Tensor:
        d = random_deals(pairs, make_generator(_seed_of(seed, first_pair, hand)), device)
        return torch.cat([d, d])

    return deals


def play_full_match(
    a: FullGamePlayer,
    b: FullGamePlayer,
    games: int,
    seed: int = 0,
    target_marks: int = DEFAULT_TARGET_MARKS,
    forced_bid: bool = False,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
    check: bool = False,
    record: bool = False,
) -> FullMatchResult:
    """Play `games` games to `target_marks` (rounded up to an even number: each deal sequence twice, teams swapped).

    `check` makes an illegal play raise; `record` returns every game as a replay record (`replay.write_games`).
    Games of one batch advance in lockstep, so a batch takes as long as its longest game.
    """
    if games < 2:
        raise ValueError(f"a team-symmetric match needs at least 2 games, got {games}")
    device = torch.device(device)
    pairs_total = (games + 1) // 2
    pairs_per_batch = max(1, batch_size // 2)
    tally = _Tally()
    pair_scores: list[torch.Tensor] = []
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    done = 0
    while done < pairs_total:
        n = min(pairs_per_batch, pairs_total - done)
        dealer = torch.randint(0, N_SEATS, (n,), generator=make_generator(_seed_of(seed, done, -1)))
        team_of_a = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)]).to(device)
        played = play_full_games(
            (a, b), team_of_a, pair_deals(seed, done, n, device), torch.cat([dealer, dealer]).to(device),
            target_marks, forced_bid, check=check, record=record,
        )  # fmt: skip
        wins = (played.winner == team_of_a).double().cpu()
        pair_scores.append((wins[:n] + wins[n:]) / 2)
        tally.add(played)
        if record:
            halves = [(a.name, b.name)] * n + [(b.name, a.name)] * n
            for rec, teams in zip(game_records(played), halves):
                records.append({**rec, "teams": list(teams)})
        done += n
        if on_progress:
            on_progress(2 * n)
    seconds = time.perf_counter() - start
    mean, lo, hi = pair_interval(torch.cat(pair_scores))
    played_hands = tally.hands - tally.redeals
    per_hand = lambda x: x / played_hands if played_hands else float("nan")
    rate = lambda x, y: x / y if y else float("nan")
    return FullMatchResult(
        player_a=a.name,
        player_b=b.name,
        games=2 * pairs_total,
        win_rate=mean,
        ci_low=lo,
        ci_high=hi,
        hands=tally.hands,
        hands_per_game=tally.hands / (2 * pairs_total),
        redeal_rate=rate(tally.redeals, tally.hands),
        a_marks_per_hand=per_hand(tally.marks[0]),
        b_marks_per_hand=per_hand(tally.marks[1]),
        a_auction_rate=per_hand(tally.won[0]),
        a_bid_made_rate=rate(tally.made[0], tally.won[0]),
        b_bid_made_rate=rate(tally.made[1], tally.won[1]),
        a_bid_levels=tally.level_names(0),
        b_bid_levels=tally.level_names(1),
        target_marks=target_marks,
        forced_bid=forced_bid,
        seconds=seconds,
        games_per_s=2 * pairs_total / seconds if seconds > 0 else float("inf"),
        seed=seed,
        records=records if record else None,
    )
