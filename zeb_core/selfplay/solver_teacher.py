"""Solver-taught self-play: the network picks the moves, exact solutions of the true deal label every position.

In a benchmark deal every position has an exact value once the hidden hands are known, and the play-phase solver
(`zeb_core.solver`) finds it in well under a millisecond past the first tricks. So instead of searching, a worker
plays G games in lockstep with the network's own policy (sampled, so the positions are the ones the network
reaches) and, at every position, solves each legal move in W worlds: the true deal and W - 1 deals of the hidden
hands sampled uniformly among those consistent with what the mover knows (`SearchConfig.worlds`; in the full game
weighted by the auction, `SearchConfig.auction_worlds`):

    q[a]   the mover's result after move a and best play by everyone (the benchmark objective: +1 win, 0 tie,
           -1 loss, or its margin-shaped variant), averaged over the W worlds, for every legal hand slot a;
    value  max over a of q[a]: the position's value for the mover.

That is the perfect-information Monte Carlo (PIMC) estimate of each move, the expert player `pimc` plays by. One
world alone is a sample of it, but a very noisy one: with perfect information the first leads decide whole hands,
so a single deal's move values differ far more than their expectations do, and a network fitting them learns
almost nothing in the minutes it has (measured: its Q loss stayed at the loss of predicting nothing). Averaging W
worlds divides that noise by W; the true deal among them keeps the other seats' plays informative. The policy head
is trained on q as a Q head (learn.step.q_losses), so argmax of the logits is the move with the best expected
result. Forced positions give examples too (value only).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np
import torch

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.dominoes import TOTAL_POINTS
from zeb_core.engine.state import GameState, points_value
from zeb_core.game.encoding import encode, pad_tokens
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.worlds import sample_search_worlds
from zeb_core.model.net import ZebNet
from zeb_core.selfplay.batch import SelfPlayBatch

EXPLORE_EPSILON = 0.05  # share of moves played uniformly at random, so rare lines are labelled too
POLICY_Q_SCALE = 4.0  # the policy target beside q: softmax(POLICY_Q_SCALE * q) over legal slots (metrics only)


def mover_values(state, objective: str) -> torch.Tensor:
    """[B, 28] each legal domino's exact value for the mover's team under `objective`, 0 elsewhere (CPU)."""
    from zeb_core.solver import contract_targets, move_reach_values, move_values

    if objective == "contract-sign":  # the bid made (+1) or set (-1): one null-window search per move at the bid
        reach = move_reach_values(state, contract_targets(state))
        return torch.as_tensor(np.nan_to_num(reach, nan=0.0), dtype=torch.float32)
    if objective == "points":  # the benchmark: win, tie or loss, by threshold searches
        raw = move_values(state, objective="win")
        vals = np.nan_to_num(raw, nan=0.0)
    elif objective == "contract":  # the bid (the full game): GameState.values() of the exact final points
        pts = move_values(state, objective="points")
        legal = torch.as_tensor(~np.isnan(pts))
        mine = torch.as_tensor(np.nan_to_num(pts, nan=0.0), dtype=torch.float64)
        bidder_side = (state.current % 2 == state.bidder % 2).cpu().view(-1, 1)
        bid = state.bid.cpu().view(-1, 1).to(torch.float64)
        made_pts = torch.where(bidder_side, mine, TOTAL_POINTS - mine)
        v_bidder = torch.where(
            made_pts >= bid,
            0.5 + 0.5 * torch.clamp((made_pts - bid) / TOTAL_POINTS + 0.5, max=1.0),
            -0.5 - 0.5 * torch.clamp((bid - made_pts) / TOTAL_POINTS, max=1.0),
        )
        return torch.where(legal, torch.where(bidder_side, v_bidder, -v_bidder), 0.0).to(torch.float32)
    else:  # margin-shaped: exact points of the mover's team
        pts = move_values(state, objective="points")
        legal = ~np.isnan(pts)
        margin = torch.as_tensor(2.0 * np.nan_to_num(pts, nan=21.0) - TOTAL_POINTS)
        return torch.where(torch.as_tensor(legal), points_value(margin, "points-margin"), 0.0)
    return torch.as_tensor(vals, dtype=torch.float32)


Labeller = Callable[[list[GameState], list[torch.Tensor]], list[torch.Tensor]]
"""A teacher: (the state before each lockstep step, its legal mask [G, 28]) -> for each step [G, 28] each legal
domino's value for the mover (the examples' q; 0 elsewhere), on the states' device. Called once the games are
over (labels never steer the moves), so a teacher may batch the work of every step together; it may use its own
random streams, never the moves'."""


def pimc_values(
    cpu_state: GameState, q_true: torch.Tensor, games: torch.Tensor, config: SearchConfig, rng: random.Random
) -> torch.Tensor:
    """q_true [B, 28] (the true deal's values) with the rows `games` averaged over `config.worlds` - 1 sampled worlds
    too: pimc's move values, the solver teacher's label of a non-forced position."""
    extra_worlds = max(0, config.worlds - 1)
    q28 = q_true.clone()
    if extra_worlds and games.numel():
        worlds = sample_search_worlds(cpu_state, games, extra_worlds, rng, config.auction_worlds)
        sampled = mover_values(worlds, config.value_target)
        q28[games] = (q_true[games] + sampled.view(-1, extra_worlds, 28).sum(1)) / config.worlds
    return q28


def pimc_labeller(config: SearchConfig, rng: random.Random) -> Labeller:
    """The solver teacher: exact values of the true deal, averaged with sampled worlds where not forced."""

    def label_step(state: GameState, legal: torch.Tensor) -> torch.Tensor:
        cpu_state = state.to("cpu")
        q_true = mover_values(cpu_state, config.value_target)
        several = (legal.sum(1) > 1).nonzero().flatten().cpu()  # forced moves need no averaging
        return pimc_values(cpu_state, q_true, several, config, rng).to(state.device)

    return lambda states, legals: [label_step(s, legal) for s, legal in zip(states, legals, strict=True)]


@torch.inference_mode()
def play_solver_selfplay(
    model: ZebNet,
    games: int,
    config: SearchConfig,
    seed: int = 0,
    device: torch.device | str = "cpu",
    state: GameState | None = None,
) -> SelfPlayBatch:
    """Play `games` games with the network's sampled policy; every position becomes an example (on the CPU).

    `state`: the hands to play (e.g. dealt and bid by the full game's auction) instead of `games` benchmark deals.
    """
    return play_labelled(model, games, config, pimc_labeller(config, random.Random(seed)), seed, device, state)


@torch.inference_mode()
def play_labelled(
    model: ZebNet,
    games: int,
    config: SearchConfig,
    label: Labeller,
    seed: int = 0,
    device: torch.device | str = "cpu",
    state: GameState | None = None,
) -> SelfPlayBatch:
    """The network's sampled policy plays `games` games in lockstep (EXPLORE_EPSILON of the moves uniform); then
    `label` labels every position (any teacher: the solver's, or the rollouts' of zeb_core.selfplay.rollout_teacher), so
    all teachers play the same games for a seed and give the same example layout."""
    device = torch.device(device)
    start = time.perf_counter()
    model = model.to(device).eval()
    gen = make_generator(seed, device)
    state = deal_benchmark(games, gen, device) if state is None else state.clone().to(device)
    games = state.batch_size
    obs_l, slots_l, hand_l, states, legals = [], [], [], [], []
    forward_seconds = 0.0
    temperature = max(config.temperature, 1e-3)
    while not bool(state.done().all()):
        legal = state.legal_mask()
        obs, legal_slots = encode(state, legal=legal, trim=True)
        hand = state.hand_of(state.current)
        t0 = time.perf_counter()
        logits, _ = model(obs, legal_slots)
        forward_seconds += time.perf_counter() - t0
        probs = torch.softmax(logits.float() / temperature, dim=1)
        uniform = legal_slots.float() / legal_slots.sum(1, keepdim=True)
        explore = torch.rand(games, 1, generator=gen, device=device) < EXPLORE_EPSILON
        probs = torch.where(explore, uniform, probs)
        slots = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        obs_l.append(pad_tokens(obs).cpu())
        slots_l.append(legal_slots)
        hand_l.append(hand)
        states.append(state.clone())
        legals.append(legal)
        state.apply(hand.gather(1, slots.view(-1, 1)).squeeze(1), check=False)
    t0 = time.perf_counter()
    q28s = label(states, legals)
    label_seconds = time.perf_counter() - t0
    q_l, value_l = [], []
    for q28, hand, legal_slots in zip(q28s, hand_l, slots_l, strict=True):
        q = torch.where(legal_slots, q28.gather(1, hand), 0.0)
        q_l.append(q.cpu())
        value_l.append(torch.where(legal_slots, q, float("-inf")).max(1).values.cpu())
    legal_t = torch.cat([s.cpu() for s in slots_l])
    q_t = torch.cat(q_l)
    policy = torch.softmax(torch.where(legal_t, POLICY_Q_SCALE * q_t, float("-inf")), dim=1)
    seconds = time.perf_counter() - start
    stats = {
        "searches": 0,
        "positions_solved": int(legal_t.shape[0]),
        "solve_seconds": label_seconds,
        "forward_seconds": forward_seconds,
        "forward_share": forward_seconds / seconds if seconds > 0 else 0.0,
        "solve_share": label_seconds / seconds if seconds > 0 else 0.0,
        "games_per_s": games / seconds if seconds > 0 else float("inf"),
        "team0_points_mean": float(state.team_points[:, 0].float().mean()),
    }
    return SelfPlayBatch(torch.cat(obs_l), legal_t, policy, torch.cat(value_l), games, seconds, stats, q=q_t)
