"""The learning rate as a pure function of the optimizer step (nanoGPT style).

Deriving the rate from the step, instead of keeping a torch LR scheduler with its own state, means a restarted
learner that knows its step continues on exactly the same curve: there is nothing else to save.
"""

from __future__ import annotations

import math


def lr_at(
    step: int,
    lr: float,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    min_lr_ratio: float = 0.1,
) -> float:
    """Rate for optimizer step `step` (0-based): linear warm-up, then constant or a cosine to `min_lr_ratio * lr`.

    Self-play training has no natural end, so the cosine is only used when `total_steps` is given; after
    `total_steps` the rate stays at its floor.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if total_steps is None:
        return lr
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    min_lr = lr * min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)
