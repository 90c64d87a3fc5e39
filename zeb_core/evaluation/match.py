"""Team-symmetric matches on the benchmark deal distribution, many games in lockstep.

Each deal is played twice, player A on team 0 then on team 1, inside one batch: every step does one legal-mask,
one `decide` per player over all the games where it is to move (one network forward each), and one `apply`.
The win rate's 95% interval is computed over deal pairs, since the two halves of a pair are not independent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.players.base import Player

Z95 = 1.959963984540054


@dataclass
class MatchResult:
    player_a: str
    player_b: str
    games: int
    win_rate: float  # A's share of wins (ties count half)
    ci_low: float
    ci_high: float
    avg_margin: float  # A's team points minus B's, per game
    a_contract_rate: float  # share of A's bid hands that A's team made
    seconds: float
    games_per_s: float
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.player_a} vs {self.player_b}: win rate {self.win_rate:.1%} "
            f"(95% CI {self.ci_low:.1%}..{self.ci_high:.1%}) over {self.games} games, "
            f"avg margin {self.avg_margin:+.2f} points, {self.games_per_s:,.0f} games/s"
        )


def pair_interval(pair_scores: torch.Tensor) -> tuple[float, float, float]:
    """Mean and normal 95% interval of per-pair scores (each the mean of a deal's two halves)."""
    n = pair_scores.numel()
    mean = float(pair_scores.mean()) if n else float("nan")
    if n < 2:
        return mean, 0.0, 1.0
    se = float(pair_scores.std(unbiased=True)) / math.sqrt(n)
    return mean, max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se)


def play_games(
    state: GameState,
    players: tuple[Player, Player],
    team_of_a: torch.Tensor,
    check: bool = False,
    skip_forced: bool = False,
) -> GameState:
    """Play every game of `state` to the end; players[0] plays the team `team_of_a[g]` in game g.

    `check` makes an illegal move raise `IllegalMoveError` (tests use it); matches trust their players by default.
    `skip_forced` plays a position's only legal domino without asking its player (about 40% of positions, the
    whole last trick): for a deterministic player, such as the greedy policy that labels the full game's
    declarations, the games are the same at a fraction of the network forwards. When both teams are the same
    player object it is asked once per step over all its games instead of once per team.
    """
    a, b = players
    for _ in range(N_PLAYS):
        legal = state.legal_mask()
        moves = legal.to(torch.int64).argmax(1)  # the only legal domino where there is one
        ask = legal.sum(1) > 1 if skip_forced else torch.ones_like(team_of_a, dtype=torch.bool)
        if a is b:
            groups: tuple[tuple[Player, torch.Tensor], ...] = ((a, ask),)
        else:
            a_moves = (state.current % 2) == team_of_a
            groups = ((a, ask & a_moves), (b, ask & ~a_moves))
        for player, mine in groups:
            games = mine.nonzero().flatten()
            if games.numel():
                moves[games] = player.decide(state, legal, games).moves
        state.apply(moves, check=check)
    return state


def play_match(
    player_a: Player,
    player_b: Player,
    games: int,
    seed: int = 0,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
    check: bool = False,
) -> MatchResult:
    """Play `games` games (rounded up to an even number: each deal twice, teams swapped); `check` as `play_games`."""
    if games < 2:
        raise ValueError(f"a team-symmetric match needs at least 2 games, got {games}")
    device = torch.device(device)
    deals_total = (games + 1) // 2
    deals_per_batch = max(1, batch_size // 2)
    gen = make_generator(seed, device)
    pair_scores, margins, a_made, a_bids = [], [], 0, 0
    start = time.perf_counter()
    done = 0
    while done < deals_total:
        n = min(deals_per_batch, deals_total - done)
        deal = deal_benchmark(n, gen, device)
        state = GameState(**{k: torch.cat([v, v]) for k, v in deal.__dict__.items()})
        team_of_a = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)]).to(device)
        play_games(state, (player_a, player_b), team_of_a, check=check)
        wins = state.team_wins().gather(1, team_of_a.view(-1, 1)).squeeze(1)
        pts_a = state.team_points.gather(1, team_of_a.view(-1, 1)).squeeze(1)
        margins.append((2 * pts_a - 42).float().cpu())
        pair_scores.append(((wins[:n] + wins[n:]) / 2).cpu())
        a_bid = (state.bidder % 2) == team_of_a
        a_made += int((a_bid & state.contract_made()).sum())
        a_bids += int(a_bid.sum())
        done += n
        if on_progress:
            on_progress(2 * n)
    seconds = time.perf_counter() - start
    mean, lo, hi = pair_interval(torch.cat(pair_scores).double())
    return MatchResult(
        player_a=player_a.name,
        player_b=player_b.name,
        games=2 * deals_total,
        win_rate=mean,
        ci_low=lo,
        ci_high=hi,
        avg_margin=float(torch.cat(margins).mean()),
        a_contract_rate=a_made / a_bids if a_bids else float("nan"),
        seconds=seconds,
        games_per_s=2 * deals_total / seconds if seconds > 0 else float("inf"),
        seed=seed,
    )
