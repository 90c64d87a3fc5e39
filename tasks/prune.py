"""The prune flow's tasks, over plain values (a store URL, a namespace), so each retries a store outage on its
own. The rules (never a file the learner's last push has not read, nor one its replay buffer refills from) are
zeb_core's: `Store.prune_examples` through `learn.state.prune_sparing_buffer`."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.common import (
    open_ops_store,
    store_io_task,
)
from zeb_core.learn.state import prune_sparing_buffer, pushed_buffer_floor

WEEK_S = 7 * 24 * 3600.0


@store_io_task("prune-examples")
def prune_examples_task(
    store: str,
    name: str,
    keep: int | None,
    max_age_s: float | None,
    protect_uningested: bool = True,
    now: float | None = None,
    examples_url: str | None = None,
) -> dict[str, Any]:
    """Example files beyond the newest `keep` or older than `max_age_s`, by the learner's rules: never a file its
    last push has not ingested, nor its buffer floor or a newer file (those its replay buffer refills from after a
    restart); `protect_uningested=False` lifts both, for a namespace whose learner is gone. `protected` counts
    the unread files the rules would have removed. A retry is harmless: a second prune finds less to remove."""
    st = open_ops_store(store, examples_url)
    floor = pushed_buffer_floor(st, name)
    report = prune_sparing_buffer(st, name, keep, max_age_s, floor, now=now, spare_unread=protect_uningested)
    get_run_logger().info(
        "pruned %d of %d example files of %s (%d not yet ingested, kept back; %d unread in all; from %s on kept "
        "for the learner's replay buffer)",
        len(report.removed),
        report.before,
        name,
        report.kept_unread,
        report.unread,
        floor if protect_uningested and floor else "nothing",
    )
    return {
        "removed": report.removed,
        "before": report.before,
        "protected": report.kept_unread,
        "unread": report.unread,
        "buffer_floor": floor if protect_uningested else None,
    }


@store_io_task("prune-quarantine")
def prune_quarantine_task(
    store: str, max_age_s: float, now: float | None = None, examples_url: str | None = None
) -> list[str]:
    """Quarantined files older than `max_age_s` (by the store's clock, else the time in their names)."""
    removed = open_ops_store(store, examples_url).prune_quarantine(max_age_s, now=now)
    get_run_logger().info("pruned %d quarantined files older than %.1f days", len(removed), max_age_s / 86400)
    return removed
