"""Evaluation tasks: a team-symmetric match between two player specs."""

from __future__ import annotations

from prefect import get_run_logger, task

from zeb_core.evaluation.match import play_match
from zeb_core.players import make_player


@task(name="match", retries=0, task_run_name="{player_a} vs {player_b}")
def match_task(player_a: str, player_b: str, games: int, seed: int = 0, device: str = "cpu") -> dict:
    """Play one match; returns MatchResult as a dict (JSON-friendly for artifacts and W&B). Compute, not I/O: a
    span in the UI that is not retried (the games would fail the same way again)."""
    logger = get_run_logger()
    result = play_match(
        make_player(player_a, device, seed), make_player(player_b, device, seed + 1), games, seed, device=device
    )
    logger.info(result.summary())
    return result.to_dict()
