"""Self-play tasks: pull weights, generate a batch into the outbox, upload it. Thin shells over
zeb_core.selfplay.worker.

They are spans in the UI over one live SelfPlayWorker: not retried (the store calls inside retry on their own, and
the outbox keeps a batch whose upload failed) and never cached."""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from zeb_core.selfplay.worker import BatchReport, SelfPlayWorker


@task(name="pull-weights", cache_policy=NO_CACHE)
def pull_weights_task(worker: SelfPlayWorker) -> bool:
    """Load newer weights in place (waits for the learner's first push); True when new weights were loaded."""
    loaded = worker.refresh_weights()
    if loaded:
        get_run_logger().info("loaded weights step %d", worker.model_step)
    return loaded


@task(name="flush-outbox", cache_policy=NO_CACHE)
def flush_outbox_task(worker: SelfPlayWorker) -> list[str]:
    """Upload batches an earlier run left in the outbox (a killed worker's games are not lost)."""
    uploaded = worker.flush_outbox()
    if uploaded:
        get_run_logger().info("uploaded %d batch(es) left in the outbox: %s", len(uploaded), ", ".join(uploaded))
    return uploaded


@task(name="generate", cache_policy=NO_CACHE, task_run_name="generate batch {batch}")
def generate_task(worker: SelfPlayWorker, batch: int) -> dict:
    _path, report = worker.generate()
    get_run_logger().info(
        "batch %d: %d games, %d examples in %.1fs (%.2f games/s, %.0f%% in the network), model step %d (lag %s)",
        report.batch,
        report.games,
        report.examples,
        report.seconds,
        report.games_per_s,
        100 * report.forward_share,
        report.model_step,
        report.model_lag,
    )
    return asdict(report)


@task(name="upload", cache_policy=NO_CACHE, task_run_name="upload batch {report[batch]}")
def upload_task(worker: SelfPlayWorker, report: dict) -> dict:
    done = worker.upload(BatchReport(**report))
    get_run_logger().info("uploaded %s in %.2fs", done.uploaded, done.upload_seconds)
    return asdict(done)
