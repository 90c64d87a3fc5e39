"""One training step, written out top to bottom: sample, forward, losses, backward, clip, step; plus its metrics.

The same code runs on the CPU and on CUDA. Metrics are accumulated as tensors on the device and read back once
per `train_steps` call, so a GPU never waits on the host inside the loop. The learning rate is a function of the
optimizer step (`schedule.lr_at`), so the optimizer's state dict plus `Trainer.step` is everything a restarted
learner needs to continue exactly where it stopped.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zeb_core.game.encoding import KIND_PAD, PLAY_OFFSET
from zeb_core.learn.buffer import ReplayBuffer
from zeb_core.learn.schedule import lr_at
from zeb_core.model.net import ZebNet
from zeb_core.ops.device import resolve_device

METRIC_KEYS = (
    "train/policy_loss",
    "train/value_loss",
    "train/policy_entropy",
    "train/policy_top1_accuracy",
    "train/policy_kl_divergence",
    "train/grad_norm",
    "train/grad_norm_value_head",
    "train/value_mean",
    "train/value_std",
    "train/value_target_mean",
    "train/q_loss",
)  # averaged over the steps; train/lr and perf/train_steps_per_s are added at the end


@dataclass
class TrainConfig:
    """Optimisation settings. Batch 64 and weight decay 0.01 are mk5-main forge/zeb learner's defaults."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 64
    warmup_steps: int = 0
    total_steps: int | None = None  # None: constant rate after warm-up; else cosine to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0  # None or 0: no clipping (the norm is still measured)
    value_weight: float = 1.0
    # Examples with per-move values (q, from exact solutions) train the policy logits as a Q head: the legal
    # logits, centred, regress on q_scale * (q - mean legal q). Then argmax(logits) = argmax E[q | observation] and
    # softmax(logits) = softmax(q_scale * E[q]) is a prior for search. Other examples keep the cross-entropy.
    # The Q loss is in squared value units over centred moves (about 0.03 on 8-world targets), ten times smaller
    # than the value loss: at weight 1 the value head's gradient shapes the shared trunk and the Q loss stays where
    # it started even on 2,700 examples seen 30 times; at 10 it falls like the value loss does (measured).
    q_scale: float = 4.0
    q_weight: float = 10.0
    # "mse": the Q head above. "ce": cross-entropy towards softmax(q_ce_beta * q) over the legal moves, i.e.
    # imitate the argmax of the averaged values (ties shared), which a classifier may learn faster.
    q_loss: str = "mse"
    q_ce_beta: float = 20.0
    betas: tuple[float, float] = (0.9, 0.999)
    # On the CPU the batch, ordered by history length, runs through the model in this many chunks, each trimmed
    # to its own longest history: the same outputs and gradients (padding is masked and never read) for fewer
    # tokens, as positions run from 8 to 36 tokens (22 on average): 10 small-model steps at batch 256 on one core
    # 1.9-2.3 s padded, 1.2-1.4 s in 3-4 chunks, 1.5-1.6 s in 8. 1: the whole batch padded to 36 tokens, as it
    # always is on CUDA (a GPU gains little from shorter chunks and would wait on the host for their lengths).
    length_buckets: int = 4

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError(f"invalid training config {self}")
        if self.length_buckets < 1:
            raise ValueError(f"length_buckets must be at least 1, got {self.length_buckets}")
        if self.total_steps is not None and self.total_steps < 1:
            raise ValueError(f"total_steps must be positive or None, got {self.total_steps}")

    def lr_at(self, step: int) -> float:
        return lr_at(step, self.lr, self.warmup_steps, self.total_steps, self.min_lr_ratio)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on Linear weights only.

    Decaying LayerNorm gains, biases or embedding rows pulls them towards 0 for no benefit (and an embedding row
    of a rare feature value decays on every step without being trained). The default (foreach) implementation is
    kept on every device so a state dict saved on one device loads the same way on another.
    """
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            (decay if isinstance(module, nn.Linear) and name == "weight" else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def policy_value_losses(
    logits: torch.Tensor,
    value: torch.Tensor,
    legal: torch.Tensor,
    target_policy: torch.Tensor,
    target_value: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(policy cross-entropy, value MSE, masked log-probabilities [B, 7]).

    Illegal slots have -inf logits, so their log-probability is -inf and 0 * -inf would be NaN: they are replaced
    by 0 after the log-softmax (their target and probability are 0, so they contribute nothing).
    """
    logp = torch.where(legal, F.log_softmax(logits, dim=-1), 0.0)
    policy_loss = -(target_policy * logp).sum(-1).mean()
    value_loss = F.mse_loss(value, target_value)
    return policy_loss, value_loss, logp


def q_losses(logits: torch.Tensor, legal: torch.Tensor, q: torch.Tensor, q_scale: float) -> torch.Tensor:
    """[B] mean squared error of the centred legal logits / q_scale against the centred legal q values.

    Centring over the legal slots makes the loss blind to a per-position constant (softmax and argmax are too);
    a position with one legal move has nothing to learn and gives 0.
    """
    n = legal.sum(-1, keepdim=True).clamp(min=1)
    z = torch.where(legal, logits, 0.0) / q_scale
    z = z - z.sum(-1, keepdim=True) / n
    t = torch.where(legal, q, 0.0)
    t = t - t.sum(-1, keepdim=True) / n
    return (torch.where(legal, z - t, 0.0) ** 2).sum(-1) / n.squeeze(-1)


def forward_by_length(
    model: nn.Module, obs: torch.Tensor, legal: torch.Tensor, buckets: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits [B, 7], value [B], order [B]): the model on the batch reordered by history length (`order`), in
    `buckets` chunks each trimmed to its longest history. Trailing tokens past a row's history are padding, which
    attention masks and no head reads, so each row's outputs (and gradients) are those of the padded batch."""
    if buckets <= 1:
        return (*model(obs, legal), torch.arange(obs.shape[0], device=obs.device))
    keep = obs[..., 0] != KIND_PAD  # [B, T]
    length = torch.where(keep, torch.arange(1, obs.shape[1] + 1, device=obs.device), 0).amax(1)  # [B]
    sorted_length, order = torch.sort(length)
    chunks = torch.tensor_split(order, min(buckets, len(order)))
    ends = torch.cumsum(torch.tensor([len(c) for c in chunks]), 0) - 1
    longest = sorted_length[ends.to(obs.device)].tolist()  # each chunk's longest history: one read of the device
    logits, values = [], []
    for chunk, t in zip(chunks, longest, strict=True):
        chunk_logits, chunk_value = model(obs[chunk, : max(int(t), PLAY_OFFSET)], legal[chunk])
        logits.append(chunk_logits)
        values.append(chunk_value)
    return torch.cat(logits), torch.cat(values), order


class Trainer:
    """Owns the model's optimizer and step count; `train_steps` runs n optimizer steps on buffer samples."""

    def __init__(
        self,
        model: ZebNet,
        config: TrainConfig,
        device: torch.device | str = "cpu",
        optimizer_state: dict[str, Any] | None = None,
        step: int = 0,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).train()
        self.config = config
        self.optimizer = make_optimizer(self.model, config)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
            # The saved state supplies the moments; the hyperparameters stay those of `config` (lr is set per step).
            for group, decay in zip(self.optimizer.param_groups, (config.weight_decay, 0.0), strict=True):
                group["weight_decay"], group["betas"] = decay, config.betas
        self.step = int(step)  # optimizer steps taken so far; drives the learning-rate schedule
        self._value_head_params = [p for p in self.model.value_head.parameters() if p.requires_grad]

    def optimizer_state(self) -> dict[str, Any]:
        """A CPU snapshot of the optimizer state dict (a copy: training on does not change it)."""
        sd = self.optimizer.state_dict()
        state = {
            pid: {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in pstate.items()}
            for pid, pstate in sd["state"].items()
        }
        return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}

    def train_steps(
        self, buffer: ReplayBuffer, n_steps: int, generator: torch.Generator | None = None
    ) -> dict[str, float]:
        """Run `n_steps` optimizer steps on uniform samples of `buffer`; returns the metrics averaged over them.

        train/lr is the rate of the last step taken; perf/train_steps_per_s counts sampling and all.
        """
        if n_steps < 1:
            raise ValueError(f"n_steps must be positive, got {n_steps}")
        if buffer.device != self.device:
            raise ValueError(f"buffer is on {buffer.device}, the trainer on {self.device}")
        cfg = self.config
        clip = cfg.grad_clip if cfg.grad_clip else float("inf")
        buckets = cfg.length_buckets if self.device.type == "cpu" else 1
        self.model.train()
        totals = torch.zeros(len(METRIC_KEYS), device=self.device)
        start = time.perf_counter()
        for _ in range(n_steps):
            lr = cfg.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr

            batch = buffer.sample(cfg.batch_size, generator)
            logits, value, order = forward_by_length(self.model, batch["obs"], batch["legal"], buckets)
            batch = {k: v[order] for k, v in batch.items()}  # the rows in the outputs' order (a uniform sample still)
            target = batch["policy"]
            has_q = batch["has_q"]
            ce_loss, value_loss, logp = policy_value_losses(
                logits, value, batch["legal"], target * (~has_q).unsqueeze(1), batch["value"]
            )
            ce_loss = ce_loss * batch["legal"].shape[0] / (~has_q).sum().clamp(min=1)  # mean over CE rows only
            if cfg.q_loss == "ce":
                q_target = torch.softmax(torch.where(batch["legal"], cfg.q_ce_beta * batch["q"], float("-inf")), -1)
                q_rows = -(q_target * torch.where(batch["legal"], F.log_softmax(logits, dim=-1), 0.0)).sum(-1)
            else:
                q_rows = q_losses(logits, batch["legal"], batch["q"], cfg.q_scale)
            q_loss = (q_rows * has_q).sum() / has_q.sum().clamp(min=1)
            # each reported loss covers its own rows: NaN (not 0) when a batch has none (the solver teacher labels
            # every example with Q values), so the report shows no policy loss rather than a perfect one
            nan = torch.full_like(ce_loss, float("nan"))
            policy_loss = torch.where((~has_q).any(), ce_loss, nan)
            q_reported = torch.where(has_q.any(), q_loss, nan)
            loss = ce_loss + cfg.q_weight * q_loss + cfg.value_weight * value_loss

            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Both norms are taken before clipping: they are what the loss asked for (the value head's is the
            # canary for a value-loss blow-up).
            value_head_norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in self._value_head_params if p.grad is not None])
            )
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
            self.step += 1

            with torch.no_grad():
                probs = logp.exp()  # 0 on illegal slots
                entropy = -(probs * logp).sum(-1).mean()
                top1 = (logits.argmax(-1) == target.argmax(-1)).float().mean()
                # KL(target || net) = sum t log t - sum t log p = cross-entropy - H(target); xlogy makes 0 log 0 = 0.
                kl = -(target * logp).sum(-1).mean() + torch.special.xlogy(target, target).sum(-1).mean()
                totals += torch.stack(
                    [
                        policy_loss.detach(),
                        value_loss.detach(),
                        entropy,
                        top1,
                        kl,
                        grad_norm,
                        value_head_norm,
                        value.mean(),
                        value.std(),
                        batch["value"].mean(),
                        q_reported.detach(),
                    ]
                )
        averaged = (totals / n_steps).tolist()  # the one host sync of the call
        seconds = time.perf_counter() - start
        metrics = dict(zip(METRIC_KEYS, averaged, strict=True))
        metrics["train/lr"] = lr
        metrics["perf/train_steps_per_s"] = n_steps / seconds
        return metrics
