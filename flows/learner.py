"""The learner flow: start (lease, resume, buffer), then cycles of ingest -> train -> evaluate/promote -> push ->
prune, as Prefect tasks; W&B metrics, evaluation tables, promoted-model artifacts and the training curve; a
progress artifact, an evaluation table and a training-curve plot in Prefect.

A flow run covers at most `cycles` cycles (and `minutes`), so the Prefect database stays bounded; under a
deployment it then starts the next run itself (`continue_as_new`). SIGINT/SIGTERM/cancellation: the cycle in
hand finishes, the weights are pushed, the lease is released.
"""

from __future__ import annotations

import base64
import time

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.stop import StopFlag
from tasks.common import key_of
from tasks.credentials import load_credentials
from tasks.learner import (
    close_task,
    evaluate_task,
    ingest_task,
    promote_task,
    prune_task,
    push_task,
    start_task,
    train_task,
)
from zeb_core.evaluation.strength import BASELINES, eval_rate, interval_text, percent
from zeb_core.learn.learner import REPORTED_LOSSES, Learner, LearnerSettings, loss_text
from zeb_core.ops.curves import training_curve_png
from zeb_core.ops.wandb_log import CURVE_KEY, WandbLogger


@flow(name="learner", log_prints=True)
def learner(settings: LearnerSettings) -> dict:
    """Train the namespace `settings.name` of `settings.store` from the examples workers upload; returns a summary.

    Every setting, with its default and meaning, is a field of zeb_core.learn.learner.LearnerSettings (the Prefect UI
    shows them as a form); prefect.yaml gives the fleet's overrides."""
    logger = get_run_logger()
    s = settings
    name, cycles, eval_every, push_every, prune_every = s.name, s.cycles, s.eval_every, s.push_every, s.prune_every
    load_credentials()
    stop = StopFlag()
    stop.install()
    lrn = Learner(settings, echo=logger.info)
    wandb = None
    deadline = None if s.minutes is None else time.monotonic() + 60 * s.minutes
    progress_id = create_progress_artifact(
        0.0, key="learner-progress", description=f"cycles of this run ({cycles} max)"
    )
    cycle = 0
    try:
        start_task(lrn)
        wandb = WandbLogger(s.wandb_project, s.run_name or name, settings.model_dump())
        logger.info(
            "=== Learner %s === store %s, examples %s; LR %g, batch %d, steps/cycle %d; "
            "min buffer %s, capacity %s; W&B %s",
            name,
            lrn.store.url,
            lrn.store.examples.url,
            s.lr,
            s.batch_size,
            s.training_steps_per_cycle,
            f"{s.min_buffer_size:,}",
            f"{s.replay_buffer_size:,}",
            wandb.url or "off",
        )
        while cycle < cycles and not stop and (deadline is None or time.monotonic() < deadline):
            step = lrn.step
            t0 = time.perf_counter()
            ingested = ingest_task(lrn, step)
            metrics = train_task(lrn, step)
            if metrics is None:
                _wait_for_data(lrn, stop, deadline, s.idle_sleep_s)
                continue
            cycle += 1
            step = lrn.step
            row = {"step": step, **metrics, **lrn.stats()}
            if step % eval_every == 0:
                row.update(evaluate_task(lrn, step))
                if s.promote:
                    row["promotion"] = promote_task(lrn, step)
                _publish_eval(lrn, name)
                wandb.log_evaluation(lrn.last_eval, s.eval_games, step, model=f"{name}@{step}")
                if s.promote:
                    wandb.log_promotion(lrn.store, name, step)
            if step % push_every == 0:
                push_task(lrn, step)
            if step % prune_every == 0:
                prune_task(lrn, step)
            lrn.record(row)
            wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}, step=step)
            logger.info(
                "Cycle %d: %s (train=%.2fs) [buffer: %s, games: %s, +%d examples]",
                step,
                _losses_text(metrics),
                time.perf_counter() - t0,
                f"{len(lrn.buffer):,}",
                f"{lrn.total_games:,}",
                ingested["examples"],
            )
            update_progress_artifact(progress_id, 100.0 * cycle / cycles)
    finally:
        if stop:
            logger.info("stop requested: finishing with a push and releasing the lease")
        if lrn.model is not None:
            close_task(lrn)
        curve = _curve_png(lrn, name) if lrn.history else None
        if wandb is not None:
            if curve is not None:
                wandb.log_image(CURVE_KEY, curve, lrn.step, caption="losses and win rates of this learner run")
            wandb.finish()
        stop.restore()
        if curve is not None:
            _publish_curve(curve, name)
    summary = {
        "step": lrn.step,
        "total_games": lrn.total_games,
        "examples_ingested": lrn.examples_ingested,
        "cycles": cycle,
        "stopped": bool(stop),
        "last_eval": lrn.last_eval,
    }
    if s.continue_as_new and not stop and cycle >= cycles:
        _start_next_run(logger)
    return summary


def _wait_for_data(lrn: Learner, stop: StopFlag, deadline: float | None, sleep_s: float) -> None:
    """Poll the store (no task runs, so an idle learner does not fill the Prefect database) until we can train."""
    while not stop and (deadline is None or time.monotonic() < deadline):
        time.sleep(sleep_s)
        lrn.ingest()
        if lrn.can_train():
            return


def _publish_eval(lrn: Learner, name: str) -> None:
    rows = []
    for opp in BASELINES:
        if (rate := eval_rate(lrn.last_eval, opp)) is None:
            continue
        win, low, high = rate
        rows.append(
            {
                "opponent": opp,
                "win rate": percent(win),
                "95% CI": interval_text(low, high),
                "games": lrn.settings.eval_games,
                "step": lrn.step,
            }
        )
    create_table_artifact(rows, key=key_of(name, "evaluation"), description=f"{name} at step {lrn.step}")


def _curve_png(lrn: Learner, name: str) -> bytes:
    return training_curve_png(lrn.history, title=f"{name}: steps {lrn.history[0]['step']}..{lrn.history[-1]['step']}")


def _publish_curve(png: bytes, name: str) -> None:
    data = base64.b64encode(png).decode()
    create_markdown_artifact(
        f"## Training curve of {name}\n\n![training curve](data:image/png;base64,{data})\n",
        key=key_of(name, "training-curve"),
        description="losses and win rates of this learner run",
    )


def _start_next_run(logger) -> None:
    """Under a deployment, queue the next bounded run with the same parameters."""
    from prefect.runtime import deployment, flow_run

    if not flow_run.get_id() or not deployment.get_id():
        return
    from prefect.deployments import run_deployment

    nxt = run_deployment(
        name=f"{flow_run.get_flow_name()}/{deployment.get_name()}", parameters=flow_run.get_parameters(), timeout=0
    )
    logger.info("queued the next learner run %s", nxt.id)


def _losses_text(metrics: dict[str, float]) -> str:
    """The cycle's losses for the log line (`loss_text`: "n/a" for a loss without examples this cycle)."""
    return ", ".join(f"{key.removeprefix('train/')}={loss_text(float(metrics[key]))}" for key in REPORTED_LOSSES)
