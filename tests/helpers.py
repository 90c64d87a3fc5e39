"""Plain helpers shared by several test files (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.formats.examples import encode_examples


def example_bytes(
    n: int, seed: int, worker: str = "w1", step: int = 0, games: int | None = None, value_target: str = "points"
) -> tuple[bytes, dict]:
    """A valid example file of `n` synthetic examples (their content does not matter to the learner's books);
    `games` defaults to n // 10 + 1."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, 4, (n, 36, 8), generator=g).to(torch.int8)
    legal = torch.rand(n, 7, generator=g) < 0.6
    legal[:, 0] = True
    policy = torch.rand(n, 7, generator=g) * legal
    policy = policy / policy.sum(1, keepdim=True)
    value = torch.rand(n, generator=g) * 2 - 1
    return encode_examples(
        obs,
        legal,
        policy,
        value,
        model_step=step,
        worker_id=worker,
        games=games if games is not None else n // 10 + 1,
        value_target=value_target,
    )


def cli_env(tmp_path: Path, tag: str) -> dict[str, str]:
    """The environment for a `zeb` subprocess: its own Prefect home under tmp_path, W&B off, wide output."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / f"prefect-{tag}"),
        WANDB_MODE="disabled",
        WANDB_DIR=str(tmp_path),
        COLUMNS="500",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def play_out_checking_legality(state, player) -> int:
    """Plays every game of `state` to the end with `player` in all seats, asserting each move is legal; returns how
    many of its decisions had a choice (more than one legal domino)."""
    searched = 0
    while not bool(state.done().all()):
        legal = state.legal_mask()
        games = torch.arange(state.batch_size)[~state.done()]
        moves = player.decide(state, legal, games).moves
        assert bool(legal[games, moves].all())
        searched += int((legal[games].sum(1) > 1).sum())
        full = torch.full((state.batch_size,), -1, dtype=torch.int64)
        full[games] = moves
        state.apply(full, check=True)
    return searched


def random_plays(state, plays: int, gen: torch.Generator) -> None:
    """Plays `plays` uniformly random legal dominoes in every game of `state` (in place, each move checked)."""
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1), check=True)


def tied_hands(seed: int = 0, hands: int = 4096) -> list[tuple[GameState, list[int]]]:
    """Real hands that end 21-21 in points (about one in 500): benchmark deals played out by random legal moves,
    each checked by the engine. Returns each tied hand's deal (before any play) and its 28 plays."""
    gen = make_generator(seed)
    deal = deal_benchmark(hands, gen)
    state = deal.clone()
    random_plays(state, 28, gen)
    assert bool(state.done().all())
    tied = (state.team_points == 21).all(1).nonzero().flatten().tolist()
    return [(deal.index(torch.tensor([g])), state.history[g].tolist()) for g in tied]


def every_ending(position: GameState) -> tuple[GameState, int]:
    """Every legal way to finish the one hand of `position` (one game per way, each move checked by the engine),
    and how many of the positions on the way had a choice (more than one legal domino)."""
    choices = 0
    while not bool(position.done().all()):
        legal = position.legal_mask()
        choices += int((legal.sum(1) > 1).sum())
        game, domino = legal.nonzero().unbind(1)
        position = position.index(game)
        position.apply(domino, check=True)
    return position, choices
