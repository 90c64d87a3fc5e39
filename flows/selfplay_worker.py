"""The self-play worker flow: outbox first, then pull → generate → upload, batch after batch.

Every `reload_every` batches it checks for newer weights and loads them in place. It runs `batches` batches
(0: until cancelled); each batch's stats are logged and published as a Prefect table artifact.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.stop import StopFlag
from tasks.credentials import load_credentials
from tasks.selfplay import flush_outbox_task, generate_task, pull_weights_task, upload_task
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.mcts.config import SearchConfig
from zeb_core.worker import SelfPlayWorker, WorkerSettings, default_worker_id


@flow(name="selfplay-worker", log_prints=True)
def selfplay_worker(
    store: str,
    name: str = DEFAULT_NAME,
    examples_url: str | None = None,
    worker_id: str | None = None,
    device: str = "auto",
    games_per_batch: int = 64,
    batches: int = 0,
    reload_every: int = 1,
    follow: str = "latest",
    simulations: int = SearchConfig.simulations,
    max_nodes: int = SearchConfig.max_nodes,
    worlds: int = SearchConfig.worlds,
    c_puct: float = SearchConfig.c_puct,
    temperature: float = SearchConfig.temperature,
    greedy_after: int = SearchConfig.greedy_after,
    dirichlet_alpha: float = SearchConfig.dirichlet_alpha,
    dirichlet_fraction: float = SearchConfig.dirichlet_fraction,
    clairvoyant: bool = SearchConfig.clairvoyant,
    policy_target: str = SearchConfig.policy_target,
    value_target: str = SearchConfig.value_target,
    teacher: str = SearchConfig.teacher,
    outbox: str | None = None,
    seed: int | None = None,
) -> list[dict]:
    """Generate self-play examples for the namespace `name` of `store` (file://DIR, hf://OWNER/REPO, s3://B/P).

    Args:
        outbox: Folder where finished batches wait until the store has them, on storage that outlives the run.
            Unset: a folder per store and namespace under $ZEB_OUTBOX_DIR (the job templates mount a persistent
            volume there), else under ~/.cache/zeb/outbox.
    """
    search = SearchConfig(
        simulations=simulations, max_nodes=max_nodes, worlds=worlds, c_puct=c_puct, temperature=temperature,
        greedy_after=greedy_after, dirichlet_alpha=dirichlet_alpha, dirichlet_fraction=dirichlet_fraction,
        clairvoyant=clairvoyant, policy_target=policy_target, value_target=value_target, teacher=teacher,
    )
    settings = WorkerSettings(
        store=store, name=name, examples_url=examples_url, worker_id=worker_id or default_worker_id(), device=device,
        games_per_batch=games_per_batch, reload_every=reload_every, follow=follow, seed=seed, outbox=outbox,
        search=search,
    )
    load_credentials()
    worker = SelfPlayWorker(settings)
    print(f"worker {settings.worker_id}: outbox {worker.outbox.folder} ({len(worker.outbox.pending())} batches waiting)")
    stop = StopFlag()
    stop.install()
    try:
        return _run(worker, settings, batches, reload_every, stop)
    finally:
        stop.restore()


def _run(worker: SelfPlayWorker, settings: WorkerSettings, batches: int, reload_every: int, stop: StopFlag) -> list[dict]:
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
        "batch": r["batch"], "games": r["games"], "examples": r["examples"], "games/s": f"{r['games_per_s']:.2f}",
        "net share": f"{r['forward_share']:.0%}", "model step": r["model_step"], "lag": r["model_lag"],
        "upload s": f"{r['upload_seconds']:.2f}", "errors": r["errors"],
    }
