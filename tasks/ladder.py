"""The rating ladder's tasks: who plays (`zeb_core.evaluation.ladder`), read from a store URL and retried on a store
outage, and one team-symmetric match per pairing."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.common import (
    open_ops_store,
    store_io_task,
)
from zeb_core.evaluation.ladder import LadderEntry, ladder_entries, ladder_player
from zeb_core.evaluation.match import play_match


@store_io_task("ladder-players")
def ladder_players_task(
    store: str | None, name: str, past_best: int, baselines: list[str], examples_url: str | None = None
) -> list[LadderEntry]:
    """The newest weights, the best, up to `past_best` earlier promoted models of `name` in `store` (None: none),
    then the baselines; the same weights under two roles (newest = best) play once."""
    st = open_ops_store(store, examples_url) if store else None
    return ladder_entries(st, name, past_best, baselines, warn=get_run_logger().warning)


@task(name="ladder-match", cache_policy=NO_CACHE, task_run_name="{a.label} vs {b.label}")
def ladder_match_task(a: LadderEntry, b: LadderEntry, games: int, seed: int, device: str) -> dict[str, Any]:
    """One team-symmetric match of the round robin: a span in the UI over the players' weights in memory; no
    store I/O and nothing a retry would fix, so it neither retries nor caches."""
    result = play_match(ladder_player(a, device, seed), ladder_player(b, device, seed + 1), games, seed, device=device)
    get_run_logger().info(result.summary())
    return {**result.to_dict(), "player_a": a.label, "player_b": b.label}
