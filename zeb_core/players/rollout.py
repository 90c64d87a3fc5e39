"""The `rollout` player: the network's policy played out over sampled worlds, the solver finishing each hand.

For the seat to move it deals `worlds` hidden hands consistent with what that seat knows (as `pimc` does), and for
every legal move in every world plays the hand on: each seat in turn plays the network's greedy move from its
*own* view of that world (its hand there and the public plays, never the other hands), until `solve_plays` plays
are left, where the exact solver takes over. The move with the best mean result is played; ties go to the higher
mean final points. The result is the benchmark's (`objective=win`: +1 / 0 / -1 as the mover's team ends with more
than, exactly or fewer than 21 points) or the hand's real bid (`objective=contract`, the full game: +1 / -1 as the
mover's side makes or sets it); by default the objective the weights were trained for.

Why: `pimc` values a move as if every later decision were taken by players who see all four hands (strategy
fusion: it counts on finesses no one can find). A rollout's later decisions are taken by a player who does not see
them, so it values what a move is worth to real players; the solver is used only for the last tricks, where
little is hidden. It is one step of policy improvement over the network (Tesauro and Galperin's rollouts).

`mix=M` (0 by default) blends in pimc's view: each world's score is (1 - M) x the rollout's result + M x whether
the solver says the mover's team can still reach its target after the move (+1 / -1).

Spec: `rollout:path=DIR_OR_FILE[,worlds=W,solve_plays=P,objective=win|contract,mix=M,seed=S]`.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from zeb_core.encoding import encode
from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.model.net import ZebNet
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown

OBJECTIVES = ("win", "contract")
ROWS_PER_CHUNK = 4096  # rollout rows (game x world x move) per batch of network forwards: bounds the memory


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise SpecError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")


class RolloutPlayer:
    """For each legal move: the mean benchmark result of policy rollouts over sampled worlds, finished exactly."""

    def __init__(
        self,
        model: ZebNet,
        device: torch.device,
        worlds: int = 16,
        solve_plays: int = 12,
        objective: str = "win",
        seed: int = 0,
        mix: float = 0.0,
        name: str | None = None,
    ) -> None:
        if worlds < 1:
            raise SpecError(f"worlds={worlds} must be at least 1")
        if not 0 <= solve_plays <= N_PLAYS:
            raise SpecError(f"solve_plays={solve_plays} must be in 0..{N_PLAYS}")
        check_objective(objective)
        if not 0.0 <= mix <= 1.0:
            raise SpecError(f"mix={mix} must be in [0, 1]")
        self.objective, self.mix = objective, mix
        self.model = model.to(device).eval()
        self.worlds, self.solve_plays = worlds, solve_plays
        self.rng = random.Random(seed)
        self.name = name or f"rollout(worlds={worlds}, solve below {solve_plays}, {objective}, mix {mix:g})"
        self.decisions = 0  # searched (non-forced) decisions so far

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        legal_np = legal[games].cpu().numpy()  # [n, 28]
        values = np.where(legal_np, 0.0, np.nan)  # the ranking: mean result + mean points / 1000
        expected = np.zeros(legal_np.shape)  # the mean result alone, what the mover expects after each move
        searched = np.flatnonzero(legal_np.sum(1) > 1)
        per_chunk = max(1, ROWS_PER_CHUNK // (self.worlds * 7))
        for start in range(0, len(searched), per_chunk):
            rows = searched[start : start + per_chunk]
            sub = games[torch.as_tensor(rows, dtype=torch.int64, device=games.device)]
            values[rows], expected[rows] = self._move_values(state, sub, legal_np[rows])
        self.decisions += len(searched)
        moves = np.nanargmax(np.where(legal_np, values, -np.inf), axis=1)
        best = expected[np.arange(len(games)), moves]  # forced moves: 0, nothing was searched
        device = legal.device
        moves_t = torch.as_tensor(moves, dtype=torch.int64, device=device)
        policy = torch.nn.functional.one_hot(moves_t, N_DOMINOES).float()
        value = torch.as_tensor(np.clip(best, -1.0, 1.0), dtype=torch.float32, device=device)
        return Decision(moves=moves_t, policy=policy, value=value)

    def _move_values(self, state: GameState, games: torch.Tensor, legal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two [n, 28] arrays per legal move: the ranking (mean score over the worlds plus mean final points / 1000,
        the tiebreak) and the mean score alone (the value the decision reports)."""
        from zeb_core.mcts.worlds import sample_worlds
        from zeb_core.solver import can_reach, contract_targets

        n, w = len(games), self.worlds
        worlds = sample_worlds(state, games, w, self.rng)  # [n * w], game-major
        game_of, move_of = np.nonzero(legal)  # the (game, move) pairs, game-major
        rows = (game_of[:, None] * w + np.arange(w)[None, :]).reshape(-1)  # [pairs * w]: pair-major, then world
        roll = worlds.index(torch.as_tensor(rows, dtype=torch.int64, device=worlds.device))
        team = (roll.current % 2).cpu().numpy()
        need = contract_targets(roll) if self.objective == "contract" else np.full(len(rows), 22)
        roll.apply(torch.as_tensor(np.repeat(move_of, w), dtype=torch.int64, device=roll.device), check=False)
        solved = np.where(can_reach(roll, team, need), 1.0, -1.0) if self.mix > 0 else 0.0  # pimc's value
        points = self._finish(roll, team)  # [pairs * w] the mover's team's final points
        result = np.where(points >= need, 1.0, -1.0)
        if self.objective == "win":
            result[points == 21] = 0.0  # a 21-21 tie
        score = ((1 - self.mix) * result + self.mix * solved).reshape(-1, w).mean(1)  # [pairs]
        rank = score + points.reshape(-1, w).mean(1) / 1000.0
        out, mean = np.full((n, N_DOMINOES), np.nan), np.zeros((n, N_DOMINOES))
        out[game_of, move_of], mean[game_of, move_of] = rank, score
        return out, mean

    @torch.inference_mode()
    def _finish(self, roll: GameState, team: np.ndarray) -> np.ndarray:
        """Plays every row on by the greedy policy until `solve_plays` plays are left, then solves it exactly."""
        from zeb_core.solver import solve_points

        while True:
            live = (N_PLAYS - roll.n_plays) > self.solve_plays
            if not bool(live.any()):
                break
            idx = live.nonzero().flatten()
            sub = roll.index(idx)
            obs, legal_slots = encode(sub, legal=sub.legal_mask(), trim=True)
            logits, _ = self.model(obs, legal_slots)
            slots = logits.argmax(1)
            moves = sub.hand_of(sub.current).gather(1, slots.view(-1, 1)).squeeze(1)
            sub.apply(moves, check=False)
            for f in roll.__dataclass_fields__:
                getattr(roll, f)[idx] = getattr(sub, f)
        final = solve_points(roll)  # [rows, 2]
        return final[np.arange(len(team)), team].astype(np.float64)


def rollout_from_spec(params: dict[str, str], device: torch.device, seed: int) -> RolloutPlayer:
    if "path" not in params:
        raise SpecError("rollout player needs path=DIR_OR_FILE (a checkpoint folder or NAME.safetensors)")
    path = params.pop("path")
    worlds = pop_param(params, "worlds", int, 16)
    solve_plays = pop_param(params, "solve_plays", int, 12)
    objective = params.pop("objective", None)
    seed = pop_param(params, "seed", int, seed)
    mix = pop_param(params, "mix", float, 0.0)
    reject_unknown("rollout", params)
    if objective is not None:
        check_objective(objective)  # before the weights are read
    from zeb_core.model.checkpoint import load_model

    model, bundle = load_model(path, device)
    objective = objective or ("contract" if model.config.value_target.startswith("contract") else "win")
    name = f"rollout(step {bundle.step}, worlds={worlds}, solve below {solve_plays}, {objective}, mix {mix:g})"
    return RolloutPlayer(model, device, worlds, solve_plays, objective, seed, mix, name)
