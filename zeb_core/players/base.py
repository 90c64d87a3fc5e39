"""The player kinds a spec may name, as one explicit table, and `make_player`, which builds a player from a spec.

A spec is `kind` or `kind:key=value,...` (`interface.parse_spec`); `PLAYERS` maps each kind to its factory and
the one line `zeb players` prints for it. A new kind is a new row here: nothing registers itself on import.
The player interface (`Player`, `Decision`, `SpecError`, `parse_spec`) is `players.interface`, re-exported here
for the modules that take players.
"""

from __future__ import annotations

import torch

from zeb_core.players.builtin import heuristic_from_spec, policy_from_spec, random_from_spec
from zeb_core.players.interface import Decision, Player, PlayerFactory, SpecError, parse_spec, pop_param, reject_unknown
from zeb_core.players.mcts_player import mcts_from_spec
from zeb_core.players.pimc import pimc_from_spec
from zeb_core.players.rollout import rollout_from_spec
from zeb_core.players.store_player import store_from_spec

__all__ = [
    "PLAYERS", "Decision", "Player", "PlayerFactory", "SpecError", "known_players", "make_player", "parse_spec",
    "pop_param", "reject_unknown",
]  # fmt: skip

PLAYERS: dict[str, tuple[PlayerFactory, str]] = {
    "random": (random_from_spec, "a uniformly random legal domino"),
    "heuristic": (heuristic_from_spec, "the spec's baseline: lead trumps/high, follow cheap"),
    "policy": (policy_from_spec, "policy:path=DIR_OR_FILE[,temp=T] the network's move (greedy by default)"),
    "mcts": (
        mcts_from_spec,
        "mcts:path=DIR_OR_FILE[,sims=N,worlds=W,nodes=M,c=C,clairvoyant=0|1,target=T,auction=0|1] search at play time",
    ),
    "pimc": (
        pimc_from_spec,
        "pimc:worlds=N[,seed=S,objective=win|points|contract,tiebreak=points|heuristic|first,infer=W,candidates=K,"
        "prior=W,k=K,tie=T,auction=0|1] exact solver over sampled deals (infer: weighted by a play model's likelihood "
        "of the partner's plays; prior: a network's Q head counted as K more worlds; auction: by the declarer's bid)",
    ),
    "rollout": (
        rollout_from_spec,
        "rollout:path=DIR_OR_FILE[,worlds=W,solve_plays=P,objective=win|contract,mix=M,infer=partner|others,"
        "candidates=K,sharpen=X] the network's policy played out over sampled deals (infer: weighted by its "
        "likelihood of those seats' plays), the solver finishing the last P plays; the move with the best mean result",
    ),
    "store": (
        store_from_spec,
        "store:url=URL[,name=model,which=latest|best,temp=T,refresh=S] a store's weights, kept current",
    ),
}


def make_player(spec: str, device: torch.device | str = "cpu", seed: int = 0) -> Player:
    """Build a player from a spec such as `random`, `heuristic` or `policy:path=runs/x/model,temp=0.5`."""
    kind, params = parse_spec(spec)
    if kind not in PLAYERS:
        raise SpecError(f"unknown player {kind!r} in {spec!r}; known: {', '.join(sorted(PLAYERS))}")
    factory, _ = PLAYERS[kind]
    try:
        return factory(params, torch.device(device), seed)
    except SpecError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise SpecError(f"player spec {spec!r}: {exc}") from None


def known_players() -> dict[str, str]:
    """Each kind and its one-line help."""
    return {kind: help_text for kind, (_, help_text) in PLAYERS.items()}
