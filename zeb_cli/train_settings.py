"""`zeb train`'s own settings: the one definition (name, type, default, help) of its options.

`zeb learner` and `zeb worker` take their options from LearnerSettings and WorkerSettings; `zeb train` takes its
own from TrainSettings, the same way (zeb_cli/settings_options.py: each field's docstring is its --help text), and
turns them into the learner's and the workers' settings (zeb_cli/train_cmd.py). Unlike those two it has no
--settings-json: a run is its options, and the settings files it writes are its processes'.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from zeb_cli.consoles import fail
from zeb_cli.prefect_server import HOST
from zeb_cli.settings_options import model_settings, validation_message


class TrainSettings(BaseModel):
    """Everything `zeb train` is told: the run, its budget, its model and its workers' search; the learner's and
    the workers' settings are made from these (zeb_cli/train_cmd.py)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = "default"
    """Run name: the store lives in RUNS_DIR/NAME."""
    minutes: float | None = None
    """Wall-clock budget for this invocation (default 20 unless --games is given)."""
    games: int | None = None
    """Stop once the learner has trained on this many more games (with --minutes too: whichever comes first)."""
    workers: int | None = None
    """Self-play worker processes (default: one per GPU, else one per 2 CPU cores)."""
    size: str = "small"
    """Model size for a fresh run: small, medium, large."""
    device: str = "auto"
    """cpu, cuda or auto."""
    sims: int = 32
    """Simulations per searched move."""
    worlds: int = 8
    """Hidden-hand worlds per move (the search's, or the teachers' average)."""
    max_nodes: int = 64
    """Nodes per search tree."""
    policy_target: str = "improved"
    """Self-play policy target: improved (prior tilted by the searched Q values) or visits (mk5-main forge/zeb's)."""
    value_target: str = "points"
    """Value target: points (the benchmark: more than 21 points), points-margin, contract (the bid made or set,
    margin-shaped; --full-game's default) or contract-sign (its sign: the solver teacher labels it with threshold
    searches instead of exact points, faster)."""
    teacher: str = "solver"
    """Who labels the examples: solver (every position solved exactly in --worlds deals: the true one and uniform
    samples; the network picks the moves), posterior (the same, the samples weighted by the current network's
    likelihood of the other seats' plays), rollout (the same games, each position's moves valued by rollouts of the
    current network in --worlds deals weighted by its likelihood of the other seats' plays, the solver finishing the
    last tricks: a teacher that improves with the network), schedule (solver until the weights were trained on
    SearchConfig.handover_games games, rollout after) or mcts (the search)."""
    handover_games: int | None = None
    """--teacher schedule: games the weights were trained on before rollouts take over from the solver (default:
    SearchConfig's)."""
    handover_teacher: str | None = None
    """--teacher schedule: who takes over from the solver, rollout or posterior (default: rollout)."""
    rollout_share: float | None = None
    """--teacher rollout/schedule: share of the non-forced positions labelled by rollouts, the rest by the solver
    (default: SearchConfig's)."""
    rollout_candidates: int | None = None
    """--teacher rollout/posterior/schedule: uniform candidate worlds per world kept, weighted by the network's
    likelihood of the other seats' plays; 1 keeps uniform worlds (default: SearchConfig's)."""
    games_per_batch: int = 32
    """Games per worker batch (one example file each)."""
    lr: float = 1e-3
    """Learning rate."""
    batch_size: int = 256
    """Training batch size."""
    replay_buffer_size: int = 100_000
    """Replay buffer capacity."""
    training_steps_per_cycle: int = 10
    """Gradient steps per cycle."""
    replay_ratio: float = 8.0
    """Trained samples per example received, at most."""
    min_buffer_size: int = 2000
    """Examples before training starts."""
    eval_every: int = 20
    """Evaluate every N cycles."""
    eval_games: int = 1000
    """Games per evaluation during training."""
    final_eval_games: int = 4000
    """Games per opponent in the final report."""
    runs_dir: Path = Path("runs")
    """Where runs live."""
    seed: int = 0
    """Seed of a fresh model."""
    max_model_lag: int | None = None
    """Drop (and count) examples played with weights more than N learner steps old (default: twice what a worker
    that refreshes its weights can trail by; see default_max_model_lag)."""
    full_game: bool = False
    """The full game: workers deal and bid with the learner's BidNet (namespace NAME-bid) and play the real
    contracts (value target contract; the teacher's worlds weighted by the auction); the learner trains the BidNet
    too; the report adds full-game matches."""
    full_game_eval_games: int = 200
    """With --full-game: games to 7 marks per opponent in the final report."""
    bid_hands_per_batch: int | None = None
    """With --full-game: hands dealt, bid and labelled under all ten declarations per worker batch (default:
    WorkerSettings.bid_hands_per_batch; fewer: more games a minute, fewer bid examples)."""
    bid_replay_ratio: float | None = None
    """With --full-game: BidNet samples trained per bid example received, at most (default:
    LearnerSettings.bid_replay_ratio)."""
    prefect_server_timeout: float = 120.0
    """Seconds the run's local Prefect server (its UI) may take to become healthy; past that the run goes on
    without it, each process its own temporary Prefect. 0: no server. Unused when PREFECT_API_URL is set."""
    prefect_host: str = HOST
    """Address the run's Prefect server (its UI) listens on: 127.0.0.1, this machine only; 0.0.0.0 or one of this
    machine's addresses to open the UI to others, and then its API requires a password:
    PREFECT_SERVER_API_AUTH_STRING (user:password) when set, else a new one, printed here."""


TRAIN_FLAGS: dict[str, tuple[str, ...]] = {"full_game": ("--full-game",)}  # a switch: no --no-full-game


def train_command(fn: Callable[[TrainSettings], None]) -> Callable[..., None]:
    """`fn` as a typer command whose options are TrainSettings' fields (model_settings: their names with -, types,
    defaults and docstrings), in the model's order; the command's help is fn's docstring."""
    params = [
        inspect.Parameter(
            s.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=s.default,
            annotation=Annotated[s.annotation, typer.Option(*s.flags, help=s.help)],  # no flags: typer's --name-dashed
        )
        for s in model_settings(TrainSettings, TRAIN_FLAGS)
    ]

    def command(**values: Any) -> None:
        try:
            settings = TrainSettings(**values)
        except ValidationError as exc:
            fail(validation_message(exc))
            raise
        fn(settings)

    command.__dict__["__signature__"] = inspect.Signature(params)  # what inspect.signature, so typer, reads
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__, command.__name__ = fn.__doc__, fn.__name__
    return command
