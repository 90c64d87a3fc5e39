"""The search trees: T trees of `n_max` nodes each, their arrays flat in tensors on one device.

Node i of tree t is flat row `t * n_max + i`; the root is local node `ROOT` (row `t * n_max`). Nodes are numbered
in creation order, so a parent always comes before its children. Statistics live on edges, per node and hand slot
of the seat to move there (the node's `mover`): N (`visits`), W (`wsum`, from the mover's point of view) and P
(`prior`). `child[row, slot]` is the flat row of the child an edge leads to, or `NO_CHILD` while the edge has none
(never expanded, or expanded when the tree was full: then its leaf is evaluated again whenever it is reached).
`store` holds every node's game state, so expanding an edge is one batched `apply` on the parents' states.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from zeb_core.engine.state import HAND_SIZE, GameState

ROOT = 0  # local index of every tree's root
NO_CHILD = -1  # `child` of an edge that leads to no stored node
NO_NODE = -1  # a flat row that names no node (for `reroot`: empty that tree)

_EDGE_FIELDS = ("prior", "visits", "wsum", "legal", "mover", "terminal", "term_v0")


def stack_states(state: GameState, copies: int) -> GameState:
    """A store of `copies` state slots per tree, each initialised to the tree's root (index t * copies + k)."""
    return GameState(**{f.name: getattr(state, f.name).repeat_interleave(copies, dim=0) for f in fields(state)})


def gather_states(store: GameState, flat: torch.Tensor) -> GameState:
    """The states at flat rows `flat` [m] (a copy)."""
    return GameState(**{f.name: getattr(store, f.name)[flat] for f in fields(store)})


def scatter_states(store: GameState, flat: torch.Tensor, new: GameState) -> None:
    """Write the m states of `new` into flat rows `flat` [m] of `store`."""
    for f in fields(store):
        getattr(store, f.name)[flat] = getattr(new, f.name)


@dataclass
class Tree:
    """T search trees of `n_max` nodes each (see the module docstring). A tree with `count` 0 is empty."""

    child: torch.Tensor  # [T * n, 7] int64 flat row of each edge's child, or NO_CHILD
    prior: torch.Tensor  # [T * n, 7] P of each edge (the evaluator's prior over the mover's hand slots)
    visits: torch.Tensor  # [T * n, 7] N
    wsum: torch.Tensor  # [T * n, 7] W from the point of view of the node's mover
    legal: torch.Tensor  # [T * n, 7] bool
    mover: torch.Tensor  # [T * n] int64 seat to move at the node
    terminal: torch.Tensor  # [T * n] bool: the node has an exact value (hand over, or solved) and no edges
    term_v0: torch.Tensor  # [T * n] that exact value, for team 0
    count: torch.Tensor  # [T] int64 nodes in use
    store: GameState  # T * n states
    n_max: int

    @property
    def trees(self) -> int:
        return int(self.count.shape[0])

    @property
    def root_rows(self) -> torch.Tensor:
        """[T] flat row of each tree's root."""
        return torch.arange(self.trees, device=self.count.device) * self.n_max + ROOT

    @classmethod
    def empty(cls, roots: GameState, n_max: int) -> Tree:
        """One empty tree per state of `roots` (every state slot initialised to its tree's root state)."""
        rows, device = roots.batch_size * n_max, roots.device
        return cls(
            child=torch.full((rows, HAND_SIZE), NO_CHILD, dtype=torch.int64, device=device),
            prior=torch.zeros(rows, HAND_SIZE, device=device),
            visits=torch.zeros(rows, HAND_SIZE, device=device),
            wsum=torch.zeros(rows, HAND_SIZE, device=device),
            legal=torch.zeros(rows, HAND_SIZE, dtype=torch.bool, device=device),
            mover=torch.zeros(rows, dtype=torch.int64, device=device),
            terminal=torch.zeros(rows, dtype=torch.bool, device=device),
            term_v0=torch.zeros(rows, device=device),
            count=torch.zeros(roots.batch_size, dtype=torch.int64, device=device),
            store=stack_states(roots, n_max),
            n_max=n_max,
        )

    def add_nodes(
        self,
        trees: torch.Tensor,
        parents: torch.Tensor,
        slots: torch.Tensor,
        states: GameState,
        prior: torch.Tensor,
        legal: torch.Tensor,
        terminal: torch.Tensor,
        term_v0: torch.Tensor,
    ) -> None:
        """Store m new nodes, the children of edges (`parents` [m] flat rows, `slots` [m]) of distinct `trees` [m].

        `states` holds the m child states, `prior` [m, 7] and `legal` [m, 7] their evaluations, `terminal` [m]
        whether each has an exact value and `term_v0` [m] that value for team 0. A child whose tree is full is
        not stored: its edge keeps NO_CHILD.
        """
        room = self.count[trees] < self.n_max
        if not bool(room.any()):
            return
        r = trees[room]
        new_idx = r * self.n_max + self.count[r]
        self.count[r] += 1
        self.child[parents[room], slots[room]] = new_idx
        scatter_states(self.store, new_idx, states.index(room.nonzero().flatten()))
        self.prior[new_idx] = prior[room]
        self.legal[new_idx] = legal[room]
        self.mover[new_idx] = states.current[room]
        self.terminal[new_idx] = terminal[room]
        self.term_v0[new_idx] = term_v0[room]

    def select(self, trees: torch.Tensor) -> Tree:
        """The trees `trees` (a copy), in that order."""
        n = self.n_max
        rows = (trees.view(-1, 1) * n + torch.arange(n, device=trees.device)).flatten()
        shift = ((torch.arange(trees.numel(), device=trees.device) - trees) * n).repeat_interleave(n).view(-1, 1)
        child = self.child[rows]
        return Tree(
            child=torch.where(child != NO_CHILD, child + shift, child),
            prior=self.prior[rows],
            visits=self.visits[rows],
            wsum=self.wsum[rows],
            legal=self.legal[rows],
            mover=self.mover[rows],
            terminal=self.terminal[rows],
            term_v0=self.term_v0[rows],
            count=self.count[trees],
            store=gather_states(self.store, rows),
            n_max=n,
        )

    def put(self, trees: torch.Tensor, other: Tree) -> None:
        """Overwrite the trees `trees` with the trees of `other` (same n_max, one per entry of `trees`)."""
        n = self.n_max
        rows = (trees.view(-1, 1) * n + torch.arange(n, device=trees.device)).flatten()
        shift = ((trees - torch.arange(trees.numel(), device=trees.device)) * n).repeat_interleave(n).view(-1, 1)
        self.child[rows] = torch.where(other.child != NO_CHILD, other.child + shift, other.child)
        for name in _EDGE_FIELDS:
            getattr(self, name)[rows] = getattr(other, name)
        self.count[trees] = other.count
        scatter_states(self.store, rows, other.store)

    def reroot(self, new_root: torch.Tensor) -> Tree:
        """Each tree cut down to the subtree under flat row `new_root[t]` (NO_NODE: emptied), renumbered from 0.

        The subtree's statistics are kept as they are, so the new root's edge visits are the ones the node had.
        """
        n, t_count, device = self.n_max, self.trees, self.count.device
        keep = torch.zeros(t_count * n, dtype=torch.bool, device=device)
        valid = new_root != NO_NODE
        keep[new_root[valid]] = True
        total = int(valid.sum())
        while True:  # one level per pass; children always have flat rows inside their parent's tree
            kids = self.child[keep]
            keep[kids[kids != NO_CHILD]] = True
            now = int(keep.sum())
            if now == total:
                break
            total = now
        per_tree = keep.view(t_count, n)
        local = per_tree.long().cumsum(1) - 1  # new local index of each kept node
        base = torch.arange(t_count, device=device).view(-1, 1) * n
        new_row = (local + base).flatten()
        out = Tree.empty(gather_states(self.store, self.root_rows), n)
        old = keep.nonzero().flatten()
        dst = new_row[old]
        child = self.child[old]
        out.child[dst] = torch.where(child != NO_CHILD, new_row[child.clamp(min=0)], child)
        for name in _EDGE_FIELDS:
            getattr(out, name)[dst] = getattr(self, name)[old]
        out.count = per_tree.sum(1)
        scatter_states(out.store, dst, gather_states(self.store, old))
        return out
