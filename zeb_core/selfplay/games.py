"""Self-play: G games in lockstep, every non-forced decision searched, one training example per search.

An example is the mover's observation (padded to 36 tokens), its legal slots, the policy target over them (the
search's improved policy, or its visit shares: `SearchConfig.policy_target`) and, once the hand is over, the value
of the result for the mover's seat under `SearchConfig.value_target` (the benchmark's points objective by default).
Forced moves (one legal domino) are played without a search but still give an example: its policy target is the
one legal slot (a zero loss: a softmax over one legal slot is 1), so it teaches only the value head, which the
search asks about those positions as about any other. `SearchConfig.teacher = "solver"` hands the whole batch to
`zeb_core.selfplay.solver_teacher`, which labels every position with exact solutions instead of a search; "rollout" to
`zeb_core.selfplay.rollout_teacher`, which labels it with rollouts of the current network; "schedule" to the first, then
the second once the weights were trained on `handover_games` games. Network outputs
are cached by observation within each search (`SearchConfig.eval_cache`); in clairvoyant mode each game's
tree is carried over to its next search (`SearchConfig.reuse_tree`, see `mcts.reuse.TreeReuse`).
"""

from __future__ import annotations

import random
import time

import torch

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import GameState
from zeb_core.game.encoding import encode, pad_tokens
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.driver import search_moves
from zeb_core.mcts.evaluator import Evaluator
from zeb_core.mcts.policy_targets import policy_target
from zeb_core.mcts.reuse import TreeReuse
from zeb_core.selfplay.batch import SelfPlayBatch


def play_selfplay(
    evaluator: Evaluator,
    games: int,
    config: SearchConfig,
    seed: int = 0,
    device: torch.device | str = "cpu",
    state: GameState | None = None,
    trained_games: int = 0,
) -> SelfPlayBatch:
    """Play `games` games of self-play with search; returns their examples on the CPU. `state`: the hands to play
    (e.g. dealt and bid by the full game's auction) instead of `games` benchmark deals. `trained_games`: the games
    the weights were trained on, which picks the teacher of `teacher="schedule"` (SearchConfig.active_teacher)."""
    device = torch.device(device)
    teacher = config.active_teacher(trained_games)
    if teacher in ("solver", "posterior", "rollout"):
        from zeb_core.selfplay.rollout_teacher import play_rollout_selfplay
        from zeb_core.selfplay.solver_teacher import play_solver_selfplay

        play = play_solver_selfplay if teacher == "solver" else play_rollout_selfplay
        batch = play(evaluator.model, games, config, seed=seed, device=device, state=state)
        batch.stats["teacher"] = teacher
        return batch
    start = time.perf_counter()
    forward0, evals0 = evaluator.forward_seconds, evaluator.states_evaluated
    lookups0, hits0 = evaluator.cache_lookups, evaluator.cache_hits
    reuse = TreeReuse() if config.clairvoyant and config.reuse_tree else None
    gen = make_generator(seed, device)
    rng = random.Random(seed)
    state = deal_benchmark(games, gen, device) if state is None else state.clone().to(device)
    games = state.batch_size
    obs_l, legal_l, policy_l, game_l, seat_l = [], [], [], [], []
    searches = 0
    while not bool(state.done().all()):
        legal = state.legal_mask()
        counts = legal.sum(1)
        moves = legal.float().argmax(1)  # forced (and finished, ignored) games
        todo = (counts > 1).nonzero().flatten()
        if todo.numel():
            found = search_moves(state, todo, evaluator, config, rng, gen, root_noise=True, reuse=reuse)
            searches += todo.numel()
            sub = state.index(todo)
            obs, legal_slots = encode(sub, legal=legal[todo])
            policy = policy_target(found, config)
            greedy = int(state.n_plays[todo[0]]) >= config.greedy_after or config.temperature == 0
            if greedy:
                slots = found.visits.argmax(1)
            else:
                weights = found.visits.clamp(min=0) ** (1.0 / config.temperature)
                slots = torch.multinomial(weights / weights.sum(1, keepdim=True), 1, generator=gen).squeeze(1)
            moves[todo] = sub.hand_of(sub.current).gather(1, slots.view(-1, 1)).squeeze(1)
            obs_l.append(pad_tokens(obs).cpu())
            legal_l.append(legal_slots.cpu())
            policy_l.append(policy.float().cpu())
            game_l.append(todo.cpu())
            seat_l.append(sub.current.cpu())
        forced = (counts == 1).nonzero().flatten()
        if forced.numel():
            sub = state.index(forced)
            obs, legal_slots = encode(sub, legal=legal[forced])
            obs_l.append(pad_tokens(obs).cpu())
            legal_l.append(legal_slots.cpu())
            policy_l.append(legal_slots.float().cpu())
            game_l.append(forced.cpu())
            seat_l.append(sub.current.cpu())
        state.apply(moves, check=False)
    values = state.target_values(config.value_target).cpu()
    if obs_l:
        game_idx, seats = torch.cat(game_l), torch.cat(seat_l)
        value = values[game_idx, seats]
        obs, legal_t, policy_t = torch.cat(obs_l), torch.cat(legal_l), torch.cat(policy_l)
    else:
        obs = torch.zeros(0, 36, 8, dtype=torch.int8)
        legal_t = torch.zeros(0, 7, dtype=torch.bool)
        policy_t = torch.zeros(0, 7)
        value = torch.zeros(0)
    seconds = time.perf_counter() - start
    stats: dict[str, float | str] = {
        "teacher": "mcts",
        "searches": searches,
        "forced_examples": sum(int(x.shape[0]) for x in policy_l) - searches,
        "states_evaluated": evaluator.states_evaluated - evals0,
        "cache_lookups": evaluator.cache_lookups - lookups0,
        "cache_hits": evaluator.cache_hits - hits0,
        "cache_hit_rate": (evaluator.cache_hits - hits0) / max(1, evaluator.cache_lookups - lookups0),
        "reused_trees": reuse.reused if reuse is not None else 0,
        "reused_visits": reuse.reused_visits if reuse is not None else 0.0,
        "forward_seconds": evaluator.forward_seconds - forward0,
        "forward_share": (evaluator.forward_seconds - forward0) / seconds if seconds > 0 else 0.0,
        "games_per_s": games / seconds if seconds > 0 else float("inf"),
        "team0_points_mean": float(state.team_points[:, 0].float().mean()),
    }
    return SelfPlayBatch(obs, legal_t, policy_t, value.float(), games, seconds, stats)
