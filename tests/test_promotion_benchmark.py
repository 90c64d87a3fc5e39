"""Promotion follows the benchmark: a clearly higher score vs random and heuristic promotes, noise does not."""

from __future__ import annotations

from zeb_core.learn.promotion import benchmark_gain


def _eval(vs_random: float, vs_heuristic: float, half_width: float = 0.015) -> dict:
    return {
        "eval/vs_random_win_rate": vs_random,
        "eval/vs_random_ci_low": vs_random - half_width,
        "eval/vs_random_ci_high": vs_random + half_width,
        "eval/vs_heuristic_win_rate": vs_heuristic,
        "eval/vs_heuristic_ci_low": vs_heuristic - half_width,
        "eval/vs_heuristic_ci_high": vs_heuristic + half_width,
    }


def test_clear_gain_promotes_and_noise_does_not() -> None:
    early = _eval(0.51, 0.44)
    assert benchmark_gain(_eval(0.60, 0.52), early)
    assert not benchmark_gain(_eval(0.52, 0.45), early)  # within the intervals
    assert not benchmark_gain(early, _eval(0.60, 0.52))  # worse
    assert not benchmark_gain(_eval(0.60, 0.52), {})  # a best without recorded figures: the SPRT decides
    # Wider intervals (fewer evaluation games) need a larger gain.
    assert not benchmark_gain(_eval(0.545, 0.475, 0.04), _eval(0.51, 0.44, 0.04))
    assert benchmark_gain(_eval(0.545, 0.475), _eval(0.51, 0.44))
