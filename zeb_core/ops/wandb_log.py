"""Weights & Biases logging that can never stop training.

Offline unless a key is configured (WANDB_API_KEY or `wandb login`), a new run per learner start with the same
display name (resuming deleted runs is what breaks), and any W&B failure turns logging off with one warning.

Beyond scalars: each evaluation as a table, the training curve as an image, and each promoted model as an artifact
that references the store's files of that promotion (no second copy of the weights in W&B).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from zeb_core.evaluation.strength import eval_rate
from zeb_core.formats.weights import weights_filenames
from zeb_core.store import Backend, Store
from zeb_core.store.faults import FaultyBackend
from zeb_core.store.hf import HfBackend
from zeb_core.store.history import copy_path
from zeb_core.store.local import LocalBackend
from zeb_core.store.s3 import S3Backend
from zeb_core.store.store import weights_prefix

log = logging.getLogger("zeb.wandb")

EVAL_COLUMNS = ("opponent", "games", "win_rate", "ci_low", "ci_high", "step", "model")
EVAL_TABLE_KEY = "eval/table"  # this evaluation's rows, at its step
ALL_EVALS_KEY = "eval/all"  # every evaluation of the run, logged once at finish (tables are immutable in W&B)
CURVE_KEY = "training_curve"


WandbMode = Literal["online", "offline", "disabled", "shared"]
WANDB_MODES: tuple[WandbMode, ...] = get_args(WandbMode)


def wandb_mode() -> WandbMode:
    """WANDB_MODE (one of wandb's modes, else a clear error), else online with an API key, else offline."""
    raw = os.environ.get("WANDB_MODE")
    if raw:
        for mode in WANDB_MODES:
            if raw == mode:
                return mode
        raise ValueError(f"WANDB_MODE={raw!r} is not one of {', '.join(WANDB_MODES)}")
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    return "offline"


def evaluation_rows(evaluation: Mapping[str, float], games: int, step: int, model: str) -> list[list[Any]]:
    """One row (EVAL_COLUMNS) per opponent of an evaluation (strength.eval_metrics' keys), in the order played;
    its games are the evaluation's own count (`eval/vs_X_games`, as played: rounded up to even), else `games`."""
    opponents = [
        key.removeprefix("eval/vs_").removesuffix("_win_rate")
        for key in evaluation
        if key.startswith("eval/vs_") and key.endswith("_win_rate")
    ]
    rows: list[list[Any]] = []
    for opponent in opponents:
        if (rate := eval_rate(dict(evaluation), opponent)) is not None:
            played = int(evaluation.get(f"eval/vs_{opponent}_games", games))
            rows.append([opponent, played, *rate, step, model])
    return rows


@dataclass(frozen=True)
class StoreFileRef:
    """Where W&B can find one file of a push: `uri`, and whether W&B may read it now for a checksum (local files
    only: offline W&B cannot reach a Hub or a bucket, and the URI already names an immutable revision)."""

    name: str
    uri: str
    checksum: bool


def _unwrapped(backend: Backend) -> Backend:
    while isinstance(backend, FaultyBackend):
        backend = backend.inner
    return backend


def file_ref(backend: Backend, path: str, revision: str) -> StoreFileRef:
    """The URI of `path` as of `revision`, the one that stays valid after later pushes: the Hub's file at that
    commit, or the revision's history copy in a local folder or a bucket (the live file is overwritten; the copy
    lasts while the store keeps that promotion: its newest KEEP_BEST, store.prune_history)."""
    backend = _unwrapped(backend)
    if isinstance(backend, LocalBackend):
        return StoreFileRef(path, (backend.root / copy_path(revision, path)).as_uri(), True)
    if isinstance(backend, S3Backend):
        key = "/".join(part for part in (backend.prefix, copy_path(revision, path)) if part)
        return StoreFileRef(path, f"s3://{backend.bucket}/{key}", False)
    if isinstance(backend, HfBackend):
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(
            backend.repo_id, path, repo_type=backend.repo_type, revision=revision, endpoint=backend.endpoint
        )
        return StoreFileRef(path, url, False)
    raise TypeError(f"no W&B reference for files of a {type(backend).__name__} store ({backend.url})")


def promoted_files(store: Store, name: str, revision: str) -> list[StoreFileRef]:
    """The files of a promotion of `name` (its weights, config and state) at `revision`."""
    files = weights_filenames(weights_prefix(name, "best"))
    return [file_ref(store.weights, files[kind], revision) for kind in ("weights", "config", "state")]


class WandbLogger:
    def __init__(self, project: str, run_name: str, config: dict[str, Any], folder: Path | str | None = None) -> None:
        self.run = None
        self.url: str | None = None
        self.eval_rows: list[list[Any]] = []  # every evaluation of this run, for the table logged at finish
        self.promoted: list[str] = []  # the store revisions recorded as artifacts
        self._step = 0  # the newest step logged: W&B drops rows logged at an older step
        try:
            import wandb

            mode = wandb_mode()
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=project,
                name=run_name,
                config=config,
                mode=mode,
                dir=str(folder) if folder else None,
                reinit="create_new",
                settings=wandb.Settings(silent=True, console="off"),
            )
            self.url = self.run.url if mode == "online" else f"offline run in {self.run.dir}"
        except Exception as exc:  # noqa: BLE001 - observability must not stop the learner
            log.warning("W&B disabled: %s", exc)
            self.run = None

    def _guarded(self, what: str, fn: Callable[[Any], None]) -> bool:
        """Run `fn(run)`; a failure turns W&B off with one warning. True when it ran and succeeded."""
        if self.run is None:
            return False
        try:
            fn(self.run)
            return True
        except Exception as exc:  # noqa: BLE001 - observability must not stop the learner
            log.warning("W&B %s failed, turning it off: %s", what, exc)
            self.run = None
            return False

    def _at(self, step: int) -> int:
        self._step = max(self._step, step)
        return self._step

    def log(self, metrics: dict[str, float], step: int) -> None:
        at = self._at(step)
        self._guarded("logging", lambda run: run.log(metrics, step=at))

    def log_evaluation(self, evaluation: Mapping[str, float], games: int, step: int, model: str) -> None:
        """One evaluation (strength.eval_metrics' keys) as a table at its step; kept for the run's table."""
        rows = evaluation_rows(evaluation, games, step, model)
        if not rows:
            return
        self.eval_rows.extend(rows)
        at = self._at(step)

        def table(run: Any) -> None:
            import wandb

            run.log({EVAL_TABLE_KEY: wandb.Table(columns=list(EVAL_COLUMNS), data=rows)}, step=at)

        self._guarded("evaluation table", table)

    def log_image(self, key: str, png: bytes, step: int, caption: str | None = None) -> None:
        """A PNG (the training curve) as a W&B image at `step`, the bytes as drawn."""
        at = self._at(step)

        def image(run: Any) -> None:
            import wandb

            with tempfile.TemporaryDirectory(prefix="zeb-wandb-") as tmp:
                path = Path(tmp) / f"{key}.png"
                path.write_bytes(png)
                run.log({key: wandb.Image(str(path), caption=caption)}, step=at)  # copied into the run now

        self._guarded("image", image)

    def log_promotion(self, store: Store, name: str, step: int) -> str | None:
        """After a promotion try at `step`: when `name`'s best is now this step's model, record it as an artifact
        `NAME-best` that references the store's files of that promotion (no copy), with its step, games,
        evaluation and promotion decision from the state the store holds. Returns the weights' URI, else None."""
        if self.run is None:
            return None
        try:
            state = store.peek_state(name, "best")
            if state is None or state.get("step") != step:
                return None  # no promotion at this step
            pushes = store.history(name, "best", limit=1)
            if not pushes or pushes[0].step != step or pushes[0].revision in self.promoted:
                return None
            revision = pushes[0].revision
            refs = promoted_files(store, name, revision)
        except Exception as exc:  # noqa: BLE001 - a store hiccup costs the artifact, never the run
            log.warning("W&B: promotion at step %d not recorded: %s", step, exc)
            return None
        metadata = {
            "step": step,
            "games": state.get("total_games"),
            "evaluation": state.get("last_eval", {}),
            "promotion": state.get("promotion"),
            "store": store.url,
            "namespace": name,
            "revision": revision,
        }

        def artifact(run: Any) -> None:
            import wandb

            art = wandb.Artifact(f"{name}-best", type="model", metadata=metadata)
            for ref in refs:
                art.add_reference(ref.uri, name=ref.name, checksum=ref.checksum)
            run.log_artifact(art, aliases=["latest", f"step-{step}"])

        if not self._guarded("model artifact", artifact):
            return None
        self.promoted.append(revision)
        return refs[0].uri

    def finish(self) -> None:
        """Every evaluation of the run as one table, then the run's end."""
        if self.eval_rows:
            rows = list(self.eval_rows)

            def table(run: Any) -> None:
                import wandb

                run.log({ALL_EVALS_KEY: wandb.Table(columns=list(EVAL_COLUMNS), data=rows)}, step=self._step)

            self._guarded("evaluation table", table)
        if self.run is not None:
            try:
                self.run.finish()
            except Exception as exc:  # noqa: BLE001 - observability must not stop the learner
                log.warning("W&B finish failed: %s", exc)
            self.run = None
