"""Learner tasks: each cycle is ingest -> train -> (every N) evaluate -> push -> prune, visible in the Prefect UI.

The tasks wrap methods of one zeb_core Learner that lives for the flow run (its buffer and model stay in memory):
they are spans in the UI over that live object, not retried (a retry would repeat a step on moved-on state; the
store calls inside retry on their own) and never cached.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from zeb_core.learn.learner import Learner


@task(name="start", cache_policy=NO_CACHE)
def start_task(learner: Learner) -> int:
    """Take the lease, resume from the store (or bootstrap and push step 0), rebuild the replay buffer."""
    learner.start()
    return learner.step


@task(name="ingest", cache_policy=NO_CACHE, task_run_name="ingest @ step {step}")
def ingest_task(learner: Learner, step: int) -> dict:
    return learner.ingest()


@task(name="train", cache_policy=NO_CACHE, task_run_name="train @ step {step}")
def train_task(learner: Learner, step: int) -> dict | None:
    metrics = learner.train()
    if metrics is None:
        get_run_logger().info(
            "waiting for data: buffer %d (min %d), %d examples received",
            len(learner.buffer),
            learner.settings.min_buffer_size,
            learner.buffer.total_added,
        )
    return metrics


@task(name="evaluate", cache_policy=NO_CACHE, task_run_name="evaluate step {step}")
def evaluate_task(learner: Learner, step: int) -> dict:
    return learner.evaluate()


@task(name="promote", cache_policy=NO_CACHE, task_run_name="promote? step {step}")
def promote_task(learner: Learner, step: int) -> str:
    result = learner.maybe_promote()
    summary = result.summary() if result else "skipped"
    get_run_logger().info("promotion: %s", summary)
    return summary


@task(name="push", cache_policy=NO_CACHE, task_run_name="push step {step}")
def push_task(learner: Learner, step: int, message: str = "") -> bool:
    return learner.push(message)


@task(name="prune", cache_policy=NO_CACHE, task_run_name="prune @ step {step}")
def prune_task(learner: Learner, step: int) -> int:
    removed = learner.prune()
    get_run_logger().info("pruned %d example files (keeping %d)", removed, learner.settings.keep_example_files)
    return removed


@task(name="close", cache_policy=NO_CACHE)
def close_task(learner: Learner) -> int:
    """Push final weights (if anything changed) and release the lease."""
    learner.close()
    return learner.step
