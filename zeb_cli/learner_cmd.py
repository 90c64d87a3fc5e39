"""`zeb learner` and `zeb worker`: run the learner and self-play worker flows from the command line."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.mcts.config import SearchConfig

console = Console(stderr=True)
D = SearchConfig()


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def learner_cmd(
    store: Annotated[str, typer.Option("--store", "--repo-id", help="Weights store: file://DIR, hf://OWNER/REPO, s3://BUCKET/PREFIX.")],
    examples_repo_id: Annotated[str | None, typer.Option("--examples-repo-id", "--examples-url", help="Examples store, if not beside the weights (hf://OWNER/REPO is a dataset repo).")] = None,
    weights_name: Annotated[str, typer.Option("--weights-name", help="Namespace: weights NAME.*, examples under NAME/ (root for `model`).")] = DEFAULT_NAME,
    checkpoint: Annotated[str | None, typer.Option(help="Bootstrap checkpoint folder when the store has no weights for the namespace.")] = None,
    size: Annotated[str, typer.Option(help="Fresh model size when there is neither store weights nor --checkpoint: small, medium, large.")] = "medium",
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    warmup_steps: Annotated[int, typer.Option(help="Linear learning-rate warm-up over this many optimizer steps.")] = 0,
    cosine_steps: Annotated[int | None, typer.Option(help="Cosine decay to 0.1 x lr by this optimizer step (default: constant).")] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 64,
    replay_buffer_size: Annotated[int, typer.Option(help="Replay buffer capacity (examples, on the training device).")] = 200_000,
    training_steps_per_cycle: Annotated[int, typer.Option(help="Gradient steps per cycle.")] = 100,
    push_every: Annotated[int, typer.Option(help="Push weights every N cycles.")] = 25,
    eval_every: Annotated[int, typer.Option(help="Evaluate vs random and heuristic every N cycles.")] = 50,
    eval_games: Annotated[int, typer.Option(help="Games per evaluation match (team-symmetric).")] = 2000,
    prune_every: Annotated[int, typer.Option(help="Prune example files every N cycles.")] = 50,
    keep_example_files: Annotated[int, typer.Option(help="Example files kept by pruning (newest).")] = 15,
    min_buffer_size: Annotated[int, typer.Option(help="No training until the buffer holds this many examples.")] = 5000,
    max_model_lag: Annotated[int | None, typer.Option(help="Drop examples from models more than N steps behind.")] = None,
    replay_ratio: Annotated[float | None, typer.Option(help="Train at most this many samples per example received (waits for data beyond).")] = None,
    promote: Annotated[bool, typer.Option(help="Promote to NAME-best when a new model beats the best (SPRT).")] = True,
    run_name: Annotated[str | None, typer.Option(help="W&B display name (default: the namespace).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    cycles: Annotated[int, typer.Option(help="Cycles in this run (then it stops; a deployment starts the next).")] = 1_000_000,
    minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for a fresh model and for sampling.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    value_target: Annotated[str, typer.Option(help="Value target the learner trains (points, points-margin or contract); example files labelled for another are refused and counted.")] = D.value_target,
    learner_id: Annotated[str | None, typer.Option(help="Lease holder id (default: host and a random suffix). A restart with the same id takes its own lease back at once instead of waiting for it to expire.")] = None,
) -> None:
    """Train from the examples the workers upload; resumes from the store, one learner per namespace."""
    from zeb_core.store import LeaseHeld, StoreError

    _threads(threads)
    logging.basicConfig(level=logging.WARNING)
    from flows.learner import learner

    try:
        summary = learner(
            store=store, name=weights_name, examples_url=examples_repo_id, checkpoint=checkpoint, size=size, lr=lr,
            warmup_steps=warmup_steps, cosine_steps=cosine_steps, batch_size=batch_size, replay_buffer_size=replay_buffer_size, training_steps_per_cycle=training_steps_per_cycle,
            push_every=push_every, eval_every=eval_every, eval_games=eval_games, prune_every=prune_every,
            keep_example_files=keep_example_files, min_buffer_size=min_buffer_size, max_model_lag=max_model_lag,
            replay_ratio=replay_ratio, promote=promote, device=device, run_name=run_name, seed=seed, cycles=cycles, minutes=minutes,
            continue_as_new=False, learner_id=learner_id, value_target=value_target,
        )
    except LeaseHeld as exc:
        _fail(str(exc), 3)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"learner stopped at step {summary['step']} ({summary['total_games']:,} games)")


def worker_cmd(
    store: Annotated[str, typer.Option("--store", "--repo-id", help="Weights store: file://DIR, hf://OWNER/REPO, s3://BUCKET/PREFIX.")],
    examples_repo_id: Annotated[str | None, typer.Option("--examples-repo-id", "--examples-url", help="Examples store, if not beside the weights.")] = None,
    weights_name: Annotated[str, typer.Option("--weights-name", help="Namespace (must match the learner's).")] = DEFAULT_NAME,
    worker_id: Annotated[str | None, typer.Option(help="Worker id in file names (default: host and a random suffix).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    games_per_batch: Annotated[int, typer.Option(help="Games played in parallel per batch (one example file per batch).")] = 64,
    batches: Annotated[int, typer.Option(help="Batches to play; 0 runs until stopped.")] = 0,
    reload_every: Annotated[int, typer.Option(help="Check for newer weights every N batches.")] = 1,
    follow: Annotated[str, typer.Option(help="Weights to play with: latest or best.")] = "latest",
    sims: Annotated[int, typer.Option("--sims", help="Simulations per searched move.")] = D.simulations,
    max_nodes: Annotated[int, typer.Option(help="Nodes per search tree.")] = D.max_nodes,
    worlds: Annotated[int, typer.Option(help="Hidden-hand worlds sampled per move.")] = D.worlds,
    c_puct: Annotated[float, typer.Option(help="PUCT exploration weight.")] = D.c_puct,
    temperature: Annotated[float, typer.Option(help="Move sampling temperature on visit counts.")] = D.temperature,
    greedy_after: Annotated[int, typer.Option(help="Plays after which moves are greedy.")] = D.greedy_after,
    dirichlet_alpha: Annotated[float, typer.Option(help="Root noise alpha.")] = D.dirichlet_alpha,
    dirichlet_fraction: Annotated[float, typer.Option(help="Root noise share (0 disables).")] = D.dirichlet_fraction,
    clairvoyant: Annotated[bool, typer.Option(help="Search the true deal (mk5-main forge/zeb's way; comparison only).")] = False,
    policy_target: Annotated[str, typer.Option(help="Example policy target: improved (prior tilted by the searched Q values) or visits (root visit shares, as mk5-main forge/zeb).")] = D.policy_target,
    value_target: Annotated[str, typer.Option(help="Value target: points (the benchmark: more than 21 points), points-margin (same sign, margin-shaped) or contract.")] = D.value_target,
    teacher: Annotated[str, typer.Option(help="Who labels the examples: mcts (the search) or solver (exact solutions of the true deal; the network only picks the moves).")] = D.teacher,
    outbox: Annotated[str | None, typer.Option(help="Folder for finished batches until the store has them (default: under $ZEB_OUTBOX_DIR, else ~/.cache/zeb/outbox).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
) -> None:
    """Generate self-play examples and upload them; never loses a finished batch (local outbox)."""
    from zeb_core.store import StoreError

    _threads(threads)
    from flows.selfplay_worker import selfplay_worker

    try:
        reports = selfplay_worker(
            store=store, name=weights_name, examples_url=examples_repo_id, worker_id=worker_id, device=device,
            games_per_batch=games_per_batch, batches=batches, reload_every=reload_every, follow=follow,
            simulations=sims, max_nodes=max_nodes, worlds=worlds, c_puct=c_puct, temperature=temperature,
            greedy_after=greedy_after, dirichlet_alpha=dirichlet_alpha, dirichlet_fraction=dirichlet_fraction,
            clairvoyant=clairvoyant, policy_target=policy_target, value_target=value_target, teacher=teacher,
            outbox=outbox,
        )
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    games = sum(r["games"] for r in reports)
    console.print(f"worker stopped after {len(reports)} batches ({games:,} games)")
