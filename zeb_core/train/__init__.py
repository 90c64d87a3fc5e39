"""The training core the learner calls: a device-resident replay buffer and an AdamW trainer (CPU or CUDA)."""

from zeb_core.train.buffer import ReplayBuffer
from zeb_core.train.schedule import lr_at
from zeb_core.train.step import METRIC_KEYS, TrainConfig, Trainer, make_optimizer, policy_value_losses

__all__ = ["METRIC_KEYS", "ReplayBuffer", "TrainConfig", "Trainer", "lr_at", "make_optimizer", "policy_value_losses"]
