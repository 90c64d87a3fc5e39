"""The policy+value transformer, its config and checkpoints."""

from zeb_core.model.checkpoint import bundle_from_model, init_checkpoint, load_model, model_from_bundle
from zeb_core.model.config import PRESETS, ModelConfig
from zeb_core.model.net import ZebNet

__all__ = [
    "PRESETS",
    "ModelConfig",
    "ZebNet",
    "bundle_from_model",
    "init_checkpoint",
    "load_model",
    "model_from_bundle",
]
