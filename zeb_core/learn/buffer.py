"""The replay buffer: a ring of preallocated tensors on the training device.

Examples are copied to the device once, when they are added, so a training step samples a batch with one
`randint` and a handful of gathers and nothing crosses the host/device boundary. Memory is allocated up front
(a 200K-example buffer is about 70 MB), so a long run never grows or fragments it.
"""

from __future__ import annotations

import torch

from zeb_core.engine.state import HAND_SIZE
from zeb_core.game.encoding import OBS_FEATURES, OBS_TOKENS
from zeb_core.ops.device import resolve_device

FIELDS = ("obs", "legal", "policy", "value", "model_step", "q", "has_q")


class ReplayBuffer:
    """Holds the newest `capacity` examples; older ones are overwritten in arrival order."""

    def __init__(self, capacity: int, device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.device = resolve_device(device)
        self.obs = torch.zeros(capacity, OBS_TOKENS, OBS_FEATURES, dtype=torch.int8, device=self.device)
        self.legal = torch.zeros(capacity, HAND_SIZE, dtype=torch.bool, device=self.device)
        self.policy = torch.zeros(capacity, HAND_SIZE, dtype=torch.float32, device=self.device)
        self.value = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.model_step = torch.zeros(capacity, dtype=torch.int64, device=self.device)
        self.q = torch.zeros(
            capacity, HAND_SIZE, dtype=torch.float32, device=self.device
        )  # per-slot values, where has_q
        self.has_q = torch.zeros(capacity, dtype=torch.bool, device=self.device)
        self._pos = 0  # where the next example goes
        self._size = 0
        self.total_added = 0  # every example ever offered, dropped ones included

    def __len__(self) -> int:
        return self._size

    def add(
        self,
        obs: torch.Tensor,
        legal: torch.Tensor,
        policy: torch.Tensor,
        value: torch.Tensor,
        model_step: torch.Tensor | int,
        q: torch.Tensor | None = None,
    ) -> None:
        """Append N examples; `model_step` is one int for all or an [N] tensor; `q` [N, 7] per-slot values or None.

        The result is the same as adding them one at a time: a batch larger than the buffer keeps its newest
        `capacity` examples, at the slots they would have reached.
        """
        n = int(obs.shape[0])
        if obs.shape[1:] != (OBS_TOKENS, OBS_FEATURES):
            raise ValueError(f"obs must be [N, {OBS_TOKENS}, {OBS_FEATURES}], got {list(obs.shape)}")
        for name, t, shape in (
            ("legal", legal, (n, HAND_SIZE)),
            ("policy", policy, (n, HAND_SIZE)),
            ("value", value, (n,)),
        ):
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
        if n == 0:
            return
        if not torch.is_tensor(model_step):
            model_step = torch.full((n,), int(model_step), dtype=torch.int64)
        keep = min(n, self.capacity)
        first = n - keep  # rows of this batch that would be overwritten by later rows of the same batch
        slots = (self._pos + first + torch.arange(keep, device=self.device)) % self.capacity
        self.obs[slots] = obs[first:].to(self.device, torch.int8)
        self.legal[slots] = legal[first:].to(self.device, torch.bool)
        self.policy[slots] = policy[first:].to(self.device, torch.float32)
        self.value[slots] = value[first:].to(self.device, torch.float32)
        self.model_step[slots] = model_step[first:].to(self.device, torch.int64)
        if q is None:
            self.q[slots] = 0.0
            self.has_q[slots] = False
        else:
            self.q[slots] = q[first:].to(self.device, torch.float32)
            self.has_q[slots] = True
        self._pos = (self._pos + n) % self.capacity
        self._size = min(self.capacity, self._size + n)
        self.total_added += n

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A uniform sample with replacement: {obs, legal, policy, value, model_step, q, has_q}, on its device.

        `generator` must live on the buffer's device; passing the same seeded generator replays the same batches.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self._size, (batch_size,), device=self.device, generator=generator)
        # Until the ring wraps the filled slots are 0..size-1; afterwards every slot is filled, so this is uniform.
        return {name: getattr(self, name)[idx] for name in FIELDS}
