"""Weights & Biases logging that can never stop training.

Offline unless a key is configured (WANDB_API_KEY or `wandb login`), a new run per learner start with the same
display name (resuming deleted runs is what breaks), and any W&B failure turns logging off with one warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, get_args

log = logging.getLogger("zeb.wandb")


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


class WandbLogger:
    def __init__(self, project: str, run_name: str, config: dict[str, Any], folder: Path | str | None = None) -> None:
        self.run = None
        self.url: str | None = None
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

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(metrics, step=step)
        except Exception as exc:  # noqa: BLE001 - observability must not stop the learner
            log.warning("W&B logging failed, turning it off: %s", exc)
            self.run = None

    def finish(self) -> None:
        if self.run is not None:
            try:
                self.run.finish()
            except Exception as exc:  # noqa: BLE001 - observability must not stop the learner
                log.warning("W&B finish failed: %s", exc)
            self.run = None
