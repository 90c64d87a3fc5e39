"""Which sampled worlds the plays so far make likely: a play model's likelihood of the seats' past plays.

Uniform worlds (`mcts.worlds.sample_worlds`) are nearly right when the other seats play at random (only how many
legal dominoes a seat had makes its play more or less likely, and weighing that changes nothing measurable:
bench/partner_inference.py), but a partner who plays well signals its hand: a partner that did not cover a trick
with the 6-6 probably does not hold it. For each world we replay the hand from its deal and score every past play
of the chosen seats with a play model (the policy network), so a world's weight is the product of those
probabilities: the posterior over deals under the assumption that those seats play like the model.
`mcts.worlds.resample` then keeps worlds in proportion to their weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import torch

from zeb_core.engine.state import GameState
from zeb_core.game.encoding import encode
from zeb_core.mcts.worlds import resample, sample_worlds
from zeb_core.model.net import ZebNet

INFER_SEATS = ("partner", "others")  # whose past plays weigh the worlds: the mover's partner, or all three others


def scored_plays(
    worlds: GameState, scored: torch.Tensor
) -> Iterator[tuple[torch.Tensor, GameState, torch.Tensor, torch.Tensor]]:
    """Replay each world from its deal and yield, at every step where some worlds' player is a `scored` [W, 4] seat,
    (rows, replay, legal, played): those worlds' indices, the replay before the play (all worlds), its legal mask
    [W, 28] and the dominoes played [len(rows)]. The replay moves on after each yield."""
    replay = GameState.from_deal(worlds.hands, worlds.decl, worlds.bidder, worlds.bid, worlds.leader, validate=False)
    steps = int(worlds.n_plays.max()) if worlds.batch_size else 0
    for i in range(steps):
        seat = worlds.history_seat[:, i]
        pending = i < worlds.n_plays
        rows = (pending & scored.gather(1, seat.clamp(min=0).view(-1, 1)).squeeze(1)).nonzero().flatten()
        if rows.numel():
            yield rows, replay, replay.legal_mask(), worlds.history[rows, i]
        replay.apply(torch.where(pending, worlds.history[:, i], torch.zeros_like(seat)), check=False)


def distinct_logits(model: ZebNet, obs: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """The policy logits of `obs` with one forward per distinct observation: late in a hand many sampled worlds
    give a seat the same hand, so its replayed observations repeat (a batch at 20 plays: a third distinct)."""
    distinct, inverse = torch.unique(obs.reshape(len(obs), -1), dim=0, return_inverse=True)
    if len(distinct) == len(obs):
        return model(obs, slots)[0]
    first = torch.full((len(distinct),), len(obs), dtype=torch.int64, device=obs.device)
    first = first.scatter_reduce(0, inverse, torch.arange(len(obs), device=obs.device), "amin")
    return model(obs[first], slots[first])[0][inverse]


@torch.inference_mode()
def play_log_likelihood(
    model: ZebNet,
    worlds: GameState,
    scored: torch.Tensor,
    floor: float = 0.05,
    sharpen: float = 1.0,
    distinct: bool = False,
) -> torch.Tensor:
    """[W] the log-probability, under `model`, of the past plays of the seats `scored` [W, 4] (bool) in each world.

    The model's move probabilities are softmax(sharpen x logits): the policy head is a Q head (softmax(4 x E[q])),
    flatter than a searching player who plays its best move every time, so `sharpen` > 1 models such a player.
    Each probability is mixed with the uniform one over that play's legal dominoes (weight `floor`), so one
    surprising play (a seat that does not play like the model) lowers a world's weight without ruling it out.
    `distinct`: each distinct observation evaluated once (`distinct_logits`; the same values up to rounding).
    """
    total = torch.zeros(worlds.batch_size, dtype=torch.float32, device=worlds.device)
    for rows, replay, legal, played in scored_plays(worlds, scored):
        sub = replay.index(rows)
        obs, slots = encode(sub, legal=legal[rows], trim=True)
        logits = distinct_logits(model, obs, slots) if distinct else model(obs, slots)[0]
        probs = torch.softmax(sharpen * logits.float(), dim=1)
        n_legal = slots.sum(1).clamp(min=1)
        hand = sub.hand_of(sub.current)
        played_slot = (hand == played.view(-1, 1)).float().argmax(1)
        p = probs.gather(1, played_slot.view(-1, 1)).squeeze(1)
        p = (1.0 - floor) * p + floor / n_legal
        total[rows] += torch.log(p.clamp(min=1e-12))
    return total


def inferred_seats(worlds: GameState, seats: str) -> torch.Tensor:
    """[W, 4] the seats (INFER_SEATS) whose past plays weigh each world: the mover's partner, or all but the mover."""
    rel = (torch.arange(4, device=worlds.device).view(1, -1) - worlds.current.view(-1, 1)) % 4  # 0 mover, 2 partner
    return rel == 2 if seats == "partner" else rel != 0


def draw_inferred_worlds(
    model: ZebNet,
    state: GameState,
    games: torch.Tensor,
    keep: int,
    candidates: int,
    seats: str,
    rng: random.Random,
    gen: torch.Generator,
    floor: float = 0.05,
    sharpen: float = 1.0,
    distinct: bool = False,
    extra_log_weight: Callable[[GameState], torch.Tensor] | None = None,
) -> GameState:
    """`keep` worlds per game of `games` (game-major), drawn from `candidates` uniform ones consistent with what the
    mover knows, in proportion to `model`'s likelihood of the `seats`' past plays (`play_log_likelihood`) plus
    `extra_log_weight(candidates)` where given (the auction's): what the pimc and rollout players' `infer` do."""
    cands = sample_worlds(state, games, candidates, rng)
    log_w = play_log_likelihood(model, cands, inferred_seats(cands, seats), floor, sharpen, distinct).cpu()
    if extra_log_weight is not None:
        log_w += extra_log_weight(cands).cpu()
    return cands.index(resample(log_w, len(games), candidates, keep, gen).to(cands.device))
