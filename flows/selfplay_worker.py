"""The self-play worker flow: outbox first, then pull → generate → upload, batch after batch.

Every `settings.reload_every` batches it checks for newer weights and loads them in place. It runs
`settings.batches` batches (0: until cancelled); each batch's stats are logged and published as a Prefect table
artifact.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.stop import StopFlag
from tasks.credentials import load_credentials
from tasks.selfplay import flush_outbox_task, generate_task, pull_weights_task, upload_task
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings


@flow(name="selfplay-worker", log_prints=True)
def selfplay_worker(settings: WorkerSettings) -> list[dict]:
    """Generate self-play examples for the namespace `settings.name` of `settings.store` (file://DIR,
    hf://OWNER/REPO, s3://B/P).

    Every setting, with its default and meaning, is a field of zeb_core.selfplay.worker.WorkerSettings (the Prefect UI
    shows them as a form); prefect.yaml gives the fleet's overrides."""
    load_credentials()
    worker = SelfPlayWorker(settings)
    print(
        f"worker {settings.worker_id}: outbox {worker.outbox.folder} ({len(worker.outbox.pending())} batches waiting)"
    )
    stop = StopFlag()
    stop.install()
    try:
        return _run(worker, settings, settings.batches, settings.reload_every, stop)
    finally:
        stop.restore()


def _run(
    worker: SelfPlayWorker, settings: WorkerSettings, batches: int, reload_every: int, stop: StopFlag
) -> list[dict]:
    flush_outbox_task(worker)
    reports: list[dict] = []
    batch = 0
    while (batches <= 0 or batch < batches) and not stop:
        if batch % reload_every == 0:
            pull_weights_task(worker)
        report = generate_task(worker, batch + 1)
        reports.append(upload_task(worker, report))
        batch += 1
        create_table_artifact(
            [_row(r) for r in reports[-20:]],
            key=f"selfplay-{settings.worker_id.lower().replace('.', '-')}"[:60],
            description=f"worker {settings.worker_id}: last {min(20, len(reports))} batches",
        )
    return reports


def _row(r: dict) -> dict:
    return {
        "batch": r["batch"],
        "games": r["games"],
        "examples": r["examples"],
        "games/s": f"{r['games_per_s']:.2f}",
        "net share": f"{r['forward_share']:.0%}",
        "model step": r["model_step"],
        "lag": r["model_lag"],
        "upload s": f"{r['upload_seconds']:.2f}",
        "errors": r["errors"],
    }
