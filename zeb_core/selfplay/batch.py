"""A batch of self-play training examples: what every teacher (search, solver, rollout) hands the worker.

Its own module so the teachers' modules import it without importing each other (games dispatches to the
solver and rollout teachers, which return this same batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SelfPlayBatch:
    obs: torch.Tensor  # [N, 36, 8] int8
    legal: torch.Tensor  # [N, 7] bool
    policy: torch.Tensor  # [N, 7] float32, sums to 1 over legal slots
    value: torch.Tensor  # [N] float32 in [-1, 1]
    games: int
    seconds: float
    stats: dict = field(default_factory=dict)
    q: torch.Tensor | None = None  # [N, 7] float32 per-slot values for the mover (solver and rollout teachers)

    @property
    def examples(self) -> int:
        return int(self.value.shape[0])
