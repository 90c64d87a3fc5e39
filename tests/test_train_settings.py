"""`zeb train`'s options are TrainSettings' fields (zeb_cli/train_settings.py), defined once: each field is an
option of the same name with its docstring as help and its default, and the command turns them into the same
learner and worker settings as before the model (the values below are those `zeb train` wrote before it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_cli.train_cmd import DEFAULT_MINUTES, PUSH_EVERY, _plan
from zeb_cli.train_presets import TINY_TRAIN_FLAGS, TRAIN_SEARCH
from zeb_cli.train_settings import TrainSettings, train_command
from zeb_core.mcts import SearchConfig


def _option(name: str) -> Any:  # the click parameter typer made
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}[name]


def _settings(*args: str) -> TrainSettings:
    """What `zeb train ARGS` hands its steps: the real option parsing, the run itself left out."""
    seen: list[TrainSettings] = []
    cli = typer.Typer()
    cli.command("train")(train_command(seen.append))
    cli.command("other")(lambda: None)  # a group, so "train" is named as in `zeb train`
    result = CliRunner().invoke(cli, ["train", *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_every_field_is_a_zeb_train_option_with_its_docstring_as_help() -> None:
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    names = [p.name for p in command.params if p.name != "help"]
    assert names == list(TrainSettings.model_fields), "the options are the fields, in the model's order"
    for name, info in TrainSettings.model_fields.items():
        option = _option(name)
        assert option.help == " ".join((info.description or "").split()), name
        assert option.opts == [f"--{name.replace('_', '-')}"], name
        assert option.default == info.default and not option.required, name
    assert _option("full_game").is_flag and not _option("full_game").secondary_opts, "a switch, no --no-full-game"
    assert (
        command.help
        == "Train from scratch (or continue) on this machine: a learner and self-play workers, then a report."
    )


def test_the_shared_flag_sets_read_the_models_defaults() -> None:
    defaults = TrainSettings()
    assert (
        TRAIN_SEARCH == (defaults.sims, defaults.worlds, defaults.max_nodes, defaults.teacher) == (32, 8, 64, "solver")
    )
    flags = dict(zip(TINY_TRAIN_FLAGS[::2], TINY_TRAIN_FLAGS[1::2], strict=True))
    assert {f.removeprefix("--").replace("-", "_") for f in flags} <= set(TrainSettings.model_fields)


def test_an_s37_invocation_makes_the_same_learner_and_workers(tmp_path: Path) -> None:
    """`zeb train --minutes 20 --name s37 --teacher schedule --handover-teacher posterior` (one worker, so the
    derived lag is fixed): the settings files it writes, field by field as before TrainSettings; nothing is
    written while they are made."""
    runs = tmp_path / "runs"
    args = ["--minutes", "20", "--name", "s37", "--teacher", "schedule", "--handover-teacher", "posterior"]
    settings = _settings(*args, "--workers", "1", "--runs-dir", str(runs))
    assert settings == TrainSettings(
        minutes=20, name="s37", teacher="schedule", handover_teacher="posterior", workers=1, runs_dir=runs
    )
    plan = _plan(settings)
    assert not runs.exists(), "the run folder only once every setting is valid"
    url = f"file://{(runs / 's37').resolve()}"
    learner = plan.learner
    assert (learner.store, learner.size, learner.device, learner.run_name, learner.seed) == (
        url,
        "small",
        "auto",
        "s37",
        0,
    )
    assert (learner.lr, learner.batch_size, learner.replay_buffer_size, learner.training_steps_per_cycle) == (
        1e-3, 256, 100_000, 10,
    )  # fmt: skip
    assert (learner.replay_ratio, learner.min_buffer_size, learner.push_every) == (8.0, 2000, PUSH_EVERY)
    assert (learner.eval_every, learner.eval_games, learner.prune_every, learner.keep_example_files) == (
        20,
        1000,
        50,
        2000,
    )
    assert (learner.value_target, learner.full_game, learner.bid_replay_ratio) == ("points", False, 4.0)
    assert learner.max_model_lag == 634 and learner.learner_id.endswith("-train-s37")
    [worker] = plan.workers
    assert (worker.store, worker.device, worker.games_per_batch, worker.full_game) == (url, "auto", 32, False)
    assert worker.outbox == str((runs / "s37" / "outbox").resolve()) and worker.worker_id.endswith("-w0")
    assert worker.search == SearchConfig(
        simulations=32, worlds=8, max_nodes=64, policy_target="improved", value_target="points", teacher="schedule",
        handover_teacher="posterior", auction_worlds=False,
    )  # fmt: skip
    assert worker.search.handover_games == 15_000 and worker.search.rollout_share == 1.0
    assert plan.train.minutes == 20 and plan.train.games is None and plan.threads in ("1", "2")


def test_the_budget_and_the_full_games_target_are_filled_in() -> None:
    assert _plan(_settings("--size", "medium", "--device", "cpu")).train.minutes == DEFAULT_MINUTES
    assert _plan(_settings("--size", "medium", "--device", "cpu")).learner.size == "medium"
    plan = _plan(_settings("--full-game", "--games", "32", "--bid-hands-per-batch", "16", "--device", "cpu"))
    assert plan.train.minutes is None and plan.train.games == 32
    assert plan.learner.value_target == plan.workers[0].search.value_target == "contract"
    assert plan.workers[0].search.auction_worlds and plan.workers[0].bid_hands_per_batch == 16
    assert plan.eval_device == "cpu" and plan.threads == "1"


def test_a_bad_value_ends_the_command_before_anything_is_written(tmp_path: Path) -> None:
    for args in (["--minutes", "-1"], ["--sims", "0"], ["--eval-games", "0"]):
        with pytest.raises(typer.Exit):
            _plan(_settings(*args, "--runs-dir", str(tmp_path / "runs")))
    assert not (tmp_path / "runs").exists()
