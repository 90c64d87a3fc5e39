"""Promotion: does a candidate beat the current best? A sequential probability ratio test over team-symmetric
deal pairs stops as soon as the evidence is clear (a clearly better or clearly worse net needs few games), with a
regression guard: a candidate that plays worse against random than the best did is never promoted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from zeb_core.evaluation.match import play_match
from zeb_core.formats.weights import WeightsBundle
from zeb_core.players.base import Player
from zeb_core.store.backend import LeaseHeld, StoreError, StoreUnavailable
from zeb_core.store.store import Store

log = logging.getLogger("zeb.promotion")


@dataclass(frozen=True)
class SprtConfig:
    p0: float = 0.50  # H0: the candidate is no better
    p1: float = 0.54  # H1: the candidate wins 54% of games
    alpha: float = 0.05
    beta: float = 0.05
    chunk_games: int = 200
    max_games: int = 4000
    regression_margin: float = 0.02  # vs-random win rate may not fall more than this below the best's


@dataclass
class PromotionResult:
    promote: bool
    decision: str  # "H1" (better), "H0" (not better), "undecided", "regression"
    games: int
    win_rate: float
    llr: float

    def summary(self) -> str:
        if self.decision == "benchmark":
            return "benchmark: clearly higher win rates vs random and heuristic than the best's"
        return f"{self.decision}: win rate {self.win_rate:.1%} over {self.games} games (LLR {self.llr:+.2f})"


def sprt_bounds(config: SprtConfig) -> tuple[float, float]:
    return math.log(config.beta / (1 - config.alpha)), math.log((1 - config.beta) / config.alpha)


def llr(wins: float, games: int, p0: float, p1: float) -> float:
    """Log-likelihood ratio of H1 vs H0 for `wins` (ties as halves) out of `games` Bernoulli trials."""
    losses = games - wins
    return wins * math.log(p1 / p0) + losses * math.log((1 - p1) / (1 - p0))


def sequential_match(
    candidate: Player,
    best: Player,
    config: SprtConfig = SprtConfig(),
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> PromotionResult:
    lower, upper = sprt_bounds(config)
    wins, games, ratio = 0.0, 0, 0.0
    while games < config.max_games:
        result = play_match(candidate, best, config.chunk_games, seed + games, device=device)
        wins += result.win_rate * result.games
        games += result.games
        ratio = llr(wins, games, config.p0, config.p1)
        if ratio >= upper:
            return PromotionResult(True, "H1", games, wins / games, ratio)
        if ratio <= lower:
            return PromotionResult(False, "H0", games, wins / games, ratio)
    return PromotionResult(False, "undecided", games, wins / max(games, 1), ratio)


def benchmark_gain(candidate_eval: dict, best_eval: dict, z: float = 1.959963984540054) -> bool:
    """True when the candidate's benchmark score (mean win rate vs random and vs heuristic, from the learner's
    evaluations) is above the best's by more than the 95% interval of the difference.

    Head-to-head SPRT alone can stall on a slowly improving run (each step is a small gain against the last best),
    while the benchmark is what the user asked for: a model that clearly scores higher there is the better one.
    """
    keys = ("eval/vs_random", "eval/vs_heuristic")
    if not all(f"{k}_win_rate" in e and f"{k}_ci_low" in e for k in keys for e in (candidate_eval, best_eval)):
        return False
    mean = lambda e: sum(e[f"{k}_win_rate"] for k in keys) / len(keys)
    var = lambda e: sum(((e[f"{k}_ci_high"] - e[f"{k}_ci_low"]) / (2 * z)) ** 2 for k in keys) / len(keys) ** 2
    return mean(candidate_eval) - mean(best_eval) > z * math.sqrt(var(candidate_eval) + var(best_eval))


def regression(
    candidate_vs_random: float | None, best_vs_random: float | None, config: SprtConfig = SprtConfig()
) -> bool:
    if candidate_vs_random is None or best_vs_random is None:
        return False
    return candidate_vs_random < best_vs_random - config.regression_margin


def push_promotion(store: Store, bundle: WeightsBundle, name: str, message: str, card: dict[str, bytes]) -> None:
    """Promote `bundle` with the model card (`card`, zeb_core.store.cards; {} for none) in the same commit: no extra
    commit on the Hub's budget. Should the store refuse that commit for good (the Hub validates a README's
    metadata), promote without the card: the promotion is what matters, and the next one tries the card again. A
    transient failure (StoreUnavailable) or a lost lease is raised as it is, for the caller's usual handling."""
    try:
        store.promote(bundle, name, message=message, extra=card)
    except (StoreUnavailable, LeaseHeld):
        raise
    except StoreError as exc:
        if not card:
            raise
        log.warning("the promotion's commit with the model card was refused (%s); promoting without the card", exc)
        store.promote(bundle, name, message=message)
