"""Determinization: deals of the hidden hands consistent with what the searching seat knows.

A world shares everything public with the real game (plays, tricks, points, whose turn) and differs only in who
holds the unseen dominoes, so a world state is the real state with `owner` and `hands` rewritten. The deal itself
comes from `InfoState.sample_world`, which honours hand sizes and revealed voids exactly.
"""

from __future__ import annotations

import random

import torch

from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.infoset import InfoState


def info_from_state(state: GameState, g: int) -> InfoState:
    """What the seat to move in game `g` knows, built from the engine's (trusted) state."""
    seat = int(state.current[g])
    n = int(state.n_plays[g])
    held = ((state.owner[g] == seat) & ~state.played[g]).nonzero().flatten().tolist()
    plays = list(zip(state.history_seat[g, :n].tolist(), state.history[g, :n].tolist()))
    info = InfoState(
        seat=seat,
        hand=held,
        decl=int(state.decl[g]),
        bidder=int(state.bidder[g]),
        bid=int(state.bid[g]),
        leader=int(state.leader[g]),
        plays=plays,
    )
    info._validate()
    return info


def sample_worlds(state: GameState, games: torch.Tensor, worlds: int, rng: random.Random) -> GameState:
    """States for `worlds` sampled deals of each game in `games`, game-major ([g0w0, g0w1, ..., g1w0, ...])."""
    games_list = games.tolist()
    rows = torch.tensor([g for g in games_list for _ in range(worlds)], dtype=torch.int64, device=state.device)
    out = state.index(rows)
    owners = []
    for g in games_list:
        info = info_from_state(state, g)
        played_by = {d: s for s, d in info.plays}
        for _ in range(worlds):
            current = info.sample_world(rng)
            owner = [0] * 28
            for s in range(N_SEATS):
                for d in current[s]:
                    owner[d] = s
            for d, s in played_by.items():
                owner[d] = s
            owners.append(owner)
    owner_t = torch.tensor(owners, dtype=torch.int64, device=state.device)
    out.owner = owner_t
    # hands[b, s] = the dominoes dealt to s, ascending (ids are the sort key, so a stable argsort of owner works).
    order = torch.argsort(owner_t * 32 + torch.arange(28, device=state.device), dim=1)
    out.hands = order.view(-1, N_SEATS, 7)
    return out
