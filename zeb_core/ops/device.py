"""One reading of a `--device` flag, shared by the learner, the workers, the replay buffer and the CLI."""

from __future__ import annotations

import torch


def resolve_device(device: torch.device | str) -> torch.device:
    """`auto` means CUDA when present, else the CPU; `cuda` gets its index filled in, so "cuda" and "cuda:0" compare
    equal. Asking for CUDA on a machine without it is a ValueError, not a crash deep in the first tensor op."""
    if str(device) == "auto":
        return resolve_device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but this machine has no CUDA GPU (use cpu or auto)")
        if device.index is None:
            return torch.device("cuda", torch.cuda.current_device())
    return device
