"""The benchmark table: one player against random, heuristic and (optionally) the exact-solver expert, with 95%
intervals, on fixed seeds so that two models' rows are played on the same deals.

`zeb train`'s final report, `bench/strength.py` and the learner's evaluations all build their figures here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zeb_core.match import MatchResult, play_match
from zeb_core.players.base import Player, make_player

REPORT_SEED = 20_000_000  # the final report's and bench/strength.py's deals
BASELINES = ("random", "heuristic")


def rate_text(r: MatchResult) -> str:
    """`61.2% (59.7..62.7%)`: the win rate and its 95% interval."""
    return f"{r.win_rate:.1%} ({r.ci_low:.1%}..{r.ci_high:.1%})"


def benchmark(
    player: Player,
    opponents: Sequence[str] = BASELINES,
    games: int = 4000,
    seed: int = REPORT_SEED,
    device: torch.device | str = "cpu",
    games_by_opponent: dict[str, int] | None = None,
) -> list[MatchResult]:
    """Team-symmetric matches of `player` against each opponent spec (its games from `games_by_opponent`)."""
    results = []
    for spec in opponents:
        n = (games_by_opponent or {}).get(spec, games)
        opponent = make_player(spec, device, seed=7)
        results.append(play_match(player, opponent, n, seed=seed, device=device))
    return results


def score(results: Sequence[MatchResult]) -> float:
    """One number to rank models by the benchmark: the mean win rate over the opponents."""
    return sum(r.win_rate for r in results) / max(1, len(results))
