"""The player interface and the `kind:key=value,...` spec registry.

A player decides for a batch of games at once: `decide(state, legal, games)` returns the domino each game in
`games` plays (the seat to move in each). Players must use only what that seat may know; the built-in ones read
the legal mask, the trick in progress, the contract, or the seat's observation encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from zeb_core.engine.state import GameState


@dataclass
class Decision:
    moves: torch.Tensor  # [n] domino ids
    policy: torch.Tensor | None = None  # [n, 28] move probabilities over domino ids
    value: torch.Tensor | None = None  # [n] the player's estimate for the seat to move, in [-1, 1]


class Player(Protocol):
    name: str

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision: ...


class SpecError(ValueError):
    """A player spec that cannot be parsed or built."""


PlayerFactory = Callable[[dict[str, str], torch.device, int], Player]
_REGISTRY: dict[str, PlayerFactory] = {}
_HELP: dict[str, str] = {}


def register(kind: str, help_text: str) -> Callable[[PlayerFactory], PlayerFactory]:
    def wrap(factory: PlayerFactory) -> PlayerFactory:
        _REGISTRY[kind] = factory
        _HELP[kind] = help_text
        return factory

    return wrap


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise SpecError(f"player spec {spec!r}: {part!r} is not key=value")
        params[key.strip()] = value.strip()
    return kind.strip(), params


def make_player(spec: str, device: torch.device | str = "cpu", seed: int = 0) -> Player:
    """Build a player from a spec such as `random`, `heuristic` or `policy:path=runs/x/model,temp=0.5`."""
    from zeb_core.players import builtin, pimc, store_player  # noqa: F401  (registers the built-in kinds)

    kind, params = parse_spec(spec)
    if kind not in _REGISTRY:
        raise SpecError(f"unknown player {kind!r} in {spec!r}; known: {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[kind](params, torch.device(device), seed)
    except SpecError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise SpecError(f"player spec {spec!r}: {exc}") from None


def known_players() -> dict[str, str]:
    from zeb_core.players import builtin, pimc, store_player  # noqa: F401

    return dict(_HELP)


def pop_param(params: dict[str, str], key: str, cast: Callable, default):  # noqa: ANN001, ANN201
    if key not in params:
        return default
    raw = params.pop(key)
    try:
        return cast(raw)
    except ValueError:
        raise SpecError(f"{key}={raw!r} is not a valid {cast.__name__}") from None


def reject_unknown(kind: str, params: dict[str, str]) -> None:
    if params:
        raise SpecError(f"{kind} player does not take {', '.join(sorted(params))}")
