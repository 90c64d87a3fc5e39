"""Labelled positions per second of the solver, rollout and posterior teachers (issue 36), on one core by default.

A fresh model plays `--games` games per batch in lockstep (the worker's loop); every position is one labelled
example. The rollout teacher is measured with its worlds weighted by the network's likelihood of the other seats'
plays (`--candidates`, SearchConfig.rollout_candidates) and with uniform worlds (1 candidate), so the weighting's
cost shows; the posterior teacher is the solver teacher in those weighted worlds (no rollouts). Rates are
examples over wall seconds and over the process's CPU seconds (the same on an idle core; on
a shared machine the CPU figure is the one to compare). Also: the share of the rollout teacher's time in network
forwards (moves, rollouts and likelihoods; timed by forward hooks, synchronised on a GPU), in weighting the worlds
and in the rollouts.
Run: .venv/bin/python bench/teacher_speed.py [--games 32] [--worlds 8] [--batches 1] [--device cpu|cuda]
     [--size small] [--candidates 4] [--solve-plays 12] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.mcts import SearchConfig
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.selfplay.batch import SelfPlayBatch
from zeb_core.selfplay.rollout_teacher import ForwardClock, play_rollout_selfplay
from zeb_core.selfplay.solver_teacher import play_solver_selfplay
from zeb_core.solver import warm_up


def run(play, model: ZebNet, games: int, config: SearchConfig, batches: int, device: str) -> tuple[float, float, list]:
    """(wall seconds, CPU seconds, batches) of `batches` batches of `games` games."""
    out: list[SelfPlayBatch] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(batches):
        out.append(play(model, games, config, seed=1000 + i, device=device))
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=32, help="games per batch (zeb train's --games-per-batch)")
    parser.add_argument("--worlds", type=int, default=8, help="worlds per position (zeb train's --worlds)")
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="small")
    parser.add_argument("--candidates", type=int, default=SearchConfig.rollout_candidates)
    parser.add_argument("--solve-plays", type=int, default=SearchConfig.solve_plays)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    setup(args.threads)
    device = torch.device(args.device)
    warm_up()
    torch.manual_seed(0)
    model = ZebNet(ModelConfig.preset(args.size)).to(device).eval()
    solver = SearchConfig(teacher="solver", worlds=args.worlds, solve_plays=args.solve_plays)
    weighted = replace(solver, teacher="rollout", rollout_candidates=args.candidates)
    uniform = replace(weighted, rollout_candidates=1)
    posterior = replace(weighted, teacher="posterior")
    for play, config in ((play_solver_selfplay, solver), (play_rollout_selfplay, weighted)):
        play(model, 2, config, seed=99, device=args.device)  # warm-up: kernels, allocator
    print(f"device: {device}, threads: {torch.get_num_threads()}, {args.games} games x {args.batches} batches, "
          f"{args.worlds} worlds, solver below {args.solve_plays} plays, {args.size} model")  # fmt: skip
    for name, play, config in (
        ("solver teacher", play_solver_selfplay, solver),
        (f"rollout teacher (weighted, {args.candidates} candidates)", play_rollout_selfplay, weighted),
        ("rollout teacher (uniform worlds)", play_rollout_selfplay, uniform),
        (f"posterior teacher ({args.candidates} candidates)", play_rollout_selfplay, posterior),
    ):
        with ForwardClock(model, sync=True) as clock:  # synchronised on a GPU: the network's own time
            wall, cpu, batches = run(play, model, args.games, config, args.batches, args.device)
        examples = sum(b.examples for b in batches)
        print(f"{name}: {examples / wall:.1f} labelled positions/s wall, {examples / cpu:.1f} per CPU second")
        if play is play_rollout_selfplay:
            rows = sum(b.stats["rollout_rows"] for b in batches)
            weigh = sum(b.stats["weigh_seconds"] for b in batches)
            roll = sum(b.stats["rollout_seconds"] for b in batches)
            print(f"{name}: {clock.seconds / wall:.0%} of its time in network forwards")
            print(f"{name}: {weigh / wall:.0%} weighting worlds, {roll / wall:.0%} rollouts ({rows:,} rows)")


if __name__ == "__main__":
    main()
