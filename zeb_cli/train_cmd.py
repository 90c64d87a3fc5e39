"""`zeb train`: the one-machine pipeline. A local store under ./runs/NAME, one learner and W self-play workers as
separate processes (each a Prefect flow), one local Prefect server for all of them whose UI shows the run live
(`zeb ui` reopens it later), rich progress, a budget in minutes or games, and at the end an evaluation report with
intervals, the training curve, the best weights and how to play against them.

Prefect: PREFECT_API_URL (or the active profile's API) when the user set one; else a `prefect server start` of this
run (zeb_cli/prefect_server.py); and when that does not come up in time, each process its own temporary Prefect,
as before, with one line saying so.

Ctrl-C stops everything cleanly (workers finish their batch and upload it, the learner pushes); running the
same command again continues where it stopped.

Its options are TrainSettings' fields (zeb_cli/train_settings.py). `train` runs its steps top to bottom: the
settings (`_plan`: every value resolved and checked, the learner's and the workers' made, before anything is
written), the run folder (`_open_run`), the Prefect server (`_prefect`), the processes (`Pipeline`), the watch
(`_watch`) and the report (`_report`, `_full_game_report`, `_afterwards`).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zeb_cli.consoles import make_console
from zeb_cli.prefect_server import (
    CLOUD_API,
    HOST,
    LocalPrefectServer,
    PrefectServerError,
    configured_api_url,
    healthy,
    ui_url_for,
)
from zeb_cli.train_settings import TrainSettings, train_command

if TYPE_CHECKING:
    from zeb_core.learn.learner import LearnerSettings
    from zeb_core.mcts import SearchConfig
    from zeb_core.selfplay.worker import WorkerSettings

console = make_console(stderr=True)
out = make_console()
STOP_GRACE_S = 180.0
DEFAULT_MINUTES = 20.0
PUSH_EVERY = 2  # the learner's --push-every here: workers see new weights every 2 cycles
EXAMPLES_PER_GAME = 20  # searched (non-forced) moves of a hand, roughly; each is one example


def default_max_model_lag(
    workers: int, games_per_batch: int, replay_ratio: float, samples_per_cycle: int, replay_buffer_size: int
) -> int:
    """Learner steps a healthy worker's examples may trail the learner by, doubled and at least 50.

    A worker plays a batch with the newest weights, at most PUSH_EVERY steps old. While it plays, the replay
    ratio lets the learner take one step per `samples_per_cycle / replay_ratio` examples that arrive: the other
    workers' batches, about `workers` x `steps_per_batch` steps. A restarted learner also holds a credit of its
    rebuilt buffer (`replay_buffer_size` x ratio samples) that it may spend before any new example arrives.
    The sum is the most a refreshing worker trails by; a worker that stops refreshing its weights trails without
    bound and its examples are dropped (and counted) once past twice that.
    """
    steps_per_batch = games_per_batch * EXAMPLES_PER_GAME * replay_ratio / samples_per_cycle
    credit = replay_buffer_size * replay_ratio / samples_per_cycle
    return max(50, int(2 * (PUSH_EVERY + credit + workers * steps_per_batch)) + 1)


@dataclass
class Pipeline:
    run_dir: Path
    learner_args: list[str]
    worker_args: list[list[str]]
    env: dict[str, str]
    lock_fd: int = -1  # the run lock, inherited by every child (see `_lock_run`)
    prefect_homes: bool = True  # each process its own PREFECT_HOME in the run (not where the user's profile is)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._spawn("learner", self.learner_args, logs)
        for i, args in enumerate(self.worker_args):
            self._spawn(f"worker-{i}", args, logs)

    def _spawn(self, role: str, args: list[str], logs: Path) -> None:
        env = dict(self.env)
        if self.prefect_homes:  # the run's own server, or serverless (each process its own SQLite)
            home = (self.run_dir / "prefect" / role).resolve()
            home.mkdir(parents=True, exist_ok=True)
            env["PREFECT_HOME"] = str(home)
        if "PREFECT_API_URL" not in env:  # serverless: Prefect's temporary server, in this child's own session
            env["ZEB_PREFECT_TEMPORARY"] = "1"
        log = open(logs / f"{role}.log", "ab")  # noqa: SIM115 - the child process writes to it for its lifetime
        self.procs[role] = subprocess.Popen(
            [sys.executable, "-m", "zeb_cli.main", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C reaches us only; we stop the children in order
            pass_fds=(self.lock_fd,) if self.lock_fd >= 0 else (),
        )

    def dead(self) -> list[tuple[str, int]]:
        return [(role, p.returncode) for role, p in self.procs.items() if p.poll() is not None]

    def stop(self) -> None:
        """Workers first (they finish and upload their batch), then the learner (it pushes and releases)."""
        workers = [r for r in self.procs if r != "learner"]
        for group in (workers, ["learner"]):
            for role in group:
                if self.procs[role].poll() is None:
                    self.procs[role].send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for role in group:
                proc = self.procs[role]
                try:
                    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    console.print(f"[yellow]{role} did not stop within {STOP_GRACE_S:.0f}s; killing it[/]")
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _lock_run(run_dir: Path) -> int:
    """Take the run's lock, or fail: one `zeb train` per run folder.

    The lock (flock on RUN/.zeb-train.lock) is passed on to the learner and workers, so it is held until the last
    of them exits, even when this process was killed and left them running. That makes a fixed learner id safe: a
    restart after a kill takes the learner's lease back at once instead of waiting for it to expire, and can never
    run beside an orphaned learner of the same run.
    """
    fd = os.open(run_dir / ".zeb-train.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        _fail(
            f"another `zeb train` (or a learner, worker or Prefect server it started) is still running on "
            f"{run_dir}; stop it first (see `ps -ef | grep -e zeb_cli -e 'prefect server'`) or use another --name"
        )
    return fd


def _settings_file(run_dir: Path, role: str, settings: Any) -> str:
    """Write a process's settings (a pydantic model) as RUN/settings/ROLE.json; its path, for --settings-json."""
    folder = run_dir / "settings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{role}.json"
    path.write_text(settings.model_dump_json(indent=2) + "\n")
    return str(path.resolve())


def _state(store: Any) -> dict[str, Any]:
    from zeb_core.store import StoreError

    try:
        return store.peek_state() or {}
    except StoreError:
        return {}


def train(settings: TrainSettings) -> None:
    """Train from scratch (or continue) on this machine: a learner and self-play workers, then a report."""
    plan = _plan(settings)
    s = plan.train
    pipeline, store = _open_run(plan)
    start_games = _announce(plan, store)
    curve: dict[int, dict[str, float]] = {}
    interrupted = False
    server: LocalPrefectServer | None = None
    ui: str | None = None
    started = time.time()
    _stop_on_signals()
    try:
        server, ui, pipeline.prefect_homes = _prefect(
            plan.run_dir, plan.env, pipeline.lock_fd, s.prefect_server_timeout, s.prefect_host
        )
        pipeline.start()
        _watch(pipeline, store, s.minutes, s.games, start_games, curve)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]stopping: workers finish their batch, the learner pushes...[/]")
    finally:
        pipeline.stop()
        if server is not None and server.owned:  # after the learner: its last states and logs reach it
            server.stop()
    _report(store, plan.run_dir, curve, s.final_eval_games, plan.eval_device, interrupted)
    if s.full_game:
        _full_game_report(plan.run_dir, s.full_game_eval_games, plan.eval_device)
    _afterwards(plan.run_dir, plan.env, ui if server is None else None, server is not None, started)


train_cmd = train_command(train)  # `zeb train`: its options are TrainSettings' fields


@dataclass
class Plan:
    """A run's every setting, resolved and checked before anything is written: `zeb train`'s own (the budget and
    the full game's value target filled in), and the learner's and the workers' that they become."""

    train: TrainSettings
    run_dir: Path
    url: str  # the run's store, file://RUN
    gpu: bool
    threads: str  # each process's --threads
    env: dict[str, str]  # the processes' environment
    learner: LearnerSettings
    workers: list[WorkerSettings]

    @property
    def eval_device(self) -> str:
        """Where the final report plays its matches."""
        return self.train.device if self.gpu else "cpu"


def _plan(settings: TrainSettings) -> Plan:
    """Every setting resolved and checked, the learner's and the workers' included, before anything is written:
    a bad value ends the command with its reason and leaves no run folder behind."""
    s = _resolve(settings)
    search = _search(s)
    gpu, n_workers = _hardware(s)
    run_dir = s.runs_dir / s.name
    url = f"file://{run_dir.resolve()}"
    env = _env(run_dir)
    learner, workers = _process_settings(s, run_dir, url, n_workers, search)
    return Plan(s, run_dir, url, gpu, "1" if not gpu else "2", env, learner, workers)


def _resolve(settings: TrainSettings) -> TrainSettings:
    """The settings with the budget filled in (20 minutes unless --games is given) and, for the full game, its value
    target (contract where the option's default, points, was left: making the bid is what scores), checked."""
    from zeb_core.engine.state import check_full_game_target

    update: dict[str, Any] = {}
    if settings.minutes is None and settings.games is None:
        update["minutes"] = DEFAULT_MINUTES
    if settings.full_game:
        if settings.value_target == "points":
            update["value_target"] = "contract"
        try:
            check_full_game_target(update.get("value_target", settings.value_target))
        except ValueError as exc:
            _fail(str(exc))
    s = settings.model_copy(update=update)
    if (s.minutes is not None and s.minutes <= 0) or (s.games is not None and s.games <= 0):
        _fail("--minutes and --games must be positive")
    return s


def _search(s: TrainSettings) -> SearchConfig:
    """The workers' search settings, checked here rather than in a worker that dies on them; the options left
    unset keep SearchConfig's defaults."""
    from zeb_core.mcts import SearchConfig

    unless_unset: dict[str, Any] = {
        "handover_games": s.handover_games,
        "handover_teacher": s.handover_teacher,
        "rollout_share": s.rollout_share,
        "rollout_candidates": s.rollout_candidates,
    }
    try:
        return SearchConfig(
            simulations=s.sims,
            worlds=s.worlds,
            max_nodes=s.max_nodes,
            policy_target=s.policy_target,
            value_target=s.value_target,
            teacher=s.teacher,
            auction_worlds=s.full_game,  # a real auction chose the bid and the trump: the worlds follow it
            **{k: v for k, v in unless_unset.items() if v is not None},
        )
    except ValueError as exc:
        _fail(str(exc))


def _hardware(s: TrainSettings) -> tuple[bool, int]:
    """Whether the run uses the GPU, and how many workers it starts (--workers, else one per GPU, else one per 2
    CPU cores); a --device cuda on a machine without one ends the command."""
    import torch

    if s.device.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"--device {s.device}: this machine has no CUDA GPU (use cpu or auto)")
    gpu = s.device != "cpu" and torch.cuda.is_available()
    cores = os.cpu_count() or 2
    n_workers = s.workers or (torch.cuda.device_count() if gpu else max(1, cores // 2))
    if n_workers < 1:
        _fail("--workers must be >= 1")
    return gpu, n_workers


def _env(run_dir: Path) -> dict[str, str]:
    """The processes' environment: ours, with Prefect's analytics off and its temporary server given time, W&B
    writing into the run folder (offline unless WANDB_API_KEY is set) and output unbuffered, for the logs."""
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "WANDB_DIR": str(run_dir.resolve()),
        "PYTHONUNBUFFERED": "1",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
    }
    env.setdefault("WANDB_MODE", "offline" if not os.environ.get("WANDB_API_KEY") else "online")
    return env


def _process_settings(
    s: TrainSettings, run_dir: Path, url: str, n_workers: int, search: SearchConfig
) -> tuple[LearnerSettings, list[WorkerSettings]]:
    """The learner's and the workers' settings, as the models they read (checked here rather than in a process
    that dies): the run's store, a learner id fixed per run (see `_lock_run`), a worker id per worker."""
    from zeb_core.learn.learner import LearnerSettings
    from zeb_core.selfplay.worker import WorkerSettings

    max_model_lag = s.max_model_lag
    if max_model_lag is None:
        max_model_lag = default_max_model_lag(
            n_workers, s.games_per_batch, s.replay_ratio, s.training_steps_per_cycle * s.batch_size,
            s.replay_buffer_size,
        )  # fmt: skip
    host = socket.gethostname()
    learner_given: dict[str, Any] = {} if s.bid_replay_ratio is None else {"bid_replay_ratio": s.bid_replay_ratio}
    worker_given: dict[str, Any] = (
        {} if s.bid_hands_per_batch is None else {"bid_hands_per_batch": s.bid_hands_per_batch}
    )
    try:
        learner = LearnerSettings(
            store=url,
            size=s.size,
            device=s.device,
            lr=s.lr,
            batch_size=s.batch_size,
            replay_buffer_size=s.replay_buffer_size,
            training_steps_per_cycle=s.training_steps_per_cycle,
            replay_ratio=s.replay_ratio,
            min_buffer_size=s.min_buffer_size,
            push_every=PUSH_EVERY,
            eval_every=s.eval_every,
            eval_games=s.eval_games,
            prune_every=50,
            keep_example_files=2000,
            run_name=s.name,
            seed=s.seed,
            value_target=s.value_target,
            max_model_lag=max_model_lag,
            learner_id=f"{host}-train-{s.name}",
            full_game=s.full_game,
            **learner_given,
        )
        workers = [
            WorkerSettings(
                store=url,
                worker_id=f"{host}-w{i}",
                device=s.device,
                games_per_batch=s.games_per_batch,
                outbox=str((run_dir / "outbox").resolve()),
                search=search,
                full_game=s.full_game,
                **worker_given,
            )
            for i in range(n_workers)
        ]
    except ValueError as exc:
        _fail(str(exc))
    return learner, workers


def _open_run(plan: Plan) -> tuple[Pipeline, Any]:
    """The run folder (only now, once every setting is valid), its lock, its store and the processes' settings
    files: the learner and the workers, ready to start, and the store the watch and the report read."""
    from zeb_core.store import open_store

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = _lock_run(plan.run_dir)
    store = open_store(plan.url)
    learner_args = [
        "learner",
        "--settings-json",
        _settings_file(plan.run_dir, "learner", plan.learner),
        "--threads",
        plan.threads,
    ]
    worker_args = [
        ["worker", "--settings-json", _settings_file(plan.run_dir, f"worker-{i}", ws), "--threads", plan.threads]
        for i, ws in enumerate(plan.workers)
    ]
    return Pipeline(plan.run_dir, learner_args, worker_args, plan.env, lock_fd), store


def _announce(plan: Plan, store: Any) -> int:
    """One line on the run (its store, its workers, fresh or continued, its logs); the games trained on so far,
    from which --games counts this invocation's."""
    start_state = _state(store)
    s = plan.train
    console.print(
        f"[bold]zeb train[/] {s.name}: store {plan.url}, {len(plan.workers)} worker(s) on "
        f"{'cuda' if plan.gpu else 'cpu'}, "
        f"{'continuing from step ' + str(start_state.get('step')) if start_state else 'fresh ' + s.size + ' model'}; "
        f"logs in {plan.run_dir / 'logs'}; Ctrl-C stops cleanly"
    )
    return int(start_state.get("total_games", 0))


def _stop_on_signals() -> None:
    """`kill PID` stops as cleanly as Ctrl-C; and Ctrl-C works even when started with SIGINT ignored (a background
    job of a script, nohup): Python then installs no KeyboardInterrupt handler of its own."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _prefect(
    run_dir: Path, env: dict[str, str], lock_fd: int, timeout_s: float, host: str = HOST
) -> tuple[LocalPrefectServer | None, str | None, bool]:
    """Where the run's flows report: (the run's server or None, the UI's URL or None, per-process homes?).

    The user's API (PREFECT_API_URL, or their profile's) first; then a server of this run that is already up (a
    `zeb ui`); then a new one on `host`, which inherits the run lock like the other children; else serverless,
    said once. A server with an auth string (always, beyond loopback) gives it to the children in `env`.
    """
    user_api = configured_api_url()
    if user_api:
        if not user_api.startswith(CLOUD_API) and not healthy(user_api, timeout_s=10.0):
            _fail(
                f"PREFECT_API_URL {user_api} does not answer ({user_api}/health); start that server, or unset "
                f"PREFECT_API_URL (and `prefect config unset PREFECT_API_URL`) for the run's own server"
            )
        env["PREFECT_API_URL"] = user_api
        ui = ui_url_for(user_api)
        console.print(f"Prefect: PREFECT_API_URL {user_api}; the run's flows are at {ui}/runs")
        return None, ui, False
    if timeout_s <= 0:
        return None, None, True
    home = run_dir / "prefect" / "server"
    server = LocalPrefectServer.running(home)
    if server is not None:
        console.print("using the Prefect server already up on this run (a `zeb ui`: keep it open until the end)")
        if server.host != host:
            _fail(
                f"the run's Prefect server is up already on {server.host} (a `zeb ui`); stop it to start one on "
                f"{host}, or leave out --prefect-host"
            )
    else:
        server = LocalPrefectServer(
            home,
            log_path=run_dir / "logs" / "prefect-server.log",
            host=host,
            auth_string=os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or None,
        )
        console.print(f"starting the run's Prefect server (UI) on {server.ui_url} ...")
        try:
            server.start(timeout_s, base_env=env, pass_fds=(lock_fd,) if lock_fd >= 0 else ())
        except PrefectServerError as exc:
            console.print(
                f"[yellow]no Prefect UI for this run: {exc}; going on without a server (each process "
                f"its own temporary Prefect, as `--prefect-server-timeout 0` does)[/]"
            )
            return None, None, True
    env["PREFECT_API_URL"] = server.api_url
    if server.auth_string:
        env["PREFECT_API_AUTH_STRING"] = server.auth_string
    console.print(
        f"[bold]Prefect UI:[/] {server.ui_url}/runs   (the learner's cycles and the workers' batches, "
        f"live; `zeb ui --name {run_dir.name}` reopens it later)",
        highlight=False,
    )
    if server.auth_string:
        console.print(
            f"its API requires a password; the UI asks for it: [bold]{escape(server.auth_string)}[/]   "
            f"(a Prefect client: PREFECT_API_URL={server.ui_url}/api PREFECT_API_AUTH_STRING=THAT; "
            f"kept in {home / 'server.json'})",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
    return server, server.ui_url, True


def _afterwards(run_dir: Path, env: dict[str, str], user_ui: str | None, own_server: bool, started: float) -> None:
    """Where the run's history is: the Prefect UI, and how to send an offline W&B run to an account."""
    if own_server:
        runs_dir = run_dir.parent
        flag = "" if runs_dir == Path("runs") else f" --runs-dir {runs_dir}"
        out.print(f"Prefect history:    zeb ui --name {run_dir.name}{flag}   (flow runs, tasks, logs, artifacts)")
    elif user_ui:
        out.print(f"Prefect history:    {user_ui}/runs")
    if env.get("WANDB_MODE") == "offline":
        found = sorted((run_dir / "wandb").glob("offline-run-*"), key=lambda p: p.stat().st_mtime)
        fresh = [p for p in found if p.stat().st_mtime >= started - 1] or found[-1:]
        if fresh:
            out.print(
                f"W&B is offline; to send this run to your account: wandb login, then "
                f"wandb sync {' '.join(str(p) for p in fresh)}",
                highlight=False,
            )


def _watch(
    pipeline: Pipeline,
    store: Any,
    minutes: float | None,
    games: int | None,
    start_games: int,
    curve: dict[int, dict[str, float]],
) -> None:
    t0 = time.monotonic()
    by_games = games is not None
    total = float(games) if games is not None else 60 * float(minutes or 0)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("training", total=total, info="starting Prefect and the processes...")
        while True:
            time.sleep(2.0)
            dead = pipeline.dead()
            if any(role == "learner" for role, _ in dead):
                raise typer.Exit(_died(pipeline, "learner"))
            for role, code in dead:
                if code != 0:
                    raise typer.Exit(_died(pipeline, role))
            state = _state(store)
            step = int(state.get("step", 0))
            total_games = int(state.get("total_games", 0))
            ev = state.get("last_eval") or {}
            if state:
                curve[step] = {
                    "step": step,
                    "games": total_games,
                    **(state.get("last_metrics") or {}),
                    **({k: v for k, v in ev.items() if k.startswith("eval/")} if ev.get("step") == step else {}),
                }
            info = f"step {step}  games {total_games:,}"
            if ev:
                info += f"  vs random {ev.get('eval/vs_random_win_rate', 0):.1%} (step {ev.get('step')})"
            elapsed = time.monotonic() - t0
            done = total_games - start_games if by_games else elapsed
            progress.update(task, completed=min(done, total), info=info)
            if done >= total or (minutes is not None and elapsed >= 60 * minutes):
                return


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _died(pipeline: Pipeline, role: str) -> int:
    log = pipeline.run_dir / "logs" / f"{role}.log"
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    console.print(f"[bold red]{role} stopped unexpectedly[/]; last lines of {log}:")
    for line in tail:
        console.print(f"  {line}", markup=False, highlight=False)
    return 1


def _report(
    store: Any, run_dir: Path, curve: dict[int, dict[str, float]], games: int, device: str, interrupted: bool
) -> None:
    import torch

    from zeb_core.evaluation.strength import (
        BASELINES,
        EXPERT,
        EXPERT_REPORT_GAMES,
        benchmark,
        interval_text,
        percent,
        score,
    )
    from zeb_core.learn.learner import loss_text
    from zeb_core.model.checkpoint import model_from_bundle
    from zeb_core.ops.curves import training_curve_png
    from zeb_core.players.builtin import PolicyPlayer

    bundle = store.pull_weights()
    if bundle is None:
        console.print("no weights were pushed yet; nothing to evaluate")
        return
    points = sorted(curve.values(), key=lambda r: r["step"])
    if points:
        table = Table(
            "step", "games", "policy loss", "q loss", "value loss", "vs random", "vs heuristic", title="training curve"
        )
        for row in points:
            if "eval/vs_random_win_rate" in row or row is points[-1]:
                table.add_row(
                    str(row["step"]),
                    f"{row['games']:,}",
                    loss_text(row.get("train/policy_loss"), 3),
                    loss_text(row.get("train/q_loss"), 3),
                    loss_text(row.get("train/value_loss"), 3),
                    f"{row['eval/vs_random_win_rate']:.1%}" if "eval/vs_random_win_rate" in row else "",
                    f"{row['eval/vs_heuristic_win_rate']:.1%}" if "eval/vs_heuristic_win_rate" in row else "",
                )
        out.print(table)
        png = run_dir / "curve.png"
        png.write_bytes(training_curve_png(points, title=f"{run_dir.name}"))
        console.print(f"curve plot: {png}")
    contenders = [("latest", bundle)]
    try:
        best_bundle = store.pull_weights(which="best")
    except Exception:  # noqa: BLE001 - the report goes on with the newest weights
        best_bundle = None
    if best_bundle is not None and best_bundle.step != bundle.step:
        contenders.append(("best", best_bundle))
    table = Table("player", "opponent", "games", "win rate", "95% CI", title=f"final evaluation ({games} games each)")
    scores: dict[str, float] = {}
    players: dict[str, PolicyPlayer] = {}
    for label, b in contenders:
        player = PolicyPlayer(model_from_bundle(b, device), torch.device(device), name=f"{label} (step {b.step})")
        players[label] = player
        results = benchmark(player, BASELINES, games, device=device)
        for opponent, r in zip(BASELINES, results, strict=True):
            table.add_row(r.player_a, opponent, str(r.games), percent(r.win_rate), interval_text(r.ci_low, r.ci_high))
        scores[label] = score(results)
    strongest = max(scores, key=scores.__getitem__)  # by the benchmark, on the same deals
    # The strongest against the exact-solver expert too, on a tenth of the games (it is slow); not after a Ctrl-C,
    # where the user is waiting for the run to end.
    expert_games = min(EXPERT_REPORT_GAMES, games // 10)
    if expert_games >= 2 and not interrupted:
        r = benchmark(players[strongest], [EXPERT], expert_games, device=device)[0]
        table.add_row(r.player_a, EXPERT, str(r.games), percent(r.win_rate), interval_text(r.ci_low, r.ci_high))
    out.print(table)
    weights = run_dir / "weights"
    target = weights / ("model-best.safetensors" if strongest == "best" else "model.safetensors")
    out.print(f"strongest weights ({strongest}, mean win rate {scores[strongest]:.1%}): {target}")
    out.print(  # the rollout player: the same weights searched (level with pimc, where the policy alone is not)
        f"play against them:  zeb serve --player rollout:path={target}   (then open http://127.0.0.1:8042/; "
        f"policy:path=... for the network's move alone)",
        soft_wrap=True,
    )
    out.print(f"match them:         zeb eval policy:path={target} vs heuristic --games 4000")
    out.print(
        f"continue training:  zeb train --name {run_dir.name}" + ("   (stopped early by Ctrl-C)" if interrupted else "")
    )


def _full_game_report(run_dir: Path, games: int, device: str) -> None:
    """The run's BidNet and newest play network in games to 7 marks against the baseline bidders."""
    from zeb_core.evaluation.strength import interval_text, percent
    from zeb_core.fullgame.bidders import BIDDERS, make_full_game_player
    from zeb_core.fullgame.match import play_full_match

    weights = run_dir / "weights"
    bidnet, model = weights / "model-bid.safetensors", weights / "model.safetensors"
    if games < 2 or not bidnet.exists() or not model.exists():
        console.print("no BidNet and play weights to evaluate in full games")
        return
    spec = f"net:path={bidnet}+policy:path={model}"
    bidder_kind = lambda spec: spec.split("+")[0].split(":")[0]
    opponents = [s for s in ("baseline+heuristic", "random:pass=0.5+heuristic") if bidder_kind(s) in BIDDERS]
    table = Table("player", "opponent", "games", "game win rate", "95% CI", "marks/hand", "bids made",
                  title=f"full games to 7 marks ({games} games each)")  # fmt: skip
    for i, opponent in enumerate(opponents):
        a = make_full_game_player(spec, device, seed=i)
        b = make_full_game_player(opponent, device, seed=1000 + i)
        r = play_full_match(a, b, games, seed=i, device=device)
        table.add_row("net+policy", opponent, str(r.games), percent(r.win_rate), interval_text(r.ci_low, r.ci_high),
                      f"{r.a_marks_per_hand:.2f} vs {r.b_marks_per_hand:.2f}", percent(r.a_bid_made_rate))  # fmt: skip
    out.print(table)
    out.print(f"full-game player:   {spec}")
    out.print(f"match it:           zeb eval {spec} vs baseline+heuristic --full-game --games 200", soft_wrap=True)
    out.print(
        f"play it:            zeb serve --player rollout:path={model} --bidder net:path={bidnet}"
        "   (then open http://127.0.0.1:8042/, mode Full game)",
        soft_wrap=True,  # one line to copy, however long the paths
    )


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)
