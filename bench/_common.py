"""Shared set-up for benchmark scripts: thread count and a best-of-N timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def setup(threads: int = 2) -> None:
    torch.set_num_threads(threads)


def best_rate(work: Callable[[], int], repeats: int = 3) -> float:
    """Items per second of the fastest of `repeats` runs (`work` returns the number of items it did)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = work()
        best = max(best, n / (time.perf_counter() - start))
    return best
