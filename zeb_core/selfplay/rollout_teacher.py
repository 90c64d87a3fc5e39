"""Rollout-taught self-play: a teacher that improves with the network (expert iteration, issue 36).

The solver teacher (`zeb_core.selfplay.solver_teacher`) labels each position with pimc's move values: every later
decision taken by players who see all four hands. The network can approach that label but never pass it, and pimc is
beaten by its own blind spot (strategy fusion). This teacher labels a position with the `rollout` player's move
values instead (`zeb_core.players.rollout`): for every legal move and each of W worlds the hand is played on by
the *current* network's greedy move, each seat from its own view of that world, the exact solver finishing the
last `solve_plays` plays. A better network makes better rollouts, so the labels improve with it: one step of
policy improvement per training cycle (Tesauro and Galperin's rollouts as the expert of expert iteration).

The worlds: the true deal and W - 1 deals of the hidden hands drawn `rollout_candidates` times as many uniformly
and kept in proportion to the network's likelihood of every other seat's past plays (`players.inference`,
`mcts.worlds.resample`). In self-play the network *is* those seats (its softmax at the self-play temperature with
EXPLORE_EPSILON of uniform moves, exactly the likelihood used), so the weighting is the true posterior over deals
given the plays, and the true deal is a sample of that same posterior.

Each world's result is on the value target of the solver teacher's q (`solver_teacher.mover_values`: +1 / 0 / -1
for the benchmark), from the exact final points, so the two teachers' labels mix: a share `rollout_share` of the
non-forced positions is labelled by rollouts, the rest (and every forced position, value only) by the solver
teacher. The network picks the moves exactly as for the solver teacher (`solver_teacher.play_labelled`).

Batched for a GPU: the labels never steer the moves, so the games are played first and every position of every
game of the batch is labelled together. The rollouts of all (position, move, world) rows advance together, one
forward per play for each run of up to `rows_per_chunk` rows (at most 27 - solve_plays forwards a run), and the
likelihoods of all candidate worlds are one replay, one forward per replayed play for each run (observations that
repeat, as late in a hand when worlds agree on a seat's hand, are evaluated once).
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch

from zeb_core.engine.dominoes import N_DOMINOES, TOTAL_POINTS
from zeb_core.engine.state import N_SEATS, GameState, points_value
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.worlds import resample, sample_search_worlds
from zeb_core.model.net import ZebNet
from zeb_core.players.rollout import ROWS_PER_CHUNK, finish_rollouts, rollout_rows
from zeb_core.selfplay.batch import SelfPlayBatch
from zeb_core.selfplay.solver_teacher import EXPLORE_EPSILON, mover_values, pimc_values, play_labelled

GPU_ROWS_PER_CHUNK = 4 * ROWS_PER_CHUNK  # rows per forward on a GPU: fewer, larger forwards (not yet measured)


def final_values(mine: np.ndarray, bidder_side: np.ndarray, bid: np.ndarray, target: str) -> np.ndarray:
    """[rows] float64 the mover's value under `target` of its team ending the hand with `mine` points: the same
    value `solver_teacher.mover_values` gives a move whose best-play finish ends there, so the labels mix.

    bidder_side: whether the mover's team holds the bid; bid: the bid in points (both per row).
    """
    mine = mine.astype(np.float64)
    if target == "points":
        return np.sign(2.0 * mine - TOTAL_POINTS)
    if target == "points-margin":
        return points_value(torch.as_tensor(2.0 * mine - TOTAL_POINTS), target).double().numpy()
    if target == "contract-sign":  # the mover's side makes its contract target: the bid, or 43 minus it
        need = np.where(bidder_side, bid, TOTAL_POINTS + 1 - bid)
        return np.where(mine >= need, 1.0, -1.0)
    if target == "contract":  # GameState.values() of the final points, for the mover's side
        made = np.where(bidder_side, mine, TOTAL_POINTS - mine)
        v = np.where(
            made >= bid,
            0.5 + 0.5 * np.minimum((made - bid) / TOTAL_POINTS + 0.5, 1.0),
            -0.5 - 0.5 * np.minimum((bid - made) / TOTAL_POINTS, 1.0),
        )
        return np.where(bidder_side, v, -v)
    raise ValueError(f"unknown value target {target!r}")


def rollout_move_values(
    model: ZebNet, worlds: GameState, legal: np.ndarray, w: int, solve_plays: int, target: str
) -> np.ndarray:
    """[n, 28] each legal move's mean value over the `w` worlds per game (game-major `worlds`, n games of `legal`
    [n, 28]) after the greedy rollouts, finished by the solver; 0 on the other dominoes. All the rows advance
    together: one forward per play for all of them."""
    roll, game_of, move_of = rollout_rows(worlds, legal, w)
    team = (roll.current % 2).cpu().numpy()
    bidder_side = team == (roll.bidder % 2).cpu().numpy()
    bid = roll.bid.cpu().numpy().astype(np.float64)
    roll.apply(torch.as_tensor(np.repeat(move_of, w), dtype=torch.int64, device=roll.device), check=False)
    final = finish_rollouts(model, roll, solve_plays)  # [rows, 2]
    value = final_values(final[np.arange(len(team)), team], bidder_side, bid, target)
    out = np.zeros((len(legal), N_DOMINOES))
    out[game_of, move_of] = value.reshape(-1, w).mean(1)
    return out


def cat_states(parts: list[GameState]) -> GameState:
    """One batch of the rows of `parts`, in order."""
    return GameState(**{f: torch.cat([getattr(p, f) for p in parts]) for f in GameState.__dataclass_fields__})


def chunk_rows(sizes: list[int], limit: int) -> list[slice]:
    """Consecutive runs of items whose `sizes` add up to at most `limit` (an item larger than it runs alone)."""
    out, start, total = [], 0, 0
    for i, n in enumerate(sizes):
        if total and total + n > limit:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    if start < len(sizes):
        out.append(slice(start, len(sizes)))
    return out


def world_log_likelihood(model: ZebNet, pool: GameState, config: SearchConfig, limit: int) -> torch.Tensor:
    """[len(pool)] the log-likelihood of each world's past plays by every seat but its mover, under the self-play
    policy those seats played by (softmax at the self-play temperature, EXPLORE_EPSILON uniform). The pool's rows
    may come from different steps; each run of `limit` rows replays its plays together, one forward per play."""
    from zeb_core.players.inference import play_log_likelihood

    scored = torch.arange(N_SEATS, device=pool.device).view(1, -1) != pool.current.view(-1, 1)
    sharpen = 1.0 / max(config.temperature, 1e-3)
    out = torch.zeros(pool.batch_size, device=pool.device)
    for run in chunk_rows([1] * pool.batch_size, limit):
        rows = torch.arange(run.start, run.stop, device=pool.device)
        out[run] = play_log_likelihood(model, pool.index(rows), scored[run], EXPLORE_EPSILON, sharpen, distinct=True)
    return out


def search_worlds(
    model: ZebNet,
    steps: list[tuple[GameState, torch.Tensor]],
    w: int,
    config: SearchConfig,
    rng: random.Random,
    limit: int = ROWS_PER_CHUNK,
) -> list[GameState]:
    """For each (state, games) of `steps`: [len(games) * w] worlds, game-major, on the CPU: the true deal first,
    then w - 1 drawn from `config.rollout_candidates` times as many uniform ones (auction-weighted in the full game)
    in proportion to the model's likelihood of the other seats' past plays (1 candidate: no weighting). The
    likelihoods of every step's candidates are computed together."""
    extra = w - 1
    per = max(1, config.rollout_candidates) * extra
    weigh = config.rollout_candidates > 1 and extra > 0
    cpu_steps = [(state.to("cpu"), games.cpu()) for state, games in steps]
    pools = [
        sample_search_worlds(s, g, per if weigh else extra, rng, config.auction_worlds) if extra else None
        for s, g in cpu_steps
    ]
    if weigh and pools:
        pool = cat_states([p for p in pools if p is not None])
        device = next(model.parameters()).device
        ll = world_log_likelihood(model, pool.to(device), config, limit).cpu()
        gen = torch.Generator().manual_seed(rng.getrandbits(63))
        at = 0
        for i, ((_s, games), p) in enumerate(zip(cpu_steps, pools, strict=True)):
            assert p is not None
            keep = resample(ll[at : at + p.batch_size], len(games), per, extra, gen)
            pools[i], at = p.index(keep), at + p.batch_size
    out = []
    for (s, games), p in zip(cpu_steps, pools, strict=True):
        worlds = s.index(games.repeat_interleave(w))  # every world starts as the true deal
        if p is not None:
            rows = (torch.arange(len(games)).view(-1, 1) * w + torch.arange(1, w).view(1, -1)).flatten()
            worlds.owner[rows], worlds.hands[rows] = p.owner, p.hands  # only who holds what differs
        out.append(worlds)
    return out


def weighted_worlds(
    model: ZebNet, state: GameState, games: torch.Tensor, w: int, config: SearchConfig, rng: random.Random
) -> GameState:
    """`search_worlds` of one position per game of `games` in `state`, on the state's device."""
    return search_worlds(model, [(state, games)], w, config, rng)[0].to(state.device)


class ForwardClock:
    """Seconds inside the model's forward calls while in use (hooks around each call), so a batch's share of time
    in the network counts the labeller's forwards (rollouts, likelihoods), not only the moves'."""

    def __init__(self, model: ZebNet, sync: bool = False) -> None:
        """`sync`: wait for a GPU's queued work around each call (exact on CUDA, but it stalls the pipeline: for
        benches; the worker's figure is the launch time there)."""
        self.model, self.seconds, self._t0 = model, 0.0, 0.0
        device = next(model.parameters()).device
        self._sync = sync and device.type == "cuda"
        self._device = device

    def __enter__(self) -> ForwardClock:
        self._hooks = [
            self.model.register_forward_pre_hook(lambda *_: self._start()),
            self.model.register_forward_hook(lambda *_: self._stop()),
        ]
        return self

    def __exit__(self, *_: object) -> None:
        for hook in self._hooks:
            hook.remove()

    def _start(self) -> None:
        if self._sync:
            torch.cuda.synchronize(self._device)
        self._t0 = time.perf_counter()

    def _stop(self) -> None:
        if self._sync:
            torch.cuda.synchronize(self._device)
        self.seconds += time.perf_counter() - self._t0


class RolloutLabeller:
    """The rollout teacher (a `solver_teacher.Labeller`): every step's positions labelled together, with its own
    counters."""

    def __init__(self, model: ZebNet, config: SearchConfig, seed: int, limit: int = ROWS_PER_CHUNK) -> None:
        self.model, self.config, self.limit = model, config, limit
        self.rng = random.Random(seed)  # the worlds: with rollout_share 0 the solver teacher's draws, the same
        self.share_rng = random.Random(f"rollout-share-{seed}")  # which positions the rollouts label
        self.rollout_positions = self.solver_positions = self.rollout_rows = 0
        self.weigh_seconds = self.rollout_seconds = self.solve_seconds = 0.0

    def __call__(self, states: list[GameState], legals: list[torch.Tensor]) -> list[torch.Tensor]:
        cfg = self.config
        share = 0.0 if cfg.teacher == "posterior" else cfg.rollout_share
        weigh = cfg.rollout_candidates > 1 and cfg.worlds > 1  # the solver share's worlds weighted too
        t0 = time.perf_counter()
        q28s, picked, solved = [], [], []
        for state, legal in zip(states, legals, strict=True):
            counts = legal.sum(1).cpu()
            picks = torch.tensor([bool(c > 1) and self.share_rng.random() < share for c in counts.tolist()])
            q28 = torch.zeros(state.batch_size, N_DOMINOES)
            rest = (~picks & (counts > 0)).nonzero().flatten()  # forced, and the solver teacher's share
            several = torch.zeros(0, dtype=torch.int64)
            if rest.numel():
                sub = state.index(rest.to(state.device)).to("cpu")
                several = (counts[rest] > 1).nonzero().flatten()
                q_true = mover_values(sub, cfg.value_target)
                q28[rest] = q_true if weigh else pimc_values(sub, q_true, several, cfg, self.rng)
                self.solver_positions += int(several.numel())
                several = rest[several]
            q28s.append(q28)
            picked.append(picks.nonzero().flatten())
            solved.append(several if weigh else torch.zeros(0, dtype=torch.int64))
        t1 = time.perf_counter()
        self.solve_seconds += t1 - t0
        steps = [(t, games) for t, games in enumerate(picked) if games.numel()]
        solver_steps = [(t, games) for t, games in enumerate(solved) if games.numel()]
        worlds = search_worlds(
            self.model, [(states[t], g) for t, g in steps + solver_steps], cfg.worlds, cfg, self.rng, self.limit
        )
        t2 = time.perf_counter()
        self.weigh_seconds += t2 - t1
        self._solve_worlds(solver_steps, worlds[len(steps) :], q28s)
        t3 = time.perf_counter()
        self.solve_seconds += t3 - t2
        if steps:
            self._rollouts(steps, worlds[: len(steps)], legals, q28s)
        self.rollout_seconds += time.perf_counter() - t3
        device = states[0].device if states else torch.device("cpu")
        return [q.to(device) for q in q28s]

    def _solve_worlds(
        self, steps: list[tuple[int, torch.Tensor]], worlds: list[GameState], q28s: list[torch.Tensor]
    ) -> None:
        """The solver share's non-forced positions in weighted worlds: the true deal's values (already in q28s)
        averaged with the exact values in the w - 1 drawn worlds (rows 1.. of each game's block)."""
        w = self.config.worlds
        if not steps:
            return
        every = cat_states(worlds)
        drawn = (torch.arange(every.batch_size) % w) != 0
        sampled = mover_values(every.index(drawn.nonzero().flatten()), self.config.value_target)
        sums = sampled.view(-1, w - 1, N_DOMINOES).sum(1)
        at = 0
        for t, games in steps:
            q = q28s[t]
            q[games] = (q[games] + sums[at : at + len(games)]) / w
            at += len(games)

    def _rollouts(
        self,
        steps: list[tuple[int, torch.Tensor]],
        worlds: list[GameState],
        legals: list[torch.Tensor],
        q28s: list[torch.Tensor],
    ) -> None:
        """Every picked position's move values into q28s: the rollout rows of all of them advance together, in
        runs of at most `limit` rows (one forward per play for each run)."""
        cfg, w = self.config, self.config.worlds
        device = next(self.model.parameters()).device
        where = [(t, int(g)) for t, games in steps for g in games]
        legal = torch.cat([legals[t][games.to(legals[t].device)].cpu() for t, games in steps]).numpy()
        every = cat_states(worlds)
        self.rollout_positions += len(where)
        self.rollout_rows += int(legal.sum()) * w
        for run in chunk_rows((legal.sum(1) * w).tolist(), self.limit):
            rows = torch.arange(run.start * w, run.stop * w)
            values = rollout_move_values(
                self.model, every.index(rows).to(device), legal[run], w, cfg.solve_plays, cfg.value_target
            )
            for (t, g), v in zip(where[run], values, strict=True):
                q28s[t][g] = torch.as_tensor(v, dtype=torch.float32)

    def stats(self, seconds: float) -> dict[str, float | int | str]:
        labelled = self.rollout_positions + self.solver_positions
        return {
            "teacher": self.config.teacher if self.config.teacher == "posterior" else "rollout",
            "rollout_positions": self.rollout_positions,
            "rollout_share": self.rollout_positions / labelled if labelled else 0.0,
            "rollout_rows": self.rollout_rows,
            "rollout_seconds": self.rollout_seconds,
            "weigh_seconds": self.weigh_seconds,
            "solve_seconds": self.solve_seconds,
            "rollout_positions_per_s": self.rollout_positions / seconds if seconds > 0 else 0.0,
        }


@torch.inference_mode()
def play_rollout_selfplay(
    model: ZebNet,
    games: int,
    config: SearchConfig,
    seed: int = 0,
    device: torch.device | str = "cpu",
    state: GameState | None = None,
) -> SelfPlayBatch:
    """Play `games` games with the network's sampled policy, as the solver teacher does; a `rollout_share` of the
    non-forced positions is labelled by the current network's rollouts, the rest by the solver (on the CPU).

    `state`: the hands to play (e.g. dealt and bid by the full game's auction) instead of `games` benchmark deals.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    limit = GPU_ROWS_PER_CHUNK if device.type == "cuda" else ROWS_PER_CHUNK
    labeller = RolloutLabeller(model, config, seed, limit)
    with ForwardClock(model) as clock:
        batch = play_labelled(model, games, config, labeller, seed, device, state)
    batch.stats.update(labeller.stats(batch.seconds))
    # every forward: the moves' and the labeller's (asynchronous on a GPU: there the share is of launch time)
    batch.stats["forward_seconds"] = clock.seconds
    batch.stats["forward_share"] = clock.seconds / batch.seconds if batch.seconds > 0 else 0.0
    return batch
