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

`infer=partner|others` (none by default) draws the worlds as the posterior teacher does (issue 36): `candidates`
(default 4 x worlds) uniform deals, kept in proportion to the network's own likelihood of the partner's past plays
(`others`: every other seat's), its probabilities sharpened by `sharpen` (default 4: a partner that plays its best
move, as this player does, is sharper than the policy's softmax) and mixed with `floor` (0.05) of uniform play.
The partner of a rollout player plays much like the network's greedy policy, so its plays are read by a model of
them; an opponent's are read by the same model, right only as far as the opponent plays like the network.

Spec: `rollout:path=DIR_OR_FILE[,worlds=W,solve_plays=P,objective=win|contract,mix=M,seed=S,infer=partner|others,
candidates=K,sharpen=X,floor=F]`.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from zeb_core.engine.dominoes import N_DOMINOES
from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.game.encoding import encode
from zeb_core.model.net import ZebNet
from zeb_core.players.inference import INFER_SEATS, draw_inferred_worlds
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown

OBJECTIVES = ("win", "contract")
ROWS_PER_CHUNK = 4096  # rollout rows (game x world x move) per batch of network forwards: bounds the memory


def check_infer(infer: str) -> None:
    """`infer` is "none" or one of INFER_SEATS."""
    if infer != "none" and infer not in INFER_SEATS:
        raise SpecError(f"infer={infer!r} must be one of none, {', '.join(INFER_SEATS)}")


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
        infer: str = "none",
        candidates: int | None = None,
        sharpen: float = 4.0,
        floor: float = 0.05,
    ) -> None:
        if worlds < 1:
            raise SpecError(f"worlds={worlds} must be at least 1")
        if not 0 <= solve_plays <= N_PLAYS:
            raise SpecError(f"solve_plays={solve_plays} must be in 0..{N_PLAYS}")
        check_objective(objective)
        if not 0.0 <= mix <= 1.0:
            raise SpecError(f"mix={mix} must be in [0, 1]")
        check_infer(infer)
        self.candidates = 4 * worlds if candidates is None else candidates
        if self.candidates < worlds:
            raise SpecError(f"candidates={self.candidates} must be at least worlds={worlds}")
        if sharpen <= 0 or not 0.0 <= floor <= 1.0:
            raise SpecError(f"sharpen={sharpen} must be > 0 and floor={floor} in [0, 1]")
        self.infer, self.sharpen, self.floor = infer, sharpen, floor
        self.objective, self.mix = objective, mix
        self.model = model.to(device).eval()
        self.worlds, self.solve_plays = worlds, solve_plays
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
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
        from zeb_core.solver import can_reach, contract_targets

        n, w = len(games), self.worlds
        worlds = self._sample(state, games)  # [n * w], game-major
        roll, game_of, move_of = rollout_rows(worlds, legal, w)
        team = (roll.current % 2).cpu().numpy()
        need = contract_targets(roll) if self.objective == "contract" else np.full(len(team), 22)
        roll.apply(torch.as_tensor(np.repeat(move_of, w), dtype=torch.int64, device=roll.device), check=False)
        solved = np.where(can_reach(roll, team, need), 1.0, -1.0) if self.mix > 0 else 0.0  # pimc's value
        points = finish_rollouts(self.model, roll, self.solve_plays)[np.arange(len(team)), team].astype(np.float64)
        result = np.where(points >= need, 1.0, -1.0)
        if self.objective == "win":
            result[points == 21] = 0.0  # a 21-21 tie
        score = ((1 - self.mix) * result + self.mix * solved).reshape(-1, w).mean(1)  # [pairs]
        rank = score + points.reshape(-1, w).mean(1) / 1000.0
        out, mean = np.full((n, N_DOMINOES), np.nan), np.zeros((n, N_DOMINOES))
        out[game_of, move_of], mean[game_of, move_of] = rank, score
        return out, mean

    def _sample(self, state: GameState, games: torch.Tensor) -> GameState:
        """`worlds` deals per game consistent with what the mover knows: uniform, or (infer) drawn from
        `candidates` uniform ones in proportion to the network's likelihood of the inferred seats' past plays."""
        from zeb_core.mcts.worlds import sample_worlds

        if self.infer == "none":
            return sample_worlds(state, games, self.worlds, self.rng)
        return draw_inferred_worlds(
            self.model, state, games, self.worlds, self.candidates, self.infer, self.rng, self.gen,
            self.floor, self.sharpen, distinct=True,
        )  # fmt: skip


def rollout_rows(worlds: GameState, legal: np.ndarray, w: int) -> tuple[GameState, np.ndarray, np.ndarray]:
    """One row per (game, legal move, world), before the move: (rows, game_of, move_of).

    `worlds` holds `w` worlds of each of the n games of `legal` [n, 28], game-major (`sample_worlds`' layout); the
    rows are pair-major (game, then move), then world, so a [pairs * w] result reshapes to [pairs, w]. The caller
    applies `np.repeat(move_of, w)`, after reading what it needs from the mover's side of the position.
    """
    game_of, move_of = np.nonzero(legal)  # the (game, move) pairs, game-major
    rows = (game_of[:, None] * w + np.arange(w)[None, :]).reshape(-1)  # [pairs * w]: pair-major, then world
    return worlds.index(torch.as_tensor(rows, dtype=torch.int64, device=worlds.device)), game_of, move_of


@torch.inference_mode()
def greedy_step(model: ZebNet, sub: GameState) -> None:
    """Every row of `sub` plays the network's greedy move, from its mover's own view (one forward for all)."""
    obs, legal_slots = encode(sub, legal=sub.legal_mask(), trim=True)
    logits, _ = model(obs, legal_slots)
    slots = logits.argmax(1)
    sub.apply(sub.hand_of(sub.current).gather(1, slots.view(-1, 1)).squeeze(1), check=False)


@torch.inference_mode()
def finish_rollouts(model: ZebNet, roll: GameState, solve_plays: int) -> np.ndarray:
    """[rows, 2] int64 each team's final points: every row of `roll` (changed in place) is played on by the greedy
    policy, one forward for all live rows per play, until `solve_plays` plays are left; the solver finishes it."""
    from zeb_core.solver import solve_points

    while True:
        live = (N_PLAYS - roll.n_plays) > solve_plays
        if not bool(live.any()):
            break
        idx = live.nonzero().flatten()
        sub = roll.index(idx)
        greedy_step(model, sub)
        for f in roll.__dataclass_fields__:
            getattr(roll, f)[idx] = getattr(sub, f)
    return solve_points(roll)


def rollout_from_spec(params: dict[str, str], device: torch.device, seed: int) -> RolloutPlayer:
    if "path" not in params:
        raise SpecError("rollout player needs path=DIR_OR_FILE (a checkpoint folder or NAME.safetensors)")
    path = params.pop("path")
    worlds = pop_param(params, "worlds", int, 16)
    solve_plays = pop_param(params, "solve_plays", int, 12)
    objective = params.pop("objective", None)
    seed = pop_param(params, "seed", int, seed)
    mix = pop_param(params, "mix", float, 0.0)
    infer = pop_param(params, "infer", str, "none")
    candidates = pop_param(params, "candidates", int, 4 * worlds)
    sharpen = pop_param(params, "sharpen", float, 4.0)
    floor = pop_param(params, "floor", float, 0.05)
    reject_unknown("rollout", params)
    check_infer(infer)  # before the weights are read
    if objective is not None:
        check_objective(objective)  # before the weights are read
    from zeb_core.model.checkpoint import load_model

    model, bundle = load_model(path, device)
    objective = objective or ("contract" if model.config.value_target.startswith("contract") else "win")
    inferred = f", infer {infer} over {candidates} x{sharpen:g}" if infer != "none" else ""
    name = (
        f"rollout(step {bundle.step}, worlds={worlds}, solve below {solve_plays}, {objective}, mix {mix:g}{inferred})"
    )
    return RolloutPlayer(
        model, device, worlds, solve_plays, objective, seed, mix, name, infer, candidates, sharpen, floor
    )
