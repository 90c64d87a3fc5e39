"""The training core: replay buffer, losses, overfitting a small set, exact resume through a weights bundle.

Every test runs on the CPU, and on CUDA as well when one is available.
"""

from __future__ import annotations

import math

import pytest
import torch

from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.formats.weights import bundle_from_files, bundle_to_files
from zeb_core.game.encoding import encode, pad_tokens
from zeb_core.learn.buffer import ReplayBuffer
from zeb_core.learn.schedule import lr_at
from zeb_core.learn.step import METRIC_KEYS, TrainConfig, Trainer, make_optimizer, policy_value_losses
from zeb_core.model import ModelConfig, ZebNet, bundle_from_model, model_from_bundle

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ALL_KEYS = set(METRIC_KEYS) | {"train/lr", "perf/train_steps_per_s"}


def _dataset(n_games: int = 24, seed: int = 0) -> dict[str, torch.Tensor]:
    """Real observations from random play, with sharp random visit targets over the legal slots."""
    gen = make_generator(seed)
    state = deal_benchmark(n_games, gen)
    obs_l, legal_l = [], []
    while not bool(state.done().all()):
        legal = state.legal_mask()
        obs, slots = encode(state, legal=legal)
        keep = slots.sum(1) > 1  # like self-play: forced moves give no example
        obs_l.append(pad_tokens(obs)[keep])
        legal_l.append(slots[keep])
        state.apply(torch.multinomial(legal.float(), 1, generator=gen).squeeze(1))
    obs, legal = torch.cat(obs_l), torch.cat(legal_l)
    scores = (torch.randn(legal.shape, generator=gen) * 3).masked_fill(~legal, float("-inf"))
    policy = scores.softmax(-1)
    value = torch.rand(legal.shape[0], generator=gen) * 2 - 1
    return {"obs": obs, "legal": legal, "policy": policy, "value": value}


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    return _dataset()


def _buffer(data: dict[str, torch.Tensor], device: str, n: int | None = None) -> ReplayBuffer:
    n = n or data["obs"].shape[0]
    buf = ReplayBuffer(n, device)
    buf.add(data["obs"][:n], data["legal"][:n], data["policy"][:n], data["value"][:n], model_step=3)
    return buf


def _model(seed: int = 0) -> ZebNet:
    torch.manual_seed(seed)
    return ZebNet(ModelConfig.preset("small"))


# ---------------------------------------------------------------- buffer
def _numbered(first: int, n: int) -> tuple[torch.Tensor, ...]:
    """n examples whose value and model_step are their arrival number, so the buffer's contents are readable."""
    ids = torch.arange(first, first + n)
    obs = ids.view(n, 1, 1).expand(n, 36, 8).to(torch.int8)
    legal = torch.ones(n, 7, dtype=torch.bool)
    return obs, legal, torch.full((n, 7), 1 / 7), ids.float(), ids


@pytest.mark.parametrize("device", DEVICES)
def test_buffer_wraps_around_and_keeps_the_newest(device: str) -> None:
    buf = ReplayBuffer(5, device)
    assert len(buf) == 0 and buf.total_added == 0
    buf.add(*_numbered(0, 3))
    assert len(buf) == 3 and sorted(buf.value[:3].tolist()) == [0, 1, 2]
    buf.add(*_numbered(3, 4))  # wraps: 0 and 1 are overwritten
    assert len(buf) == 5 and buf.total_added == 7
    assert sorted(buf.value.tolist()) == [2, 3, 4, 5, 6]
    buf.add(*_numbered(7, 12))  # larger than the buffer: only 14..18 survive
    assert sorted(buf.value.tolist()) == [14, 15, 16, 17, 18] and buf.total_added == 19
    assert torch.equal(buf.model_step.float(), buf.value) and torch.equal(buf.obs[:, 0, 0].float(), buf.value)
    one_by_one = ReplayBuffer(5, device)  # a big batch lands where single adds would have put it
    for i in range(19):
        one_by_one.add(*_numbered(i, 1))
    assert torch.equal(one_by_one.value, buf.value) and torch.equal(one_by_one.obs, buf.obs)
    with pytest.raises(ValueError, match="policy"):
        buf.add(*_numbered(0, 2)[:2], torch.zeros(2, 6), torch.zeros(2), 0)


@pytest.mark.parametrize("device", DEVICES)
def test_sample_shapes_dtypes_and_uniformity(data: dict[str, torch.Tensor], device: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, device).sample(2)
    buf = ReplayBuffer(10, device)
    buf.add(*_numbered(0, 4))  # not yet full: only the 4 filled slots may be drawn
    gen = torch.Generator(device).manual_seed(0)
    batch = buf.sample(4000, gen)
    expected = {
        "obs": ((4000, 36, 8), torch.int8),
        "legal": ((4000, 7), torch.bool),
        "policy": ((4000, 7), torch.float32),
        "value": ((4000,), torch.float32),
        "model_step": ((4000,), torch.int64),
        "q": ((4000, 7), torch.float32),
        "has_q": ((4000,), torch.bool),
    }
    assert set(batch) == set(expected)
    for name, (shape, dtype) in expected.items():
        assert tuple(batch[name].shape) == shape and batch[name].dtype == dtype
        assert batch[name].device.type == device
    counts = torch.bincount(batch["model_step"].cpu(), minlength=4)
    assert counts.numel() == 4 and bool((counts > 850).all())  # about 1000 each
    real = _buffer(data, device).sample(8, torch.Generator(device).manual_seed(1))
    assert bool((real["model_step"] == 3).all())


# ---------------------------------------------------------------- losses and metrics
def test_losses_are_finite_with_illegal_slots_and_match_a_direct_computation(data: dict[str, torch.Tensor]) -> None:
    model = _model()
    legal = data["legal"][:32]
    assert bool((~legal).any()) and bool((legal.sum(1) >= 2).all())
    logits, value = model(data["obs"][:32], legal)
    assert bool(torch.isinf(logits[~legal]).all())
    policy_loss, value_loss, logp = policy_value_losses(logits, value, legal, data["policy"][:32], data["value"][:32])
    (policy_loss + value_loss).backward()
    assert math.isfinite(policy_loss.item()) and math.isfinite(value_loss.item())
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    assert bool((logp[~legal] == 0).all())
    manual = 0.0
    for i in range(32):  # the cross-entropy over legal slots only, one example at a time
        lg = logits[i][legal[i]].detach()
        manual -= float((data["policy"][i][legal[i]] * (lg - lg.logsumexp(0))).sum())
    assert policy_loss.item() == pytest.approx(manual / 32, rel=1e-5)
    assert value_loss.item() == pytest.approx(float(((value.detach() - data["value"][:32]) ** 2).mean()), rel=1e-5)


def test_weight_decay_skips_norms_biases_and_embeddings() -> None:
    model = _model()
    opt = make_optimizer(model, TrainConfig(weight_decay=0.05))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        expect = name.endswith("weight") and p.dim() == 2 and not name.startswith("embeds")
        assert (id(p) in decayed) == expect, name
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_learning_rate_schedule() -> None:
    assert lr_at(0, 1.0) == lr_at(10**6, 1.0) == 1.0  # constant by default
    assert [lr_at(s, 1.0, warmup_steps=4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_at(0, 1.0, total_steps=100) == pytest.approx(1.0)
    assert lr_at(50, 1.0, total_steps=100) == pytest.approx(0.55)
    assert lr_at(100, 1.0, total_steps=100) == lr_at(500, 1.0, total_steps=100) == pytest.approx(0.1)


# ---------------------------------------------------------------- learning
@pytest.mark.parametrize("device", DEVICES)
def test_overfits_a_small_dataset(data: dict[str, torch.Tensor], device: str) -> None:
    buf = _buffer(data, device, n=96)
    trainer = Trainer(_model(), TrainConfig(lr=5e-3, batch_size=32), device)
    gen = torch.Generator(device).manual_seed(0)
    first = trainer.train_steps(buf, 5, gen)
    assert set(first) == ALL_KEYS and all(math.isfinite(v) for k, v in first.items() if k != "train/q_loss")
    assert math.isnan(first["train/q_loss"]), "no example has Q labels: no Q loss is reported (not a perfect 0)"
    for _ in range(5):
        last = trainer.train_steps(buf, 40, gen)
    assert trainer.step == 205 and last["train/lr"] == pytest.approx(5e-3)
    assert last["train/policy_loss"] < first["train/policy_loss"] - 0.3
    assert last["train/policy_top1_accuracy"] > max(0.85, first["train/policy_top1_accuracy"] + 0.3)
    assert last["train/policy_kl_divergence"] < 0.3 * first["train/policy_kl_divergence"]
    assert last["train/value_loss"] < 0.5 * first["train/value_loss"]
    assert last["train/grad_norm"] >= last["train/grad_norm_value_head"] > 0
    assert last["perf/train_steps_per_s"] > 0


@pytest.mark.parametrize("device", DEVICES)
def test_value_head_learns_a_constant(data: dict[str, torch.Tensor], device: str) -> None:
    n = data["obs"].shape[0]
    buf = ReplayBuffer(n, device)
    buf.add(data["obs"], data["legal"], data["policy"], torch.full((n,), 0.6), model_step=0)
    trainer = Trainer(_model(), TrainConfig(lr=3e-3, batch_size=32), device)
    metrics = trainer.train_steps(buf, 120, torch.Generator(device).manual_seed(0))
    assert metrics["train/value_target_mean"] == pytest.approx(0.6, abs=1e-5)
    metrics = trainer.train_steps(buf, 20, torch.Generator(device).manual_seed(1))
    assert metrics["train/value_loss"] < 1e-3
    assert metrics["train/value_mean"] == pytest.approx(0.6, abs=0.03) and metrics["train/value_std"] < 0.03


# ---------------------------------------------------------------- resume
@pytest.mark.parametrize("device", DEVICES)
def test_resume_through_a_weights_bundle_equals_training_straight_through(
    data: dict[str, torch.Tensor], device: str
) -> None:
    """k steps, save weights + optimizer as files, load into a new model and Trainer, k more == 2k in one go."""
    config = TrainConfig(lr=2e-3, batch_size=32, warmup_steps=5, total_steps=40, weight_decay=0.1, grad_clip=0.5)
    buf = _buffer(data, device)
    k = 12

    straight = Trainer(_model(), config, device)
    gen = torch.Generator(device).manual_seed(7)
    straight.train_steps(buf, k, gen)
    expected = straight.train_steps(buf, k, gen)

    first = Trainer(_model(), config, device)
    gen = torch.Generator(device).manual_seed(7)
    first.train_steps(buf, k, gen)
    bundle = bundle_from_model(first.model, {"step": 1, "optimizer_step": first.step}, first.optimizer_state())
    del first
    loaded = bundle_from_files(bundle_to_files(bundle))
    assert loaded.optimizer is not None and loaded.state["optimizer_step"] == k
    resumed = Trainer(
        model_from_bundle(loaded, device),
        config,
        device,
        optimizer_state=loaded.optimizer,
        step=loaded.state["optimizer_step"],
    )
    got = resumed.train_steps(buf, k, gen)

    assert resumed.step == straight.step == 2 * k
    # The CPU repeats itself exactly; CUDA attention and embedding backward may sum in a different order.
    rtol, atol = (1e-5, 1e-6) if device == "cpu" else (1e-3, 1e-4)
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(expected[key], rel=rtol, abs=atol, nan_ok=True), key
    assert got["train/lr"] == expected["train/lr"]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=rtol, atol=atol, msg=name)


def test_optimizer_state_is_a_snapshot(data: dict[str, torch.Tensor]) -> None:
    trainer = Trainer(_model(), TrainConfig(batch_size=16), "cpu")
    buf = _buffer(data, "cpu")
    gen = torch.Generator().manual_seed(0)
    trainer.train_steps(buf, 2, gen)
    snap = trainer.optimizer_state()
    before = snap["state"][0]["exp_avg"].clone()
    trainer.train_steps(buf, 2, gen)
    assert torch.equal(snap["state"][0]["exp_avg"], before)
    with pytest.raises(ValueError, match="buffer is on"):
        trainer.train_steps(ReplayBuffer(4, "meta"), 1)


@pytest.mark.parametrize("buckets", [2, 4, 7])
def test_length_buckets_train_exactly_like_the_padded_batch(data: dict[str, torch.Tensor], buckets: int) -> None:
    """Chunks ordered by history length and trimmed to their own longest: the same outputs, metrics and weights
    as the whole batch padded to 36 tokens (padding is masked and never read)."""
    from zeb_core.game.encoding import KIND_PAD
    from zeb_core.learn.step import forward_by_length

    buf = _buffer(data, "cpu")
    batch = buf.sample(64, torch.Generator().manual_seed(2))
    model = _model()
    logits, value, order = forward_by_length(model, batch["obs"], batch["legal"], buckets)
    ref_logits, ref_value = model(batch["obs"], batch["legal"])
    assert sorted(order.tolist()) == list(range(64))
    lengths = (batch["obs"][order, :, 0] != KIND_PAD).sum(1)
    assert bool((lengths[1:] >= lengths[:-1]).all()) and int(lengths.min()) < int(lengths.max())  # they differ
    torch.testing.assert_close(logits, ref_logits[order], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(value, ref_value[order], rtol=1e-5, atol=1e-6)

    grads = []
    for out_logits, out_value in ((logits, value), (ref_logits[order], ref_value[order])):
        model.zero_grad()
        target = batch["policy"][order]
        loss = -(target * torch.where(batch["legal"][order], out_logits.log_softmax(-1), 0.0)).sum() + out_value.sum()
        loss.backward(retain_graph=True)
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1])
    for name, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][name], rtol=1e-4, atol=1e-6, msg=name)

    # whole training steps: the same metrics (not the same weights bit for bit: AdamW divides a gradient that is 0
    # in exact arithmetic, such as the attention key bias's, by its own rounding noise)
    runs = []
    for b in (1, buckets):
        trainer = Trainer(_model(), TrainConfig(lr=2e-3, batch_size=48, length_buckets=b), "cpu")
        runs.append(trainer.train_steps(buf, 6, torch.Generator().manual_seed(5)))
    for key in METRIC_KEYS:
        assert runs[1][key] == pytest.approx(runs[0][key], rel=1e-3, abs=1e-4, nan_ok=True), key
    with pytest.raises(ValueError, match="length_buckets"):
        TrainConfig(length_buckets=0)
