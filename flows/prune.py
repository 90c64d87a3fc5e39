"""The prune flow: example files beyond the kept count or age, and quarantined files older than a week; reports
what it removed as a markdown artifact. Files the learner's last push has not ingested yet are kept, and so are
those its replay buffer refills from after a restart (zeb_core's rules for every pruner; `protect_uningested=False`
lifts them), so neither a slow learner's data nor a restarted learner's buffer is lost to the pruner."""

from __future__ import annotations

import time

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.common import key_of, open_ops_store
from tasks.prune import WEEK_S, prune_examples_task, prune_quarantine_task
from zeb_core.formats.weights import DEFAULT_NAME

LISTED = 50


@flow(name="prune", log_prints=True)
def prune(
    store: str,
    name: str = DEFAULT_NAME,
    examples_url: str | None = None,
    keep: int | None = 200,
    max_age_hours: float | None = 72.0,
    quarantine_max_age_days: float = 7.0,
    protect_uningested: bool = True,
) -> dict:
    """Prune the examples of namespace `name` of `store` and old quarantined files; returns what was removed.

    keep: newest example files to keep (None: no count limit). max_age_hours: remove example files older than
    this (None: no age limit). quarantine_max_age_days: remove quarantined files older than this.
    protect_uningested: never remove files the learner has not ingested yet, nor those its replay buffer needs.
    """
    st = open_ops_store(store, examples_url)
    now = time.time()
    ex = prune_examples_task(
        store,
        name,
        keep,
        None if max_age_hours is None else 3600 * max_age_hours,
        protect_uningested,
        now,
        examples_url,
    )
    quarantine_age = WEEK_S if quarantine_max_age_days is None else 86400 * quarantine_max_age_days
    quarantine = prune_quarantine_task(store, quarantine_age, now, examples_url)
    lines = [
        f"## Prune of `{name}` in `{st.url}`",
        "",
        "| what | removed | rule |",
        "| --- | --- | --- |",
        f"| example files | {len(ex['removed'])} of {ex['before']} | "
        f"keep {keep if keep is not None else 'all'} newest, "
        f"age <= {max_age_hours if max_age_hours is not None else '∞'} h; {ex['protected']} not yet ingested "
        f"kept back ({ex['unread']} unread in all)"
        + (f"; from `{ex['buffer_floor']}` on kept for the learner's replay buffer" if ex["buffer_floor"] else "")
        + " |",
        f"| quarantined files | {len(quarantine)} | older than {quarantine_age / 86400:g} days |",
        "",
    ]
    for title, paths in (("Example files removed", ex["removed"]), ("Quarantined files removed", quarantine)):
        if paths:
            lines += [f"### {title}", ""] + [f"- `{p}`" for p in paths[:LISTED]]
            if len(paths) > LISTED:
                lines.append(f"- ... and {len(paths) - LISTED} more")
            lines.append("")
    create_markdown_artifact(
        "\n".join(lines),
        key=key_of(name, "prune"),
        description=f"{len(ex['removed'])} example and {len(quarantine)} quarantined files removed",
    )
    return {
        "examples_removed": ex["removed"],
        "quarantine_removed": quarantine,
        "protected": ex["protected"],
        "unread": ex["unread"],
        "examples_before": ex["before"],
    }
