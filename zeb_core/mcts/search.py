"""Batched PUCT search over many trees at once, with the trees' arrays in tensors on one device.

T trees (games x worlds) advance in lockstep: each simulation walks every tree from its root to an unexpanded edge
with a few gathers per level, creates the child state with one batched `apply` from the parent's stored state, then
evaluates all new leaves with one network forward (terminal leaves get their exact value instead) and backs the
values up every path with one scatter-add. Statistics live on edges (N, W, P per node and hand slot of the seat to
move there). Leaf values travel from team 0's point of view and are signed for each node's mover on backup, so
W(s, a) is always from the point of view of the seat choosing at s.

Identical observations in one forward (the same information state reached in several worlds) are evaluated once,
and with `SearchConfig.eval_cache` (default on) an observation evaluated earlier in the same `search` call (in
another world or simulation, or an unstored leaf of a full tree reached again) is taken from an `EvalCache` keyed
by hashes of the observation row, so only misses reach the network. The cache is dropped when `search` returns.

The trees are a `Tree`, returned with the result; a caller may pass trees back in (re-rooted with `Tree.reroot`)
to continue a clairvoyant search after a move (see `mcts.driver.TreeReuse`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import torch

from zeb_core.encoding import OBS_FEATURES, OBS_TOKENS, encode
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, GameState, points_value
from zeb_core.mcts.config import SearchConfig
from zeb_core.model.net import ZebNet


_HASH_SEED = 0x5EB42
_HASH_WEIGHT_BITS = 44  # weights < 2**44, features <= 28, 295 columns: every hash < 2**58, so no int64 overflow


class EvalCache:
    """Network outputs by observation, for one search: sorted 64-bit keys, a second hash to verify, and outputs.

    Keys are two independent random linear hashes of the full (padded) observation row plus its legal mask. A row
    counts as cached only when both match; for two different rows each hash collides with probability at most
    2**-44, so a wrong hit needs both (about 2**-88 per pair). Lookups are one `searchsorted`; inserts re-sort the
    keys (a cache lives for one search, so it stays small: at most the states that search evaluates).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.keys = torch.zeros(0, dtype=torch.int64, device=device)
        self.check = torch.zeros(0, dtype=torch.int64, device=device)
        self.prior = torch.zeros(0, HAND_SIZE, device=device)
        self.value = torch.zeros(0, device=device)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def lookup(self, key: torch.Tensor, check: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hit [n], position [n] of the hit, key taken [n]: the key is present, with the same check or not)."""
        if len(self) == 0:
            none = torch.zeros_like(key, dtype=torch.bool)
            return none, torch.zeros_like(key), none
        pos = torch.searchsorted(self.keys, key).clamp(max=len(self) - 1)
        taken = self.keys[pos] == key
        return taken & (self.check[pos] == check), pos, taken

    def insert(self, key: torch.Tensor, check: torch.Tensor, prior: torch.Tensor, value: torch.Tensor) -> None:
        """Add entries whose keys are distinct and not in the cache yet."""
        keys = torch.cat([self.keys, key])
        order = torch.argsort(keys)
        self.keys = keys[order]
        self.check = torch.cat([self.check, check])[order]
        self.prior = torch.cat([self.prior, prior.to(self.prior.dtype)])[order]
        self.value = torch.cat([self.value, value.to(self.value.dtype)])[order]


class Evaluator:
    """Network priors over hand slots and values for batches of states.

    Equal observations in one call are evaluated once; with an `EvalCache`, observations already evaluated in the
    same search are not evaluated again. `states_evaluated` counts rows that went through the network,
    `cache_lookups` the distinct rows looked up in a cache and `cache_hits` those found there.
    """

    def __init__(self, model: ZebNet, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.states_evaluated = 0
        self.forward_seconds = 0.0
        self.cache_lookups = 0
        self.cache_hits = 0
        gen = torch.Generator().manual_seed(_HASH_SEED)
        weights = torch.randint(0, 2**_HASH_WEIGHT_BITS, (2, OBS_TOKENS * OBS_FEATURES + HAND_SIZE), generator=gen)
        self._hash_weights = weights.to(self.device)

    def _hash(self, obs: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
        """[2, n] int64 hashes per row; padding tokens are zeros, so a row hashes the same trimmed or not."""
        w = self._hash_weights
        width = obs.shape[1] * obs.shape[2]
        flat = torch.cat([obs.flatten(1).long(), legal.long()], dim=1)
        w = torch.cat([w[:, :width], w[:, OBS_TOKENS * OBS_FEATURES :]], dim=1)
        return (flat.unsqueeze(0) * w.unsqueeze(1)).sum(2)

    def _forward(self, obs: torch.Tensor, legal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter()
        logits, value = self.model(obs, legal)
        self.forward_seconds += time.perf_counter() - t0
        self.states_evaluated += int(obs.shape[0])
        return torch.softmax(logits.float(), dim=1), value.float()

    @torch.inference_mode()
    def __call__(
        self, states: GameState, cache: EvalCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(priors [n, 7] over legal slots, value [n] for the seat to move, legal slots [n, 7])."""
        obs, legal = encode(states, trim=True)
        n = obs.shape[0]
        if n == 0:
            return torch.zeros(0, HAND_SIZE, device=obs.device), torch.zeros(0, device=obs.device), legal
        key, check = self._hash(obs, legal)
        uniq, inverse = torch.unique(key, return_inverse=True)
        first = torch.zeros(uniq.shape[0], dtype=torch.int64, device=obs.device)
        first.scatter_(0, inverse, torch.arange(n, device=obs.device))
        if not bool((check == check[first][inverse]).all()):
            # Two different rows share the first hash (about 2**-44 per pair): dedupe exactly and skip the cache.
            flat = torch.cat([obs.flatten(1).long(), legal.long()], dim=1)
            _, inverse = torch.unique(flat, dim=0, return_inverse=True)
            first = torch.zeros(int(inverse.max()) + 1, dtype=torch.int64, device=obs.device)
            first.scatter_(0, inverse, torch.arange(n, device=obs.device))
            prior, value = self._forward(obs[first], legal[first])
            return prior[inverse], value[inverse], legal
        if cache is None:
            prior, value = self._forward(obs[first], legal[first])
            return prior[inverse], value[inverse], legal
        u_key, u_check = key[first], check[first]
        hit, pos, taken = cache.lookup(u_key, u_check)
        self.cache_lookups += int(uniq.shape[0])
        n_hit = int(hit.sum())
        self.cache_hits += n_hit
        prior = torch.zeros(uniq.shape[0], HAND_SIZE, device=obs.device)
        value = torch.zeros(uniq.shape[0], device=obs.device)
        if n_hit:
            prior[hit], value[hit] = cache.prior[pos[hit]], cache.value[pos[hit]]
        miss = (~hit).nonzero().flatten()
        if miss.numel():
            rows = first[miss]
            p_miss, v_miss = self._forward(obs[rows], legal[rows])
            prior[miss], value[miss] = p_miss, v_miss
            new = ~taken[miss]  # a key already there with another check: evaluated, not cached
            cache.insert(u_key[miss][new], u_check[miss][new], p_miss[new], v_miss[new])
        return prior[inverse], value[inverse], legal


def _stack_states(state: GameState, copies: int) -> GameState:
    """A store of `copies` state slots per tree, each initialised to the tree's root (index t * copies + k)."""
    return GameState(**{f.name: getattr(state, f.name).repeat_interleave(copies, dim=0) for f in fields(state)})


def _gather_states(store: GameState, flat: torch.Tensor) -> GameState:
    return GameState(**{f.name: getattr(store, f.name)[flat] for f in fields(store)})


def _scatter_states(store: GameState, flat: torch.Tensor, new: GameState) -> None:
    for f in fields(store):
        getattr(store, f.name)[flat] = getattr(new, f.name)


@dataclass
class Tree:
    """T search trees of `n_max` nodes each, flat: node i of tree t is row t * n_max + i, and row t * n_max is the root.

    Edge statistics (N, W, P) are per node and hand slot of the node's mover; `child` holds flat rows (-1: none);
    `store` the node's game state. Nodes are numbered in creation order, so a parent comes before its children.
    A tree with `count` 0 is empty (search starts it from its root state).
    """

    child: torch.Tensor  # [T * n, 7] int64
    prior: torch.Tensor  # [T * n, 7]
    visits: torch.Tensor  # [T * n, 7]
    wsum: torch.Tensor  # [T * n, 7] W from the point of view of the node's mover
    legal: torch.Tensor  # [T * n, 7] bool
    mover: torch.Tensor  # [T * n] int64
    terminal: torch.Tensor  # [T * n] bool
    term_v0: torch.Tensor  # [T * n] exact value of a terminal node for team 0
    count: torch.Tensor  # [T] int64 nodes in use
    store: GameState  # T * n states
    n_max: int

    @property
    def trees(self) -> int:
        return int(self.count.shape[0])

    @classmethod
    def empty(cls, roots: GameState, n_max: int) -> Tree:
        rows, device = roots.batch_size * n_max, roots.device
        return cls(
            child=torch.full((rows, HAND_SIZE), -1, dtype=torch.int64, device=device),
            prior=torch.zeros(rows, HAND_SIZE, device=device),
            visits=torch.zeros(rows, HAND_SIZE, device=device),
            wsum=torch.zeros(rows, HAND_SIZE, device=device),
            legal=torch.zeros(rows, HAND_SIZE, dtype=torch.bool, device=device),
            mover=torch.zeros(rows, dtype=torch.int64, device=device),
            terminal=torch.zeros(rows, dtype=torch.bool, device=device),
            term_v0=torch.zeros(rows, device=device),
            count=torch.zeros(roots.batch_size, dtype=torch.int64, device=device),
            store=_stack_states(roots, n_max),
            n_max=n_max,
        )

    def select(self, trees: torch.Tensor) -> Tree:
        """The trees `trees` (a copy), in that order."""
        n = self.n_max
        rows = (trees.view(-1, 1) * n + torch.arange(n, device=trees.device)).flatten()
        shift = ((torch.arange(trees.numel(), device=trees.device) - trees) * n).repeat_interleave(n).view(-1, 1)
        child = self.child[rows]
        return Tree(
            child=torch.where(child >= 0, child + shift, child),
            prior=self.prior[rows],
            visits=self.visits[rows],
            wsum=self.wsum[rows],
            legal=self.legal[rows],
            mover=self.mover[rows],
            terminal=self.terminal[rows],
            term_v0=self.term_v0[rows],
            count=self.count[trees],
            store=_gather_states(self.store, rows),
            n_max=n,
        )

    def put(self, trees: torch.Tensor, other: Tree) -> None:
        """Overwrite the trees `trees` with the trees of `other` (same n_max, one per entry of `trees`)."""
        n = self.n_max
        rows = (trees.view(-1, 1) * n + torch.arange(n, device=trees.device)).flatten()
        shift = ((trees - torch.arange(trees.numel(), device=trees.device)) * n).repeat_interleave(n).view(-1, 1)
        self.child[rows] = torch.where(other.child >= 0, other.child + shift, other.child)
        for name in ("prior", "visits", "wsum", "legal", "mover", "terminal", "term_v0"):
            getattr(self, name)[rows] = getattr(other, name)
        self.count[trees] = other.count
        _scatter_states(self.store, rows, other.store)

    def reroot(self, new_root: torch.Tensor) -> Tree:
        """Each tree cut down to the subtree under flat row `new_root[t]` (-1: emptied), renumbered from 0.

        The subtree's statistics are kept as they are, so the new root's edge visits are the ones the node had.
        """
        n, t_count, device = self.n_max, self.trees, self.count.device
        keep = torch.zeros(t_count * n, dtype=torch.bool, device=device)
        valid = new_root >= 0
        keep[new_root[valid]] = True
        total = int(valid.sum())
        while True:  # one level per pass; children always have flat rows inside their parent's tree
            kids = self.child[keep]
            keep[kids[kids >= 0]] = True
            now = int(keep.sum())
            if now == total:
                break
            total = now
        per_tree = keep.view(t_count, n)
        local = per_tree.long().cumsum(1) - 1  # new local index of each kept node
        base = torch.arange(t_count, device=device).view(-1, 1) * n
        new_row = (local + base).flatten()
        out = Tree.empty(_gather_states(self.store, torch.arange(t_count, device=device) * n), n)
        old = keep.nonzero().flatten()
        dst = new_row[old]
        child = self.child[old]
        out.child[dst] = torch.where(child >= 0, new_row[child.clamp(min=0)], child)
        for name in ("prior", "visits", "wsum", "legal", "mover", "terminal", "term_v0"):
            getattr(out, name)[dst] = getattr(self, name)[old]
        out.count = per_tree.sum(1)
        _scatter_states(out.store, dst, _gather_states(self.store, old))
        return out


@dataclass
class SearchResult:
    visits: torch.Tensor  # [T, 7] root visit counts per hand slot of the seat to move
    root_value: torch.Tensor  # [T] mean backed-up value for the seat to move at the root
    legal: torch.Tensor  # [T, 7] legal root slots
    root_wsum: torch.Tensor  # [T, 7] summed backed-up values per root edge, for the seat to move
    root_prior: torch.Tensor  # [T, 7] the network's root prior (without noise)
    tree: Tree | None = None  # the searched trees (root priors without noise), for reuse


def exact_team0_values(states: GameState, target: str) -> torch.Tensor:
    """[n] the exact value for team 0 under best play by both teams (the solver), for `target`."""
    from zeb_core.solver import result_for, solve_points

    if target == "points":
        return torch.as_tensor(result_for(states, 0), dtype=torch.float32)
    pts = torch.as_tensor(solve_points(states), dtype=torch.float32)
    if target == "points-margin":
        return points_value(pts[:, 0] - pts[:, 1], target)
    final = states.clone()  # contract: the bidder's result with the solved final points
    final.team_points = pts.to(final.team_points)
    return final.values()[:, 0].cpu()


def _team0(value: torch.Tensor, mover: torch.Tensor) -> torch.Tensor:
    return torch.where(mover % 2 == 0, value, -value)


def search(
    roots: GameState,
    evaluator: Evaluator,
    config: SearchConfig,
    sims: int,
    root_noise: bool = False,
    gen: torch.Generator | None = None,
    tree: Tree | None = None,
) -> SearchResult:
    """Run `sims` simulations in each of the T root states (none may be finished).

    `tree` (optional, T trees with `config.max_nodes` nodes) continues earlier searches: a non-empty tree t must be
    rooted at `roots[t]`; empty ones start fresh. With `config.eval_cache`, network outputs are cached by
    observation for the duration of this call.
    """
    device = roots.device
    t_count, n_max = roots.batch_size, config.max_nodes
    cache = EvalCache(device) if config.eval_cache else None
    trees = torch.arange(t_count, device=device)
    base = trees * n_max
    if tree is None:
        tree = Tree.empty(roots, n_max)
    elif tree.n_max != n_max or tree.trees != t_count:
        raise ValueError(f"tree has {tree.trees} trees of {tree.n_max} nodes, search needs {t_count} of {n_max}")
    child, prior, visits, wsum = tree.child, tree.prior, tree.visits, tree.wsum
    legal, mover, terminal, term_v0 = tree.legal, tree.mover, tree.terminal, tree.term_v0
    count, store = tree.count, tree.store

    fresh = (count == 0).nonzero().flatten()
    if fresh.numel():
        sub = roots if fresh.numel() == t_count else roots.index(fresh)
        p_fresh, _, l_fresh = evaluator(sub, cache)
        prior[base[fresh]] = p_fresh
        legal[base[fresh]] = l_fresh
        mover[base[fresh]] = sub.current
        _scatter_states(store, base[fresh], sub)
        count[fresh] = 1
    p_clean, l_root = prior[base].clone(), legal[base].clone()
    if root_noise and config.dirichlet_fraction > 0:
        conc = torch.full_like(p_clean, config.dirichlet_alpha)
        noise = torch._standard_gamma(conc, generator=gen) * l_root
        noise = noise / noise.sum(1, keepdim=True).clamp(min=1e-12)
        prior[base] = (1 - config.dirichlet_fraction) * p_clean + config.dirichlet_fraction * noise

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
                leaf_v0[done] = parents.target_values(config.value_target)[done][:, 0]
            solved = ~done & (N_PLAYS - parents.n_plays <= config.solve_plays)
            if bool(solved.any()):
                idx = solved.nonzero().flatten()
                leaf_v0[idx] = exact_team0_values(parents.index(idx), config.value_target).to(device)
                done = done | solved  # an exact value: stored as terminal, never expanded
            live = (~done).nonzero().flatten()
            leaf_prior = torch.zeros(rows.numel(), HAND_SIZE, device=device)
            leaf_legal = torch.zeros(rows.numel(), HAND_SIZE, dtype=torch.bool, device=device)
            if live.numel():
                sub = parents.index(live)
                pr, val, lgl = evaluator(sub, cache)
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

    root_visits, root_wsum = visits[base], wsum[base]  # copies (advanced indexing)
    root_value = root_wsum.sum(1) / root_visits.sum(1).clamp(min=1)
    prior[base] = p_clean
    return SearchResult(
        visits=root_visits, root_value=root_value, legal=l_root, root_wsum=root_wsum, root_prior=p_clean, tree=tree
    )
