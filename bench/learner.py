"""Learner throughput: training steps/s of `Trainer.train_steps` on a filled buffer, ingest examples/s, and the
full-game learner's BidNet steps/s (`BidTrainer.step` at batch 512, on the hands of heuristic-played auctions).

The buffer holds real observations from random play (padded to 36 tokens, as example files store them). The
baseline, in the same process, is the bare step (sample, forward, loss, backward, AdamW) without the metrics,
norms and clipping, so the line `metrics overhead` says what the W&B figures cost. Ingest is `Learner.ingest` on
a local store holding `--ingest-files` new example files: list, read, validate every file, fill the buffer.
Run: .venv/bin/python bench/learner.py [--size medium] [--device cpu] [--batch-size 256] [--steps 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_rate, setup

from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.formats.examples import encode_examples
from zeb_core.game.encoding import encode, pad_tokens
from zeb_core.learn.buffer import ReplayBuffer
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.step import TrainConfig, Trainer, forward_by_length, make_optimizer, policy_value_losses
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.store import open_store


def fill_buffer(buffer: ReplayBuffer, games: int, seed: int = 0) -> None:
    """Every non-forced position of `games` random games, with a uniform visit target and a random value."""
    gen = make_generator(seed)
    state = deal_benchmark(games, gen)
    while not bool(state.done().all()):
        legal = state.legal_mask()
        obs, slots = encode(state, legal=legal)
        keep = slots.sum(1) > 1
        obs, slots = pad_tokens(obs)[keep], slots[keep]
        policy = slots.float() / slots.sum(1, keepdim=True)
        value = torch.rand(obs.shape[0], generator=gen) * 2 - 1
        buffer.add(obs, slots, policy, value, model_step=0)
        state.apply(torch.multinomial(legal.float(), 1, generator=gen).squeeze(1))


def bare_steps(model: ZebNet, config: TrainConfig, buffer: ReplayBuffer, n: int, gen: torch.Generator) -> None:
    """The baseline: the least a training step can do."""
    optimizer = make_optimizer(model, config)
    model.train()
    for _ in range(n):
        b = buffer.sample(config.batch_size, gen)
        buckets = config.length_buckets if buffer.device.type == "cpu" else 1  # as Trainer.train_steps does
        logits, value, order = forward_by_length(model, b["obs"], b["legal"], buckets)
        b = {k: v[order] for k, v in b.items()}
        policy_loss, value_loss, _ = policy_value_losses(logits, value, b["legal"], b["policy"], b["value"])
        optimizer.zero_grad(set_to_none=True)
        (policy_loss + value_loss).backward()
        optimizer.step()
    if buffer.device.type == "cuda":
        torch.cuda.synchronize()


def ingest_rate(buffer: ReplayBuffer, files: int, size: str, device: str, threads: int = 4) -> tuple[float, int]:
    """(examples/s, examples) of one `Learner.ingest` of `files` new example files cut from `buffer`."""
    per_file = len(buffer) // files
    with tempfile.TemporaryDirectory() as tmp:
        url = f"file://{tmp}"
        settings = LearnerSettings(
            store=url,
            size=size,
            device=device,
            min_buffer_size=len(buffer) + 1,
            promote=False,
            replay_buffer_size=len(buffer) + 1,
            learner_id="bench",
            ingest_threads=threads,
        )
        lrn = Learner(settings, echo=lambda message: None)
        lrn.start()
        store = open_store(url)
        for i in range(files):
            rows = slice(i * per_file, (i + 1) * per_file)
            data, manifest = encode_examples(
                buffer.obs[rows].cpu(),
                buffer.legal[rows].cpu(),
                buffer.policy[rows].cpu(),
                buffer.value[rows].cpu(),
                model_step=0,
                worker_id=f"bench{i}",
                games=8,
            )
            store.upload_examples(data, manifest)
        t = time.perf_counter()
        got = lrn.ingest()
        seconds = time.perf_counter() - t
        lrn.close(push=False)
    return got["examples"] / seconds, int(got["examples"])


def bidnet_rate(hands: int, steps: int) -> float:
    """BidNet optimizer steps/s at the full-game learner's batch (512) on `hands` self-played hands' examples."""
    from zeb_core.fullgame.bidnet import BidNet
    from zeb_core.fullgame.bidtrain import BidBuffer, BidTrainer
    from zeb_core.fullgame.bidtrain import TrainConfig as BidConfig
    from zeb_core.fullgame.selfplay import play_hands
    from zeb_core.players.base import make_player

    torch.manual_seed(0)
    net = BidNet()
    examples, _ = play_hands(net, make_player("heuristic"), hands, make_generator(1))
    buffer = BidBuffer()
    buffer.add(examples)
    batch = 512  # BidLearning's batch_size
    trainer, gen = BidTrainer(net, BidConfig()), torch.Generator().manual_seed(0)

    def run(n: int) -> int:
        for _ in range(n):
            trainer.step(buffer.sample(batch, gen))
        return n

    run(2)  # warm-up
    return best_rate(lambda: run(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per timed run (best of 3)")
    parser.add_argument("--games", type=int, default=512, help="random games whose positions fill the buffer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ingest-files", type=int, default=16, help="example files in the ingest run")
    parser.add_argument("--ingest-threads", type=int, default=4, help="LearnerSettings.ingest_threads (default 4)")
    parser.add_argument("--bid-hands", type=int, default=256, help="self-played hands filling the BidNet's buffer")
    args = parser.parse_args()
    setup(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    buffer = ReplayBuffer(args.games * 32, device)
    fill_buffer(buffer, args.games)
    config = TrainConfig(batch_size=args.batch_size)
    torch.manual_seed(0)
    trainer = Trainer(ZebNet(ModelConfig.preset(args.size)), config, device)
    gen = torch.Generator(device).manual_seed(0)
    trainer.train_steps(buffer, 3, gen)  # warm-up (allocator, kernels)

    steps_per_s = best_rate(lambda: trainer.train_steps(buffer, args.steps, gen) and args.steps)
    torch.manual_seed(0)
    model = ZebNet(ModelConfig.preset(args.size)).to(device)
    bare_steps(model, config, buffer, 3, gen)
    bare_per_s = best_rate(lambda: bare_steps(model, config, buffer, args.steps, gen) or args.steps)

    print(f"train steps/s: {steps_per_s:.2f}")
    print(f"examples/s trained: {steps_per_s * args.batch_size:,.0f}")
    print(f"bare step steps/s (baseline): {bare_per_s:.2f}")
    print(f"metrics overhead: {bare_per_s / steps_per_s - 1:.0%}")
    print(f"buffer: {len(buffer):,} examples ({args.size}, batch {args.batch_size}, {device})")
    rate, examples = ingest_rate(buffer, args.ingest_files, args.size, device, args.ingest_threads)
    print(f"ingest examples/s: {rate:,.0f}")
    print(f"ingest run: {examples:,} examples in {args.ingest_files} files (list, read, validate, add to the buffer)")
    print(f"bidnet steps/s (batch 512): {bidnet_rate(args.bid_hands, max(4, args.steps // 3)):.2f}")


if __name__ == "__main__":
    main()
