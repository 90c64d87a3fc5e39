"""ZebNet: a small pre-LayerNorm transformer over the observation tokens, with policy and value heads.

Each token's integer features are embedded by one table per feature and summed (no positional embedding: the
play tokens carry their trick index and position as features, and hand slots are a set). The policy head scores
the 7 hand-slot tokens; the value head reads the context token. Padding tokens are masked out of attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zeb_core.game.encoding import HAND_OFFSET, KIND_PAD, PLAY_OFFSET
from zeb_core.model.config import ModelConfig


class Block(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Linear(d_ff, d))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.ln2(x))


class ZebNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.embeds = nn.ModuleList(nn.Embedding(n, d) for n in config.feature_sizes)
        self.blocks = nn.ModuleList(Block(d, config.n_heads, config.d_ff) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.policy_head = nn.Linear(d, 1)
        self.value_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))

    def forward(self, obs: torch.Tensor, legal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [B, T, 8] int, legal [B, 7] bool -> (policy logits [B, 7] with -inf on illegal slots, value [B])."""
        obs = obs.long()
        x = self.embeds[0](obs[..., 0])
        for f in range(1, len(self.embeds)):
            x = x + self.embeds[f](obs[..., f])
        keep = obs[..., 0] != KIND_PAD  # [B, T]
        attn_mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask)
        x = self.ln_f(x)
        logits = self.policy_head(x[:, HAND_OFFSET:PLAY_OFFSET]).squeeze(-1)
        logits = logits.masked_fill(~legal, float("-inf"))
        value = torch.tanh(self.value_head(x[:, 0])).squeeze(-1)
        return logits, value

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
