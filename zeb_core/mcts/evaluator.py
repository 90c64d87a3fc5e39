"""The network evaluator of the search and its per-search cache.

`Evaluator` turns batches of states into priors over hand slots and values with one ZebNet forward. Identical
observations in one call (the same information state reached in several worlds) are evaluated once, and with an
`EvalCache` (one per search: `Evaluator.for_search`, used when `SearchConfig.eval_cache` is on) an observation
evaluated earlier in the same search (in another world or simulation, or an unstored leaf of a full tree reached
again) is taken from the cache, keyed by hashes of the observation row, so only misses reach the network.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from zeb_core.engine.state import HAND_SIZE, GameState
from zeb_core.game.encoding import OBS_FEATURES, OBS_TOKENS, encode
from zeb_core.mcts.base import EvaluateFn, Evaluation
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

    def for_search(self, cache: bool) -> EvaluateFn:
        """The evaluator one search calls: with `cache`, bound to a fresh `EvalCache` dropped with the search."""
        return partial(self, cache=EvalCache(self.device)) if cache else self

    @torch.inference_mode()
    def __call__(self, states: GameState, cache: EvalCache | None = None) -> Evaluation:
        """(priors [n, 7] over legal slots, value [n] for the seat to move, legal slots [n, 7]) of n states."""
        obs, legal = encode(states, trim=True)
        n = obs.shape[0]
        if n == 0:
            return Evaluation(torch.zeros(0, HAND_SIZE, device=obs.device), torch.zeros(0, device=obs.device), legal)
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
            return Evaluation(prior[inverse], value[inverse], legal)
        if cache is None:
            prior, value = self._forward(obs[first], legal[first])
            return Evaluation(prior[inverse], value[inverse], legal)
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
        return Evaluation(prior[inverse], value[inverse], legal)
