"""Built-in players: random, heuristic (spec: Baseline players) and policy (the network's move)."""

from __future__ import annotations

import torch

from zeb_core.engine.dominoes import COUNT, N_DOMINOES, PIP_SUM, tables_on
from zeb_core.engine.state import GameState
from zeb_core.game.encoding import encode
from zeb_core.model.checkpoint import load_model
from zeb_core.model.net import ZebNet
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown

_NEG = -1e9


def _uniform(legal: torch.Tensor) -> torch.Tensor:
    return legal.float() / legal.sum(1, keepdim=True).clamp(min=1)


class RandomPlayer:
    name = "random"

    def __init__(self, device: torch.device, seed: int = 0) -> None:
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        lg = legal[games]
        noise = torch.rand(lg.shape, generator=self.gen, device=lg.device)
        moves = torch.where(lg, noise, torch.full_like(noise, -1.0)).argmax(1)
        return Decision(moves=moves, policy=_uniform(lg))


class HeuristicPlayer:
    """Lead: a called-suit domino first, then the highest pip sum. Follow: fewest count points, then lowest pip sum.

    Ties go to the lowest id, which `argmax` gives us for free (it returns the first maximum).
    """

    name = "heuristic"

    def __init__(self, device: torch.device) -> None:
        pip = torch.as_tensor(PIP_SUM, device=device)
        count = torch.as_tensor(COUNT, device=device)
        self.lead_score = tables_on(device).called.long() * 100 + pip  # [10, 28]
        self.follow_score = -(count * 100 + pip)  # [28]

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        lg = legal[games]
        leading = (state.led_suit[games] < 0).unsqueeze(1)
        score = torch.where(leading, self.lead_score[state.decl[games]], self.follow_score.expand_as(lg))
        moves = torch.where(lg, score, torch.full_like(score, _NEG)).argmax(1)
        return Decision(moves=moves, policy=torch.nn.functional.one_hot(moves, N_DOMINOES).float())


class PolicyPlayer:
    """The network's move for the seat to move: greedy (temp=0) or sampled at a temperature."""

    def __init__(
        self, model: ZebNet, device: torch.device, temperature: float = 0.0, seed: int = 0, name: str = "policy"
    ):
        self.model = model.to(device).eval()
        self.temperature = temperature
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        self.name = name

    @torch.inference_mode()
    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        sub = state.index(games)
        obs, legal_slots = encode(sub, legal=legal[games], trim=True)
        logits, value = self.model(obs, legal_slots)
        if self.temperature > 0:
            probs = torch.softmax(logits / self.temperature, dim=1)
            slots = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
        else:
            probs = torch.softmax(logits, dim=1)
            slots = logits.argmax(1)
        hand = sub.hand_of(sub.current)
        moves = hand.gather(1, slots.view(-1, 1)).squeeze(1)
        policy28 = torch.zeros(len(games), N_DOMINOES, device=probs.device).scatter(1, hand, probs)
        return Decision(moves=moves, policy=policy28, value=value)


def random_from_spec(params: dict[str, str], device: torch.device, seed: int) -> RandomPlayer:
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("random", params)
    return RandomPlayer(device, seed)


def heuristic_from_spec(params: dict[str, str], device: torch.device, seed: int) -> HeuristicPlayer:
    reject_unknown("heuristic", params)
    return HeuristicPlayer(device)


def policy_from_spec(params: dict[str, str], device: torch.device, seed: int) -> PolicyPlayer:
    if "path" not in params:
        raise SpecError("policy player needs path=DIR_OR_FILE (a checkpoint folder or NAME.safetensors)")
    path = params.pop("path")
    temp = pop_param(params, "temp", float, 0.0)
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("policy", params)
    if temp < 0:
        raise SpecError(f"temp={temp} must be >= 0")
    model, bundle = load_model(path, device)
    return PolicyPlayer(model, device, temp, seed, name=f"policy(step {bundle.step})")
