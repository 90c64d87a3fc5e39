"""Batched PUCT search over many trees at once, with the trees' arrays in tensors on one device.

T trees (games x worlds) advance in lockstep: each simulation walks every tree from its root to an unexpanded edge
with a few gathers per level, creates the child state with one batched `apply` from the parent's stored state, then
evaluates all new leaves with one network forward (terminal leaves get their exact value instead) and backs the
values up every path with one scatter-add. Statistics live on edges (N, W, P per node and hand slot of the seat to
move there). Leaf values travel from team 0's point of view and are signed for each node's mover on backup, so
W(s, a) is always from the point of view of the seat choosing at s.

Identical observations in one forward (the same information state reached in several worlds) are evaluated once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import torch

from zeb_core.encoding import encode
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, GameState
from zeb_core.mcts.config import SearchConfig
from zeb_core.model.net import ZebNet


class Evaluator:
    """Network priors over hand slots and values for batches of states, deduplicating equal observations."""

    def __init__(self, model: ZebNet, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.states_evaluated = 0
        self.forward_seconds = 0.0

    @torch.inference_mode()
    def __call__(self, states: GameState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(priors [n, 7] over legal slots, value [n] for the seat to move, legal slots [n, 7])."""
        obs, legal = encode(states, trim=True)
        flat = torch.cat([obs.flatten(1).long(), legal.long()], dim=1)
        uniq, inverse = torch.unique(flat, dim=0, return_inverse=True)
        t0 = time.perf_counter()
        if uniq.shape[0] < flat.shape[0]:
            first = torch.zeros(uniq.shape[0], dtype=torch.int64, device=flat.device)
            first.scatter_(0, inverse, torch.arange(flat.shape[0], device=flat.device))
            logits, value = self.model(obs[first], legal[first])
            logits, value = logits[inverse], value[inverse]
        else:
            logits, value = self.model(obs, legal)
        self.forward_seconds += time.perf_counter() - t0
        self.states_evaluated += int(uniq.shape[0])
        return torch.softmax(logits.float(), dim=1), value.float(), legal


def _stack_states(state: GameState, copies: int) -> GameState:
    """A store of `copies` state slots per tree, each initialised to the tree's root (index t * copies + k)."""
    return GameState(**{f.name: getattr(state, f.name).repeat_interleave(copies, dim=0) for f in fields(state)})


def _gather_states(store: GameState, flat: torch.Tensor) -> GameState:
    return GameState(**{f.name: getattr(store, f.name)[flat] for f in fields(store)})


def _scatter_states(store: GameState, flat: torch.Tensor, new: GameState) -> None:
    for f in fields(store):
        getattr(store, f.name)[flat] = getattr(new, f.name)


@dataclass
class SearchResult:
    visits: torch.Tensor  # [T, 7] root visit counts per hand slot of the seat to move
    root_value: torch.Tensor  # [T] mean backed-up value for the seat to move at the root
    legal: torch.Tensor  # [T, 7] legal root slots


def _team0(value: torch.Tensor, mover: torch.Tensor) -> torch.Tensor:
    return torch.where(mover % 2 == 0, value, -value)


def search(
    roots: GameState,
    evaluator: Evaluator,
    config: SearchConfig,
    sims: int,
    root_noise: bool = False,
    gen: torch.Generator | None = None,
) -> SearchResult:
    """Run `sims` simulations in each of the T root states (none may be finished)."""
    device = roots.device
    t_count, n_max = roots.batch_size, config.max_nodes
    trees = torch.arange(t_count, device=device)
    base = trees * n_max
    child = torch.full((t_count * n_max, HAND_SIZE), -1, dtype=torch.int64, device=device)
    prior = torch.zeros(t_count * n_max, HAND_SIZE, device=device)
    visits = torch.zeros(t_count * n_max, HAND_SIZE, device=device)
    wsum = torch.zeros(t_count * n_max, HAND_SIZE, device=device)
    legal = torch.zeros(t_count * n_max, HAND_SIZE, dtype=torch.bool, device=device)
    mover = torch.zeros(t_count * n_max, dtype=torch.int64, device=device)
    terminal = torch.zeros(t_count * n_max, dtype=torch.bool, device=device)
    term_v0 = torch.zeros(t_count * n_max, device=device)
    count = torch.ones(t_count, dtype=torch.int64, device=device)
    store = _stack_states(roots, n_max)

    p_root, _, l_root = evaluator(roots)
    if root_noise and config.dirichlet_fraction > 0:
        conc = torch.full_like(p_root, config.dirichlet_alpha)
        noise = torch._standard_gamma(conc, generator=gen) * l_root
        noise = noise / noise.sum(1, keepdim=True).clamp(min=1e-12)
        p_root = (1 - config.dirichlet_fraction) * p_root + config.dirichlet_fraction * noise
    prior[base] = p_root
    legal[base] = l_root
    mover[base] = roots.current

    for _ in range(sims):
        node = base.clone()
        active = torch.ones(t_count, dtype=torch.bool, device=device)
        path_nodes, path_slots, path_on = [], [], []
        leaf_parent = base.clone()
        leaf_slot = torch.zeros(t_count, dtype=torch.int64, device=device)
        expand = torch.zeros(t_count, dtype=torch.bool, device=device)
        for _depth in range(N_PLAYS):
            n, w, p, lg = visits[node], wsum[node], prior[node], legal[node]
            q = torch.where(n > 0, w / n.clamp(min=1), torch.zeros_like(w))  # W is kept for the node's mover
            u = config.c_puct * p * torch.sqrt(n.sum(1, keepdim=True) + 1) / (1 + n)
            a = torch.where(lg, q + u, torch.full_like(q, float("-inf"))).argmax(1)
            path_nodes.append(node)
            path_slots.append(a)
            path_on.append(active)
            nxt = child[node, a]
            new_leaf = active & (nxt < 0)
            leaf_parent = torch.where(new_leaf, node, leaf_parent)
            leaf_slot = torch.where(new_leaf, a, leaf_slot)
            expand |= new_leaf
            node = torch.where(active & ~new_leaf, nxt, node)
            active = active & ~new_leaf & ~terminal[node]
            if not bool(active.any()):
                break
        # `node` is now either a terminal node (reached) or the parent of a new leaf.
        v0 = torch.where(terminal[node], term_v0[node], torch.zeros_like(term_v0[node]))
        rows = expand.nonzero().flatten()
        if rows.numel():
            parents = _gather_states(store, leaf_parent[rows])
            moves = parents.hand_of(parents.current).gather(1, leaf_slot[rows].view(-1, 1)).squeeze(1)
            parents.apply(moves, check=False)
            done = parents.done()
            leaf_v0 = torch.zeros(rows.numel(), device=device)
            if bool(done.any()):
                leaf_v0[done] = parents.values()[done][:, 0]
            live = (~done).nonzero().flatten()
            leaf_prior = torch.zeros(rows.numel(), HAND_SIZE, device=device)
            leaf_legal = torch.zeros(rows.numel(), HAND_SIZE, dtype=torch.bool, device=device)
            if live.numel():
                sub = parents.index(live)
                pr, val, lgl = evaluator(sub)
                leaf_prior[live], leaf_legal[live] = pr, lgl
                leaf_v0[live] = _team0(val, sub.current)
            v0[rows] = leaf_v0
            # Store the new nodes where the tree has room.
            room = count[rows] < n_max
            if bool(room.any()):
                r = rows[room]
                new_idx = base[r] + count[r]
                count[r] += 1
                child[leaf_parent[r], leaf_slot[r]] = new_idx
                _scatter_states(store, new_idx, parents.index(room.nonzero().flatten()))
                prior[new_idx] = leaf_prior[room]
                legal[new_idx] = leaf_legal[room]
                mover[new_idx] = parents.current[room]
                terminal[new_idx] = done[room]
                term_v0[new_idx] = leaf_v0[room]
        # Back up: every edge on every path gains a visit and the leaf value, signed for its node's mover.
        nodes = torch.stack(path_nodes, 1)
        slots = torch.stack(path_slots, 1)
        on = torch.stack(path_on, 1)
        signed = torch.where(mover[nodes] % 2 == 0, v0.unsqueeze(1), -v0.unsqueeze(1))
        flat_edge = (nodes * HAND_SIZE + slots)[on]
        visits.view(-1).index_put_((flat_edge,), torch.ones_like(signed[on]), accumulate=True)
        wsum.view(-1).index_put_((flat_edge,), signed[on], accumulate=True)

    root_visits = visits[base]
    root_value = wsum[base].sum(1) / root_visits.sum(1).clamp(min=1)
    return SearchResult(visits=root_visits, root_value=root_value, legal=l_root)
