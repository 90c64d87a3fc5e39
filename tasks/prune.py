"""The prune flow's tasks, over plain values (a store URL, a namespace), so each retries a store outage on its
own. The rule (never a file the learner's last push has not read) is the store's: `Store.prune_examples`."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.common import (
    open_ops_store,
    store_io_task,
)

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
    """Example files beyond the newest `keep` or older than `max_age_s`, by the store's one rule: never a file the
    learner's last push has not ingested (`protect_uningested=False` lifts it, for a namespace whose learner is
    gone). `protected` counts the unread files the rules would have removed. A retry is harmless: a second prune
    finds less to remove."""
    st = open_ops_store(store, examples_url)
    report = st.prune_examples(name, keep=keep, max_age_s=max_age_s, now=now, spare_unread=protect_uningested)
    get_run_logger().info(
        "pruned %d of %d example files of %s (%d not yet ingested, kept back; %d unread in all)",
        len(report.removed),
        report.before,
        name,
        report.kept_unread,
        report.unread,
    )
    return {
        "removed": report.removed,
        "before": report.before,
        "protected": report.kept_unread,
        "unread": report.unread,
    }


@store_io_task("prune-quarantine")
def prune_quarantine_task(
    store: str, max_age_s: float, now: float | None = None, examples_url: str | None = None
) -> list[str]:
    """Quarantined files older than `max_age_s` (by the store's clock, else the time in their names)."""
    removed = open_ops_store(store, examples_url).prune_quarantine(max_age_s, now=now)
    get_run_logger().info("pruned %d quarantined files older than %.1f days", len(removed), max_age_s / 86400)
    return removed
