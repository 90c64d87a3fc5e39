"""The longest a learner takes to stop: from a SIGTERM at the start of a cycle to its exit, at the fleet's settings.

The learner checks for a stop between cycles, so at worst the signal lands as a full cycle begins: training
(`training_steps_per_cycle` steps), an evaluation (`eval_games` against random and against heuristic), a
promotion match played to SPRT's maximum (`SprtConfig.max_games`, candidate vs best, the most it can play), the
cycle's push, then the final push (`close`). The job templates' grace period must exceed the sum (see
deployments/README.md). Defaults are LearnerSettings' (medium, batch 64, 100 steps, 2,000 games), which
prefect.yaml keeps; pushes go to a local folder here (a remote store adds its upload of the bundle, whose size is
printed). One figure a line, in seconds (--clock).
Run: .venv/bin/python bench/learner_stop.py [--device cpu] [--threads 1] [--games-fraction 0.1]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup
from learner import fill_buffer

from zeb_core.evaluation.match import play_match
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.promotion import SprtConfig
from zeb_core.players.builtin import PolicyPlayer

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}


def timed(work: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    work()
    return clock() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default=LearnerSettings.model_fields["size"].default)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="cpu",
        help="cpu: this process's CPU seconds, its wall time on an idle core with --threads 1, which a busy shared "
        "machine does not inflate; wall: seconds of the clock (a GPU)",
    )
    ap.add_argument(
        "--games-fraction",
        type=float,
        default=1.0,
        help="play this fraction of the evaluation and promotion games and scale their times up (a quick look)",
    )
    args = ap.parse_args()
    setup(args.threads)
    clock = CLOCK[args.clock]
    sprt = SprtConfig()
    fraction = args.games_fraction
    device = args.device if args.device != "cpu" else f"cpu, {torch.get_num_threads()} threads"
    scaled = f", games x {fraction:g} (times scaled up)" if fraction != 1 else ""
    print(f"learner stop, {args.size} model on {device}, {args.clock} seconds{scaled}")
    total = 0.0

    def figure(what: str, seconds: float) -> None:
        nonlocal total
        total += seconds
        print(f"  {what}: {seconds:.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        settings = LearnerSettings(store=f"file://{tmp}/store", size=args.size, device=args.device, min_buffer_size=1)
        lrn = Learner(settings, echo=lambda _: None)
        lrn.start()
        fill_buffer(lrn.buffer, 256)
        assert lrn.model is not None
        best = PolicyPlayer(copy.deepcopy(lrn.model).eval(), lrn.device, name="best")  # even: SPRT runs its course
        figure(
            f"train ({settings.training_steps_per_cycle} steps, batch {settings.batch_size})", timed(lrn.train, clock)
        )
        eval_games = max(2, round(settings.eval_games * fraction))
        figure(
            f"evaluate ({settings.eval_games} games x 2 baselines)",
            timed(lambda: lrn.evaluate(eval_games), clock) * settings.eval_games / eval_games,
        )
        candidate = PolicyPlayer(lrn.model.eval(), lrn.device, name="candidate")
        match_games = max(2, round(sprt.max_games * fraction))
        figure(
            f"promotion match ({sprt.max_games} games, SPRT's most)",
            timed(lambda: play_match(candidate, best, match_games, seed=1, device=lrn.device), clock)
            * sprt.max_games
            / match_games,
        )
        lrn.model.train()
        figure("push", timed(lambda: lrn.push("cycle"), clock))
        lrn.train()
        figure("final push (close)", timed(lrn.close, clock))
        size = max(p.stat().st_size for p in Path(tmp, "store").rglob("*") if p.is_file())
    print(f"worst stop (all of the above): {total:.1f} s")
    print(f"largest file pushed: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
