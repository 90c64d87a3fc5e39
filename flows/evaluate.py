"""The evaluation flow: a player against baselines, published as a Prefect table artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.evaluate import match_task
from zeb_core.evaluation.strength import BASELINES, interval_text, percent


@flow(name="evaluate", log_prints=True)
def evaluate(
    player: str = "heuristic",
    opponents: list[str] | None = None,
    games: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> list[dict]:
    """Play `player` against each opponent (default: random and heuristic) and publish a results table."""
    opponents = opponents or list(BASELINES)
    results = [match_task(player, opp, games, seed, device) for opp in opponents]
    rows = [
        {
            "player": r["player_a"],
            "opponent": r["player_b"],
            "games": r["games"],
            "win rate": percent(r["win_rate"]),
            "95% CI": interval_text(r["ci_low"], r["ci_high"]),
            "avg margin": f"{r['avg_margin']:+.2f}",
        }
        for r in results
    ]
    create_table_artifact(rows, key="evaluation", description=f"{player} vs baselines over {games} games each")
    return results
