"""The player interface and the `kind:key=value,...` spec syntax, for the modules that define players.

A player decides for a batch of games at once: `decide(state, legal, games)` returns the domino each game in
`games` plays (the seat to move in each). Players must use only what that seat may know; the built-in ones read
the legal mask, the trick in progress, the contract, or the seat's observation encoding.

This module imports no player, so every player module can import it; the table of kinds is `players.base.PLAYERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from zeb_core.engine.state import GameState


@dataclass
class Decision:
    moves: torch.Tensor  # [n] domino ids
    policy: torch.Tensor | None = None  # [n, 28] move probabilities over domino ids
    value: torch.Tensor | None = None  # [n] the player's estimate for the seat to move, in [-1, 1]


class Player(Protocol):
    @property
    def name(self) -> str: ...  # read-only: a plain attribute or a property (the store player's follows its step)

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision: ...


class SpecError(ValueError):
    """A player spec that cannot be parsed or built."""


# A factory builds a player from a spec's parameters (it pops the ones it takes), the device and a default seed.
PlayerFactory = Callable[[dict[str, str], torch.device, int], Player]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise SpecError(f"player spec {spec!r}: {part!r} is not key=value")
        params[key.strip()] = value.strip()
    return kind.strip(), params


def pop_param(params: dict[str, str], key: str, cast: Callable, default):
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
