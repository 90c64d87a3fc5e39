"""Determinization: deals of the hidden hands consistent with what the searching seat knows.

A world shares everything public with the real game (plays, tricks, points, whose turn) and differs only in who
holds the unseen dominoes, so a world state is the real state with `owner` and `hands` rewritten. The deal itself
comes from `InfoState.sample_world`, which honours hand sizes and revealed voids exactly: uniform over the deals
consistent with the plays. In the full game the auction tells more (the declarer chose its bid and its trump):
`sample_search_worlds(..., auction=True)` draws `AUCTION_CANDIDATES` times as many uniform worlds and keeps them in
proportion to the declarer's likelihood of its bid (`fullgame.inference`).
"""

from __future__ import annotations

import random

import torch

from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.game.infoset import InfoState

AUCTION_CANDIDATES = 4  # uniform candidates per kept world when the auction weighs them


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
    deals: list[list[list[int]]] = []
    for g in games.tolist():
        info = info_from_state(state, g)
        deals.extend(info.sample_world(rng) for _ in range(worlds))
    return worlds_from_hands(state, games, worlds, deals)


def worlds_from_hands(state: GameState, games: torch.Tensor, worlds: int, deals: list[list[list[int]]]) -> GameState:
    """States for given deals of the hidden dominoes: `deals[k]` is the four seats' current hands of world k,
    `worlds` per game in `games`, game-major. Played dominoes keep their (public) owners."""
    rows = torch.repeat_interleave(games, worlds).to(device=state.device, dtype=torch.int64)
    out = state.index(rows)
    owners = out.owner.tolist()
    for owner, hands in zip(owners, deals, strict=True):
        for s in range(N_SEATS):
            for d in hands[s]:
                owner[d] = s
    owner_t = torch.tensor(owners, dtype=torch.int64, device=state.device)
    out.owner = owner_t
    # hands[b, s] = the dominoes dealt to s, ascending (ids are the sort key, so a stable argsort of owner works).
    order = torch.argsort(owner_t * 32 + torch.arange(28, device=state.device), dim=1)
    out.hands = order.view(-1, N_SEATS, 7)
    return out


def sample_search_worlds(
    state: GameState,
    games: torch.Tensor,
    worlds: int,
    rng: random.Random,
    auction: bool = False,
    candidates: int | None = None,
) -> GameState:
    """`sample_worlds`, or with `auction` worlds weighted by what the auction revealed about the declarer's hand
    (the full game; never the play-phase benchmark, whose bid and trump are random), kept from `candidates` uniform
    ones per game (default AUCTION_CANDIDATES x worlds). The declarer itself knows its hand, so its worlds stay
    uniform (every world would weigh the same)."""
    weigh = (state.current[games] != state.bidder[games]) if auction else torch.zeros_like(games, dtype=torch.bool)
    if not bool(weigh.any()):
        return sample_worlds(state, games, worlds, rng)
    from zeb_core.fullgame.inference import declarer_log_likelihood  # the full game's model of a bidder

    per_game = candidates or AUCTION_CANDIDATES * worlds
    pool = sample_worlds(state, games[weigh], per_game, rng)
    gen = torch.Generator().manual_seed(rng.getrandbits(63))
    keep = resample(declarer_log_likelihood(pool).cpu(), int(weigh.sum()), per_game, worlds, gen)
    weighted = pool.index(keep.to(state.device))
    if bool(weigh.all()):
        return weighted
    out = state.index(games.repeat_interleave(worlds))  # game-major; only owner and hands differ between worlds
    for mask, part in ((weigh, weighted), (~weigh, sample_worlds(state, games[~weigh], worlds, rng))):
        rows = (mask.nonzero().flatten().view(-1, 1) * worlds + torch.arange(worlds).view(1, -1)).flatten()
        out.owner[rows.to(out.owner.device)] = part.owner
        out.hands[rows.to(out.hands.device)] = part.hands
    return out


def resample(log_weights: torch.Tensor, groups: int, per_group: int, keep: int, gen: torch.Generator) -> torch.Tensor:
    """Row indices of `keep` worlds per group, drawn in proportion to the weights within each group.

    log_weights: [groups * per_group] game-major (the layout of `sample_worlds`); systematic resampling, so a
    world of weight w is kept about keep * w times and uniform weights keep an even spread of the candidates.
    """
    lw = log_weights.view(groups, per_group).double()
    w = torch.softmax(lw, dim=1)
    cdf = w.cumsum(1)
    cdf[:, -1] = 1.0
    u = (torch.rand(groups, 1, generator=gen, dtype=torch.float64) + torch.arange(keep).view(1, -1)) / keep
    picks = torch.searchsorted(cdf, u.to(cdf.device)).clamp(max=per_group - 1)
    return (picks + torch.arange(groups, device=picks.device).view(-1, 1) * per_group).flatten()
