"""Model <-> weights bundle: build a network from validated files, and write a fresh one."""

from __future__ import annotations

from pathlib import Path

import torch

from zeb_core.formats.safe_io import FormatError
from zeb_core.formats.weights import DEFAULT_NAME, WeightsBundle, default_state, load_bundle_dir, save_bundle_dir
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet


def model_from_bundle(bundle: WeightsBundle, device: torch.device | str = "cpu") -> ZebNet:
    """A ZebNet holding the bundle's weights; any config or shape mismatch is a FormatError that says what.
    The config (bounded in size) and every tensor's name and shape are checked against each other first, and
    the network is built only for weights that fit it: a bad bundle costs no allocation of the network it names."""
    config = ModelConfig.from_json_dict(bundle.config)
    check_tensor_shapes(config, bundle.tensors)
    model = ZebNet(config)
    model.load_state_dict({k: v.to(torch.float32) for k, v in bundle.tensors.items()})
    return model.to(device).eval()


def check_tensor_shapes(config: ModelConfig, tensors: dict[str, torch.Tensor]) -> None:
    """FormatError unless `tensors` are exactly the tensors, by name and shape, of the network `config` names."""
    expected = config.tensor_shapes()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise FormatError(f"weights do not fit a {config.size} model: missing {missing[:3]}, unexpected {extra[:3]}")
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != shape:
            raise FormatError(
                f"weights tensor {key!r} has shape {list(tensors[key].shape)}, the config needs {list(shape)}"
            )


def bundle_from_model(model: ZebNet, state: dict | None = None, optimizer: dict | None = None) -> WeightsBundle:
    config = model.config.model_copy(update={"step": int((state or {}).get("step", 0))})
    return WeightsBundle(
        tensors={k: v.detach().cpu() for k, v in model.state_dict().items()},
        config=config.model_dump(mode="json"),
        state=default_state(**(state or {})),
        optimizer=optimizer,
    )


def init_checkpoint(size: str, out_dir: Path, seed: int = 0, name: str = DEFAULT_NAME) -> dict[str, Path]:
    """Write a freshly initialised model of `size` as step 0."""
    torch.manual_seed(seed)
    model = ZebNet(ModelConfig.preset(size))
    return save_bundle_dir(Path(out_dir), bundle_from_model(model, {"step": 0}), name)


def load_model(path: Path | str, device: torch.device | str = "cpu") -> tuple[ZebNet, WeightsBundle]:
    bundle = load_bundle_dir(path)
    return model_from_bundle(bundle, device), bundle
