"""Batched PUCT search over many trees at once: `search` runs `simulate`, `expand` and `backup` in lockstep.

T trees (games x worlds) advance together. Each simulation walks every tree from its root to an edge without a
child (`simulate`: a few gathers per level), creates the child states with one batched `apply` from the parents'
stored states and values them (`expand`: one evaluator call for all new leaves; finished and short-enough hands
get exact values, see `mcts.leaves`), then backs the values up every path with one scatter-add (`backup`). Leaf
values travel from team 0's point of view and are signed for each node's mover on backup, so W(s, a) is always
from the point of view of the seat choosing at s.

`search` takes any `EvaluateFn` (`mcts.base`); the network's is `mcts.evaluator.Evaluator`, which with
`SearchConfig.eval_cache` caches its outputs for the length of one search. The trees are a `Tree`
(`mcts.tree`), returned with the summary; a caller may pass trees back in (re-rooted with `Tree.reroot`) to
continue a clairvoyant search after a move (see `mcts.reuse.TreeReuse`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zeb_core.engine.state import HAND_SIZE, N_PLAYS, GameState
from zeb_core.mcts.base import CachingEvaluateFn, EvaluateFn, SearchSummary
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.leaves import leaf_values
from zeb_core.mcts.noise import dirichlet_noise
from zeb_core.mcts.tree import NO_CHILD, Tree, gather_states, scatter_states


@dataclass
class Path:
    """Where one simulation went in each of T trees; D is the depth of this simulation's longest walk."""

    nodes: torch.Tensor  # [T, D] flat rows of the nodes chosen at, root first (padded after a walk ends)
    slots: torch.Tensor  # [T, D] the hand slot chosen at each
    on: torch.Tensor  # [T, D] bool: edge d belongs to tree t's walk
    end: torch.Tensor  # [T] the last node reached: a terminal node, or the parent of the new leaf
    leaf_slot: torch.Tensor  # [T] the slot of `end` whose edge had no child (meaningful where `expands`)
    expands: torch.Tensor  # [T] bool: the walk ended on an edge without a child (else at a terminal node)


def puct_slots(tree: Tree, node: torch.Tensor, c_puct: float) -> torch.Tensor:
    """[T] the legal slot maximising Q + U at flat rows `node` [T] (Q 0 for an unvisited edge)."""
    n, w, p, lg = tree.visits[node], tree.wsum[node], tree.prior[node], tree.legal[node]
    q = torch.where(n > 0, w / n.clamp(min=1), torch.zeros_like(w))  # W is kept for the node's mover
    u = c_puct * p * torch.sqrt(n.sum(1, keepdim=True) + 1) / (1 + n)
    return torch.where(lg, q + u, torch.full_like(q, float("-inf"))).argmax(1)


def simulate(tree: Tree, c_puct: float) -> Path:
    """Walk each of the T trees of `tree` by PUCT from its root to an edge without a child or a terminal node.

    `c_puct` weighs the prior against Q. Returns the T walks (`Path`: [T, D] nodes, slots and on-path flags,
    [T] end nodes, leaf slots and whether each walk expands). Nothing in `tree` changes.
    """
    t_count, device = tree.trees, tree.count.device
    node = tree.root_rows
    active = torch.ones(t_count, dtype=torch.bool, device=device)
    leaf_slot = torch.zeros(t_count, dtype=torch.int64, device=device)
    expands = torch.zeros(t_count, dtype=torch.bool, device=device)
    nodes, slots, on = [], [], []
    for _depth in range(N_PLAYS):
        a = puct_slots(tree, node, c_puct)
        nodes.append(node)
        slots.append(a)
        on.append(active)
        nxt = tree.child[node, a]
        new_leaf = active & (nxt == NO_CHILD)
        leaf_slot = torch.where(new_leaf, a, leaf_slot)
        expands |= new_leaf
        node = torch.where(active & ~new_leaf, nxt, node)
        active = active & ~new_leaf & ~tree.terminal[node]
        if not bool(active.any()):
            break
    return Path(torch.stack(nodes, 1), torch.stack(slots, 1), torch.stack(on, 1), node, leaf_slot, expands)


def expand(tree: Tree, path: Path, evaluate: EvaluateFn, config: SearchConfig) -> torch.Tensor:
    """[T] the value for team 0 that each of the T walks of `path` backs up; stores new leaves where there is room.

    `tree` holds T trees and `path` one walk per tree (from `simulate`). A walk that ended at a terminal node takes
    that node's exact value; one that ended on an edge without a child creates the child's state (one batched
    `apply` over all such walks) and takes its leaf value (`mcts.leaves.leaf_values`, one `evaluate` call for all).
    """
    end = path.end
    v0 = torch.where(tree.terminal[end], tree.term_v0[end], torch.zeros_like(tree.term_v0[end]))
    rows = path.expands.nonzero().flatten()
    if rows.numel():
        parents, slots = end[rows], path.leaf_slot[rows]
        leaves = gather_states(tree.store, parents)
        leaves.apply(leaves.hand_of(leaves.current).gather(1, slots.view(-1, 1)).squeeze(1), check=False)
        found = leaf_values(leaves, evaluate, config)
        v0[rows] = found.v0
        tree.add_nodes(rows, parents, slots, leaves, found.prior, found.legal, found.exact, found.v0)
    return v0


def backup(tree: Tree, path: Path, v0: torch.Tensor) -> None:
    """Every edge on the T walks of `path` gains a visit and its walk's value `v0` [T] (team 0), signed for its mover.

    One scatter-add into `tree.visits` and `tree.wsum` ([T * n, 7]) for all edges of all walks.
    """
    signed = torch.where(tree.mover[path.nodes] % 2 == 0, v0.unsqueeze(1), -v0.unsqueeze(1))
    flat_edge = (path.nodes * HAND_SIZE + path.slots)[path.on]
    tree.visits.view(-1).index_put_((flat_edge,), torch.ones_like(signed[path.on]), accumulate=True)
    tree.wsum.view(-1).index_put_((flat_edge,), signed[path.on], accumulate=True)


def _start_roots(tree: Tree, roots: GameState, evaluate: EvaluateFn) -> None:
    """Evaluate and store the root of every empty tree."""
    fresh = (tree.count == 0).nonzero().flatten()
    if not fresh.numel():
        return
    base = tree.root_rows[fresh]
    sub = roots if fresh.numel() == roots.batch_size else roots.index(fresh)
    prior, _, legal = evaluate(sub)
    tree.prior[base] = prior
    tree.legal[base] = legal
    tree.mover[base] = sub.current
    scatter_states(tree.store, base, sub)
    tree.count[fresh] = 1


def search(
    roots: GameState,
    evaluate_fn: EvaluateFn,
    config: SearchConfig,
    sims: int | None = None,
    root_noise: bool = False,
    gen: torch.Generator | None = None,
    tree: Tree | None = None,
) -> SearchSummary:
    """Run `sims` simulations (default `config.sims_per_tree`) in each of the T root states (none finished).

    `evaluate_fn` values batches of states (`mcts.base.EvaluateFn`); one that offers `for_search` is asked for a
    per-search evaluator (with `config.eval_cache`, a cache dropped when this call returns). With `root_noise`,
    Dirichlet noise from `gen` is mixed into the root priors for the walk (the summary's prior is without it).
    `tree` (optional, T trees with `config.max_nodes` nodes) continues earlier searches: a non-empty tree t must be
    rooted at `roots[t]`; empty ones start fresh.
    """
    t_count, n_max = roots.batch_size, config.max_nodes
    sims = config.sims_per_tree if sims is None else sims
    if isinstance(evaluate_fn, CachingEvaluateFn):
        evaluate_fn = evaluate_fn.for_search(config.eval_cache)
    if tree is None:
        tree = Tree.empty(roots, n_max)
    elif tree.n_max != n_max or tree.trees != t_count:
        raise ValueError(f"tree has {tree.trees} trees of {tree.n_max} nodes, search needs {t_count} of {n_max}")
    _start_roots(tree, roots, evaluate_fn)
    base = tree.root_rows
    p_clean, l_root = tree.prior[base].clone(), tree.legal[base].clone()
    if root_noise and config.dirichlet_fraction > 0:
        noise = dirichlet_noise(config.dirichlet_alpha, l_root, gen)
        tree.prior[base] = (1 - config.dirichlet_fraction) * p_clean + config.dirichlet_fraction * noise

    for _ in range(sims):
        path = simulate(tree, config.c_puct)
        backup(tree, path, expand(tree, path, evaluate_fn, config))

    root_visits, root_wsum = tree.visits[base], tree.wsum[base]  # copies (advanced indexing)
    root_value = root_wsum.sum(1) / root_visits.sum(1).clamp(min=1)
    tree.prior[base] = p_clean
    return SearchSummary(visits=root_visits, value=root_value, legal=l_root, wsum=root_wsum, prior=p_clean, tree=tree)
