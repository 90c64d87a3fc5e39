"""The evaluation flow: a player against baselines, published as a Prefect table artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.evaluate import match_task


@flow(name="evaluate", log_prints=True)
def evaluate(
    player: str = "heuristic",
    opponents: list[str] | None = None,
    games: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> list[dict]:
    """Play `player` against each opponent (default: random and heuristic) and publish a results table."""
    opponents = opponents or ["random", "heuristic"]
    results = [match_task(player, opp, games, seed, device) for opp in opponents]
    rows = [
        {
            "player": r["player_a"],
            "opponent": r["player_b"],
            "games": r["games"],
            "win rate": f"{r['win_rate']:.1%}",
            "95% CI": f"{r['ci_low']:.1%}..{r['ci_high']:.1%}",
            "avg margin": f"{r['avg_margin']:+.2f}",
        }
        for r in results
    ]
    create_table_artifact(rows, key="evaluation", description=f"{player} vs baselines over {games} games each")
    return results
