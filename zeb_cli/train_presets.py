"""Flag sets for `zeb train` that several callers share (the tests, bench/gpu_check.py), defined once here."""

from __future__ import annotations

from typing import NamedTuple

from zeb_cli.train_settings import TrainSettings


class TrainSearchDefaults(NamedTuple):
    """`zeb train`'s default worker search (its --sims, --worlds, --max-nodes and --teacher: one of
    zeb_core.mcts.config.TEACHERS; "rollout" and "schedule" are issue 36's improving teacher, not yet the default),
    for the benches that measure a worker as `zeb train` runs it. Read from TrainSettings, their one definition."""

    simulations: int
    worlds: int
    max_nodes: int
    teacher: str


_DEFAULTS = TrainSettings()
TRAIN_SEARCH = TrainSearchDefaults(_DEFAULTS.sims, _DEFAULTS.worlds, _DEFAULTS.max_nodes, _DEFAULTS.teacher)

# The smallest run that still goes through every part of `zeb train` (learner cycles, a worker's batches,
# evaluations, promotion, the final report) in seconds of CPU: one worker, 4 simulations in 1 world, small batches,
# an evaluation every 2 cycles. No --device: callers add it (tests pin cpu).
TINY_TRAIN_FLAGS: tuple[str, ...] = (
    "--workers", "1",
    "--sims", "4",
    "--worlds", "1",
    "--max-nodes", "8",
    "--games-per-batch", "16",
    "--min-buffer-size", "100",
    "--training-steps-per-cycle", "2",
    "--batch-size", "32",
    "--eval-every", "2",
    "--eval-games", "20",
    "--final-eval-games", "20",
)  # fmt: skip


def with_flag(flags: tuple[str, ...] | list[str], flag: str, value: str) -> list[str]:
    """`flags` with `flag` set to `value` (replaced where present, else appended)."""
    out = list(flags)
    if flag in out:
        out[out.index(flag) + 1] = value
        return out
    return [*out, flag, value]
