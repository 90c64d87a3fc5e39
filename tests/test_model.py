"""Model presets, checkpoints and their validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.formats.safe_io import FormatError
from zeb_core.formats.weights import load_bundle_dir
from zeb_core.game.encoding import encode
from zeb_core.model import ModelConfig, ZebNet, load_model

runner = CliRunner()


@pytest.mark.parametrize("size, lo, hi", [("small", 60e3, 90e3), ("medium", 500e3, 620e3), ("large", 3.0e6, 3.6e6)])
def test_presets_have_the_advertised_sizes(size: str, lo: float, hi: float) -> None:
    assert lo <= ZebNet(ModelConfig.preset(size)).num_parameters() <= hi


def test_init_checkpoint_writes_safetensors_and_config(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    res = runner.invoke(app, ["init-checkpoint", "--size", "small", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "model.safetensors").is_file()
    config = json.loads((out / "model-config.json").read_text())
    assert config["size"] == "small" and config["format_version"] == 1 and config["step"] == 0
    model, bundle = load_model(out)
    assert bundle.step == 0 and model.config.size == "small"
    res = runner.invoke(app, ["init-checkpoint", "--size", "huge", "-o", str(out)])
    assert res.exit_code == 2 and "unknown size" in res.output


def test_forward_shapes_masks_and_padding_invariance(small_checkpoint: Path) -> None:
    model, _ = load_model(small_checkpoint)
    state = deal_benchmark(16, make_generator(0))
    for _ in range(9):
        state.apply(state.legal_mask().float().argmax(1))
    obs_trim, legal = encode(state, trim=True)
    obs_full, _ = encode(state, trim=False)
    with torch.no_grad():
        logits_t, value_t = model(obs_trim, legal)
        logits_f, value_f = model(obs_full, legal)
    assert logits_t.shape == (16, 7) and value_t.shape == (16,)
    assert bool(torch.isinf(logits_t[~legal]).all()) and bool(torch.isfinite(logits_t[legal]).all())
    assert torch.allclose(logits_t[legal], logits_f[legal], atol=1e-5)
    assert torch.allclose(value_t, value_f, atol=1e-5)


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "model-config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format_version": 99}, "format version 99"),
        ({"d_model": 96}, "preset"),
        ({"architecture": "resnet"}, "architecture"),
        ({"colour": "blue"}, "colour"),
        ({"size": "custom", "d_model": 96, "n_heads": 4}, "shape"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(
    small_checkpoint: Path, tmp_path: Path, changes: dict, message: str
) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    for f in small_checkpoint.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    _edit_config(folder, **changes)
    with pytest.raises(FormatError, match=message):
        load_model(folder)


def test_tampered_or_nan_weights_are_refused(small_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = tmp_path / "t"
    folder.mkdir()
    for f in small_checkpoint.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    bundle = load_bundle_dir(folder)
    tensors = dict(bundle.tensors)
    key = next(iter(tensors))
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(FormatError, match="SHA-256"):
        load_model(folder)
    state = json.loads((folder / "model-state.json").read_text())
    state.pop("weights_sha256")
    (folder / "model-state.json").write_text(json.dumps(state))
    with pytest.raises(FormatError, match="NaN"):
        load_model(folder)
    (folder / "model.safetensors").write_bytes(b"\x80\x04K\x01.")  # a pickle, not safetensors
    with pytest.raises(FormatError):
        load_model(folder)
