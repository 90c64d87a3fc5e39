"""Dirichlet root noise drawn from a caller's torch.Generator, through public torch APIs only.

`torch.distributions.Gamma` samples from the default generator of its device and takes no generator. To draw
from a seeded `torch.Generator` (self-play's, so that a seed replays a game exactly) we fork the default RNG,
load the generator's state into it, sample, and hand the advanced state back to the generator; the default RNG is
restored when the fork closes. The draw is the one the generator itself would give: a seeded run is reproducible.
"""

from __future__ import annotations

import torch


def _default_state(device: torch.device) -> torch.Tensor:
    if device.type == "cpu":
        return torch.get_rng_state()
    return torch.get_device_module(device.type).get_rng_state(device)


def _set_default_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cpu":
        torch.set_rng_state(state)
    else:
        torch.get_device_module(device.type).set_rng_state(state, device)


def gamma_sample(concentration: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Gamma(concentration, 1) draws of the shape of `concentration`, from `gen` (the default RNG when None).

    `gen` must be on the device of `concentration`, as for any sampling call that takes a generator.
    """
    gamma = torch.distributions.Gamma(concentration, torch.ones_like(concentration), validate_args=False)
    if gen is None:
        return gamma.sample()
    device = gen.device
    on_cpu = device.type == "cpu"
    with torch.random.fork_rng(devices=[] if on_cpu else [device], device_type=None if on_cpu else device.type):
        _set_default_state(device, gen.get_state())
        out = gamma.sample()
        gen.set_state(_default_state(device))
    return out


def dirichlet_noise(alpha: float, legal: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """[T, 7] a Dirichlet(alpha) sample over each row's legal slots of `legal` [T, 7] (zero on illegal ones)."""
    noise = gamma_sample(torch.full(legal.shape, alpha, device=legal.device), gen) * legal
    return noise / noise.sum(1, keepdim=True).clamp(min=1e-12)
