"""`zeb learner` and `zeb worker`: run the learner and self-play worker flows from the command line.

Their options are the fields of LearnerSettings and WorkerSettings (zeb_cli/settings_options.py), so names,
defaults and help are defined once, in the models."""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from zeb_cli.consoles import make_console
from zeb_cli.prefect_server import standalone_api
from zeb_cli.settings_options import (
    dataclass_settings,
    model_settings,
    settings_command,
    validation_message,
)
from zeb_core.learn.learner import LearnerSettings
from zeb_core.mcts.config import SearchConfig
from zeb_core.selfplay.worker import SEARCH_OPTIONS, WorkerSettings

console = make_console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


LEARNER_FLAGS = {
    "store": ("--store", "--repo-id"),
    "examples_url": ("--examples-repo-id", "--examples-url"),
    "name": ("--weights-name",),
}
WORKER_FLAGS = {**LEARNER_FLAGS, "simulations": ("--sims",)}
THREADS = inspect.Parameter(
    "threads",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[int | None, typer.Option(help="torch CPU threads.")],
)


def learner_settings(values: dict[str, Any]) -> LearnerSettings:
    """The learner's settings from `zeb learner`'s options (or a JSON file); bad ones end the command."""
    try:
        return LearnerSettings(**values)
    except ValidationError as exc:
        _fail(validation_message(exc))
        raise


def worker_settings(values: dict[str, Any]) -> WorkerSettings:
    """The worker's settings from `zeb worker`'s options, search settings flat among them (or a JSON file)."""
    try:
        return WorkerSettings.from_flat(values)
    except ValidationError as exc:
        _fail(validation_message(exc))
        raise
    except ValueError as exc:  # SearchConfig's own checks
        _fail(str(exc))
        raise


def _learner(values: dict[str, Any], threads: int | None) -> None:
    """Train from the examples the workers upload; resumes from the store, one learner per namespace."""
    from zeb_core.store import LeaseHeld, StoreError

    settings = learner_settings(values)
    _threads(threads)
    logging.basicConfig(level=logging.WARNING)
    from flows.learner import learner

    try:
        with standalone_api("learner", console.print):
            summary = learner(settings)
    except LeaseHeld as exc:
        _fail(str(exc), 3)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"learner stopped at step {summary['step']} ({summary['total_games']:,} games)")


def _worker(values: dict[str, Any], threads: int | None) -> None:
    """Generate self-play examples and upload them; never loses a finished batch (local outbox)."""
    from zeb_core.store import StoreError

    settings = worker_settings(values)
    _threads(threads)
    from flows.selfplay_worker import selfplay_worker

    try:
        with standalone_api("worker", console.print):
            reports = selfplay_worker(settings)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    games = sum(r["games"] for r in reports)
    console.print(f"worker stopped after {len(reports)} batches ({games:,} games)")


learner_cmd = settings_command(_learner, model_settings(LearnerSettings, LEARNER_FLAGS), [THREADS], "learner")
worker_cmd = settings_command(
    _worker,
    model_settings(WorkerSettings, WORKER_FLAGS) + dataclass_settings(SearchConfig, SEARCH_OPTIONS, WORKER_FLAGS),
    [THREADS],
    "worker",
)
