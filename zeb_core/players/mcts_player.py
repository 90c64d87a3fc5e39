"""The `mcts` player: the network's search at play time (`zeb_core.mcts`), the most-visited move.

Spec: `mcts:path=DIR_OR_FILE[,sims=N,worlds=W,nodes=M,c=C,clairvoyant=0|1,target=T,auction=0|1,seed=S]`.
auction=1 weighs the sampled worlds by the declarer's likelihood of its bid and trump (the full game).

The search's terminal (and solved-leaf) values follow `target` (points, points-margin or contract), by default
the objective the weights were trained for (their config's `value_target`): a full-game model plays for its bid.
"""

from __future__ import annotations

import random
from dataclasses import replace

import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import GameState
from zeb_core.mcts import EvaluateFn, Evaluator, SearchConfig, TreeReuse, search_moves, visit_policy
from zeb_core.model.checkpoint import load_model
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown


class MctsPlayer:
    """Search at play time; plays the most-visited move. Forced moves are played without searching."""

    def __init__(self, evaluator: EvaluateFn, config: SearchConfig, seed: int = 0, name: str = "mcts") -> None:
        self.evaluator = evaluator
        self.config = config
        self.rng = random.Random(seed)
        self.name = name
        self.reuse = TreeReuse() if config.clairvoyant and config.reuse_tree else None

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        lg = legal[games]
        moves = lg.float().argmax(1)
        policy = lg.float() / lg.sum(1, keepdim=True).clamp(min=1)
        value = torch.zeros(games.numel(), device=legal.device)
        choice = lg.sum(1) > 1
        if bool(choice.any()):
            idx = choice.nonzero().flatten()
            found = search_moves(state, games[idx], self.evaluator, self.config, self.rng, reuse=self.reuse)
            slots = found.visits.argmax(1)
            hands = state.index(games[idx]).hand_of(state.current[games[idx]])
            moves[idx] = hands.gather(1, slots.view(-1, 1)).squeeze(1)
            probs = visit_policy(found)
            policy[idx] = torch.zeros(idx.numel(), N_DOMINOES, device=legal.device).scatter(1, hands, probs)
            value[idx] = found.value
        return Decision(moves=moves, policy=policy, value=value)


def mcts_from_spec(params: dict[str, str], device: torch.device, seed: int) -> MctsPlayer:
    if "path" not in params:
        raise SpecError("mcts player needs path=DIR_OR_FILE (a checkpoint folder or NAME.safetensors)")
    path = params.pop("path")
    defaults = SearchConfig()
    target = params.pop("target", None)
    try:  # SearchConfig's own checks, target included, before the weights are loaded
        config = SearchConfig(
            simulations=pop_param(params, "sims", int, defaults.simulations),
            worlds=pop_param(params, "worlds", int, defaults.worlds),
            max_nodes=pop_param(params, "nodes", int, max(defaults.max_nodes, 2 * defaults.simulations)),
            c_puct=pop_param(params, "c", float, defaults.c_puct),
            clairvoyant=bool(pop_param(params, "clairvoyant", int, 0)),
            value_target=target or defaults.value_target,
            auction_worlds=bool(pop_param(params, "auction", int, 0)),
        )
    except SpecError:
        raise
    except ValueError as exc:
        raise SpecError(f"mcts: {exc}") from exc
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("mcts", params)
    model, bundle = load_model(path, device)
    config = replace(config, value_target=target or model.config.value_target)
    name = f"mcts(step {bundle.step}, {config.simulations} sims, {config.value_target})"
    return MctsPlayer(Evaluator(model, device), config, seed, name=name)
