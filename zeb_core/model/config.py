"""Model configuration: the size presets and the validated JSON that travels beside the weights."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zeb_core.formats.safe_io import FormatError
from zeb_core.formats.weights import MAX_MODEL_PARAMETERS
from zeb_core.game.encoding import FEATURE_SIZES, OBS_FEATURES

MODEL_FORMAT_VERSION = 1
ARCHITECTURE = "zeb-transformer"
SizeName = Literal["small", "medium", "large", "custom"]

# (d_model, n_layers, n_heads, d_ff): about 75K, 557K and 3.3M parameters, like mk5-main forge/zeb's presets.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "small": (64, 2, 4, 128),
    "medium": (128, 4, 4, 256),
    "large": (256, 6, 8, 512),
}


class ModelConfig(BaseModel):
    """What `NAME-config.json` holds. Unknown keys are refused so a typo never loads silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = MODEL_FORMAT_VERSION
    architecture: str = ARCHITECTURE
    size: SizeName = "medium"
    d_model: int = Field(128, ge=8, le=4096)
    n_layers: int = Field(4, ge=1, le=64)
    n_heads: int = Field(4, ge=1, le=64)
    d_ff: int = Field(256, ge=8, le=16384)
    feature_sizes: tuple[int, ...] = FEATURE_SIZES
    step: int = Field(0, ge=0)
    # The objective the value head (and a Q-trained policy head) was trained for: engine.VALUE_TARGETS.
    value_target: Literal["points", "points-margin", "contract", "contract-sign"] = "points"

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.format_version != MODEL_FORMAT_VERSION:
            raise ValueError(f"format version {self.format_version}; this Zeb reads version {MODEL_FORMAT_VERSION}")
        if self.architecture != ARCHITECTURE:
            raise ValueError(f"architecture {self.architecture!r}; this Zeb builds {ARCHITECTURE!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if tuple(self.feature_sizes) != tuple(FEATURE_SIZES) or len(self.feature_sizes) != OBS_FEATURES:
            raise ValueError(f"encoding feature sizes {self.feature_sizes} differ from this Zeb's {FEATURE_SIZES}")
        if self.size != "custom" and (self.d_model, self.n_layers, self.n_heads, self.d_ff) != PRESETS[self.size]:
            raise ValueError(f"dims do not match the {self.size!r} preset {PRESETS[self.size]}")
        if self.num_parameters() > MAX_MODEL_PARAMETERS:
            raise ValueError(
                f"d_model {self.d_model}, n_layers {self.n_layers}, d_ff {self.d_ff} make {self.num_parameters():,} "
                f"parameters, over the limit of {MAX_MODEL_PARAMETERS:,} (zeb_core.formats.weights)"
            )
        return self

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name and shape of every tensor of the `ZebNet` this config describes (its state_dict), worked out
        without building it, so a config or a weights file can be checked before anything is allocated.
        It mirrors zeb_core.model.net; tests/test_format_bounds.py holds the two to the same answer."""
        d, f = self.d_model, self.d_ff
        shapes: dict[str, tuple[int, ...]] = {f"embeds.{i}.weight": (n, d) for i, n in enumerate(self.feature_sizes)}
        block = {
            "ln1.weight": (d,), "ln1.bias": (d,), "qkv.weight": (3 * d, d), "qkv.bias": (3 * d,),
            "proj.weight": (d, d), "proj.bias": (d,), "ln2.weight": (d,), "ln2.bias": (d,),
            "ff.0.weight": (f, d), "ff.0.bias": (f,), "ff.2.weight": (d, f), "ff.2.bias": (d,),
        }  # fmt: skip
        for layer in range(self.n_layers):
            shapes.update({f"blocks.{layer}.{key}": shape for key, shape in block.items()})
        shapes.update({
            "ln_f.weight": (d,), "ln_f.bias": (d,), "policy_head.weight": (1, d), "policy_head.bias": (1,),
            "value_head.0.weight": (d, d), "value_head.0.bias": (d,),
            "value_head.2.weight": (1, d), "value_head.2.bias": (1,),
        })  # fmt: skip
        return shapes

    def num_parameters(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())

    @classmethod
    def preset(cls, size: str) -> ModelConfig:
        if size not in PRESETS:
            raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(PRESETS)}")
        d, n, h, f = PRESETS[size]
        return cls.model_validate({"size": size, "d_model": d, "n_layers": n, "n_heads": h, "d_ff": f})

    @classmethod
    def from_json_dict(cls, data: dict) -> ModelConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
            raise FormatError(f"invalid model config: {problems}") from None
