"""Batched, imperfect-information PUCT search over trees in tensors, guided by any evaluator (ZebNet's by default).

Layout: `tree` (the trees and their sentinels), `search` (`search` = `simulate` / `expand` / `backup`), `leaves`
(terminal, exact-solver and evaluated leaf values), `base` (the evaluator interface and `SearchSummary`),
`evaluator` (the network evaluator and its per-search cache), `policy_targets` (visit shares, improved policy),
`noise` (seeded Dirichlet root noise), `worlds` (sampled deals), `driver` (`search_moves`: worlds per game) and
`reuse` (clairvoyant subtree reuse). Players that search live in `zeb_core.players.mcts_player`; nothing here
imports `zeb_core.players`.
"""

from zeb_core.mcts.base import EvaluateFn, Evaluation, SearchSummary
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.driver import search_moves
from zeb_core.mcts.evaluator import EvalCache, Evaluator
from zeb_core.mcts.policy_targets import improved_policy, policy_target, visit_policy
from zeb_core.mcts.reuse import TreeReuse
from zeb_core.mcts.search import backup, expand, search, simulate
from zeb_core.mcts.tree import Tree

__all__ = [
    "EvalCache", "EvaluateFn", "Evaluation", "Evaluator", "SearchConfig", "SearchSummary", "Tree", "TreeReuse",
    "backup", "expand", "improved_policy", "policy_target", "search", "search_moves", "simulate", "visit_policy",
]  # fmt: skip
