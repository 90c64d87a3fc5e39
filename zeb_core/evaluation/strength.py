"""The benchmark table: one player against random, heuristic and (optionally) the exact-solver expert, with 95%
intervals, on fixed seeds so that two models' rows are played on the same deals.

`zeb train`'s final report, `bench/strength.py` and the learner's evaluations all build their figures here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zeb_core.evaluation.match import MatchResult, play_match
from zeb_core.players.base import Player, make_player

BASELINES = ("random", "heuristic")
EXPERT = "pimc:worlds=16"  # the exact-solver expert a trained model is measured against
EXPERT_REPORT_GAMES = 400  # its games in the final report: pimc is slow (about 1 game/s on one core)

# Every evaluation's seeds, here so that two evaluations meant to share deals do, and no two collide by accident.
REPORT_SEED = 20_000_000  # the final report's and bench/strength.py's deals
EVAL_SEED = 1_000_003  # plus the step: the learner's periodic evaluation (fresh deals each time, still replayable)
BASELINE_SEED = 7  # the baselines' own randomness (the random player's moves) in the report and bench/strength.py
LADDER_SEED_STRIDE = 1009  # the ladder's k-th pairing plays on the deals of its seed + k * this


def percent(x: float) -> str:
    """`61.2%`: how a win rate is shown everywhere."""
    return f"{x:.1%}"


def interval_text(low: float, high: float) -> str:
    """`59.7%..62.7%`: a 95% interval, as the tables show it."""
    return f"{percent(low)}..{percent(high)}"


def rate_text(r: MatchResult) -> str:
    """`61.2% (59.7%..62.7%)`: the win rate and its 95% interval."""
    return f"{percent(r.win_rate)} ({interval_text(r.ci_low, r.ci_high)})"


def eval_metrics(results: Sequence[MatchResult], opponents: Sequence[str] = BASELINES) -> dict[str, float]:
    """`eval/vs_OPPONENT_win_rate`, `_ci_low`, `_ci_high` per opponent: the learner's state, W&B and the curve."""
    metrics: dict[str, float] = {}
    for spec, r in zip(opponents, results, strict=True):
        metrics[f"eval/vs_{spec}_win_rate"] = r.win_rate
        metrics[f"eval/vs_{spec}_ci_low"] = r.ci_low
        metrics[f"eval/vs_{spec}_ci_high"] = r.ci_high
    return metrics


def eval_rate(metrics: dict[str, float], opponent: str) -> tuple[float, float, float] | None:
    """(win rate, interval low, high) against `opponent` from `eval_metrics`' keys; None when it was not played."""
    keys = [f"eval/vs_{opponent}_{what}" for what in ("win_rate", "ci_low", "ci_high")]
    if not all(k in metrics for k in keys):
        return None
    win, low, high = (float(metrics[k]) for k in keys)
    return win, low, high


def benchmark(
    player: Player,
    opponents: Sequence[str] = BASELINES,
    games: int = 4000,
    seed: int = REPORT_SEED,
    device: torch.device | str = "cpu",
    games_by_opponent: dict[str, int] | None = None,
    opponent_seed: int = BASELINE_SEED,
) -> list[MatchResult]:
    """Team-symmetric matches of `player` against each opponent spec (its games from `games_by_opponent`), each
    on the deals of `seed`; `opponent_seed` seeds the opponents' own randomness."""
    results = []
    for spec in opponents:
        n = (games_by_opponent or {}).get(spec, games)
        opponent = make_player(spec, device, seed=opponent_seed)
        results.append(play_match(player, opponent, n, seed=seed, device=device))
    return results


def score(results: Sequence[MatchResult]) -> float:
    """One number to rank models by the benchmark: the mean win rate over the opponents."""
    return sum(r.win_rate for r in results) / max(1, len(results))
