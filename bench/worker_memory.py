"""Resident memory and seconds per batch of a full-game self-play worker (the zeb train --full-game settings).

A fresh small model and BidNet in a temporary store; one line per batch, then the growth per batch after the
warm-up. Before `zeb_core.ops.memory.release_free_memory` ran after each batch, glibc kept every batch's freed pages
and this grew by 15-20 MB a batch (5.6 GB after a 60-minute run); now about 2 MB. The seconds per batch
include labelling every won hand under the ten declarations with the greedy policy (`fullgame.selfplay`).

    .venv/bin/python bench/worker_memory.py [--batches 10] [--uniform-worlds] [--value-target contract-sign]
        [--bid-hands 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_cli.train_presets import TRAIN_SEARCH
from zeb_core.engine.state import CONTRACT_TARGETS
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.mcts import SearchConfig
from zeb_core.ops.memory import resident_mib
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings

WARM_UP = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--uniform-worlds", action="store_true", help="the teacher's worlds not weighted by auction")
    parser.add_argument("--value-target", default="contract", choices=CONTRACT_TARGETS,
                        help="contract: exact points per move; contract-sign: one threshold search")  # fmt: skip
    parser.add_argument("--bid-hands", type=int, default=WorkerSettings.model_fields["bid_hands_per_batch"].default,
                        help="hands dealt, bid and labelled under the ten declarations per batch")  # fmt: skip
    args = parser.parse_args()
    setup(1)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"file://{tmp}/store"
        learner = Learner(LearnerSettings(store=url, size="small", device="cpu", promote=False,
                                          value_target=args.value_target, full_game=True))  # fmt: skip
        learner.start()  # pushes step 0 of the play network and the BidNet
        d = TRAIN_SEARCH  # zeb train's defaults, with a contract target and auction-weighted worlds
        search = SearchConfig(simulations=d.simulations, worlds=d.worlds, max_nodes=d.max_nodes, teacher=d.teacher,
                              value_target=args.value_target, auction_worlds=not args.uniform_worlds)  # fmt: skip
        worker = SelfPlayWorker(WorkerSettings(store=url, device="cpu", games_per_batch=32, seed=0, worker_id="mem",
                                               outbox=f"{tmp}/outbox", search=search, full_game=True,
                                               bid_hands_per_batch=args.bid_hands))  # fmt: skip
        worker.refresh_weights()
        sizes, seconds = [], []
        for batch in range(1, args.batches + 1):
            start = time.perf_counter()
            _, report = worker.generate()
            seconds.append(time.perf_counter() - start)
            worker.upload(report)
            sizes.append(resident_mib())
            print(f"batch {batch}: resident {sizes[-1]:.0f} MiB ({report.games} games, {seconds[-1]:.1f} s)",
                  flush=True)  # fmt: skip
        if len(sizes) > WARM_UP + 1:
            growth = (sizes[-1] - sizes[WARM_UP]) / (len(sizes) - 1 - WARM_UP)
            print(f"resident memory growth after batch {WARM_UP + 1}: {growth:.1f} MiB per batch")
            print(f"seconds per batch after batch {WARM_UP}: {sum(seconds[WARM_UP:]) / len(seconds[WARM_UP:]):.2f}")


if __name__ == "__main__":
    main()
