"""The revert flow's task, over plain values (a store URL, a namespace), so it retries a store outage on its
own. The rule (no revert while a learner holds the namespace, unless forced) is the store's: `Store.revert`."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.common import (
    open_ops_store,
    store_io_task,
)


@store_io_task("revert")
def revert_task(
    store: str, name: str, to: str, reason: str, force: bool = False, examples_url: str | None = None
) -> dict[str, Any]:
    """Push an earlier push of `name` as the newest (weights, optimizer and state in one push) and report it. A
    refusal (a held lease, no such push) is not retried; a retry after an outage pushes the same weights again."""
    st = open_ops_store(store, examples_url)
    before = st.latest_step(name)
    target, rev = st.revert(name, to, reason, force=force)
    after = st.peek_state(name) or {}
    get_run_logger().info(
        "reverted %s from step %s to push %s (step %d): %s",
        name,
        before,
        target.revision,
        target.step,
        reason or "no reason given",
    )
    return {
        "name": name,
        "from_step": before,
        "to_step": target.step,
        "target_revision": target.revision,
        "target_time": target.time,
        "new_revision": rev.id,
        "reason": reason,
        "state_step": after.get("step"),
        "reverted_from": after.get("reverted_from"),
    }
