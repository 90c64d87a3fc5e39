"""Policy targets of a searched move: the root visit shares, or Gumbel MuZero's improved policy.

Both take a `SearchSummary` (one row per searched position: visits, W, prior and legal slots [n, 7], value [n]) and
give [n, 7] distributions over the legal slots. `SearchConfig.policy_target` picks the one self-play trains on.
"""

from __future__ import annotations

import torch

from zeb_core.mcts.base import SearchSummary
from zeb_core.mcts.config import SearchConfig


def completed_q(found: SearchSummary) -> torch.Tensor:
    """[n, 7] Q(a) = W(a) / N(a) per root slot; a slot never visited takes the root's mean value instead."""
    n = found.visits
    return torch.where(n > 0, found.wsum / n.clamp(min=1), found.value.view(-1, 1).expand_as(n))


def visit_policy(found: SearchSummary) -> torch.Tensor:
    """[n, 7] the root visit shares (the AlphaZero target)."""
    return found.visits / found.visits.sum(1, keepdim=True).clamp(min=1)


def improved_policy(found: SearchSummary, config: SearchConfig) -> torch.Tensor:
    """The policy target softmax(log prior + sigma(completed Q)) over legal slots (Gumbel MuZero's improved policy).

    The completed Q of one move is min-max scaled to [0, 1] over its legal slots (the range is at least
    `config.q_range_floor`, so that tiny differences are not blown up), then sigma(q) = (c_visit + max visits) *
    c_scale * q. Unlike visit counts, this target moves away from the prior even when a few simulations per world
    cannot separate the moves by visits.
    """
    legal = found.legal
    n = found.visits
    q = completed_q(found)
    big = torch.finfo(q.dtype).max
    q_min = torch.where(legal, q, big).amin(1, keepdim=True)
    q_max = torch.where(legal, q, -big).amax(1, keepdim=True)
    q_hat = (q - q_min) / (q_max - q_min).clamp(min=config.q_range_floor)
    sigma = (config.c_visit + n.amax(1, keepdim=True)) * config.c_scale * q_hat
    logits = torch.where(legal, torch.log(found.prior.clamp(min=1e-8)) + sigma, float("-inf"))
    return torch.softmax(logits, dim=1)


def policy_target(found: SearchSummary, config: SearchConfig) -> torch.Tensor:
    """[n, 7] the training target of each searched move, summing to 1 over its legal slots."""
    if config.policy_target == "improved":
        return improved_policy(found, config)
    return visit_policy(found)
