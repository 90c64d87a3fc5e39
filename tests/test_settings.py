"""The settings models are the one definition of the learner's and the worker's settings: `zeb learner`/`zeb worker`
options, the flows' parameters and prefect.yaml's keys must agree with them (a default that drifts, or a key
prefect.yaml invents, fails here), and `zeb train` hands its processes settings files the models read back."""

from __future__ import annotations

import inspect
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from pydantic import BaseModel

from zeb_cli.learner_cmd import learner_cmd, learner_settings, worker_cmd, worker_settings
from zeb_cli.main import app
from zeb_core.learn.learner import LearnerSettings
from zeb_core.mcts.config import SearchConfig
from zeb_core.selfplay.worker import SEARCH_OPTIONS, WorkerSettings

REPO = Path(__file__).resolve().parents[1]
CLI_ONLY = {"threads", "settings_json"}  # process options, not settings
KEPT_DEFAULTS = {  # prefect.yaml states these defaults on purpose (its comments say why)
    ("selfplay-worker", "outbox"),
    ("selfplay-worker", "commits_per_hour"),
    ("selfplay-worker", "fleet_size"),  # a value the user sets to the pool's replicas
}


def _click_params(name: str) -> dict[str, Any]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params if p.name}


def _model_default(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    return None if info.is_required() or info.default_factory is not None else info.default


@pytest.mark.parametrize(("command", "model"), [("learner", LearnerSettings), ("worker", WorkerSettings)])
def test_every_cli_option_is_a_field_with_its_default_and_docstring(command: str, model: type[BaseModel]) -> None:
    params = _click_params(command)
    search = {f.name: f.default for f in fields(SearchConfig)}
    nested = {n for n, f in model.model_fields.items() if f.annotation is SearchConfig}
    for name, param in params.items():
        if name in CLI_ONLY:
            continue
        if name in model.model_fields:
            assert param.default == _model_default(model, name), f"zeb {command} --{name}: default drifted"
            assert model.model_fields[name].description, f"{model.__name__}.{name} has no docstring"
            assert param.help and param.help.split()[0] in model.model_fields[name].description
        else:
            assert nested and name in search, f"zeb {command} option {name} is no setting"
            assert param.default == search[name], f"zeb {command} --{name}: default drifted from SearchConfig"
            assert param.help == SEARCH_OPTIONS[name]
    wanted = {n for n in model.model_fields if n not in nested} | (set(SEARCH_OPTIONS) if nested else set())
    assert wanted <= set(params), f"fields without an option: {wanted - set(params)}"


def test_the_flows_take_the_models_and_nothing_else() -> None:
    from flows.learner import learner
    from flows.selfplay_worker import selfplay_worker

    for flow, model in ((learner, LearnerSettings), (selfplay_worker, WorkerSettings)):
        sig = inspect.signature(flow.fn, eval_str=True)
        assert list(sig.parameters) == ["settings"], f"{flow.name}: settings live in {model.__name__} only"
        assert sig.parameters["settings"].annotation is model
        assert sig.parameters["settings"].default is inspect.Parameter.empty


def _unknown(values: dict[str, Any], model: type[BaseModel], where: str) -> list[str]:
    bad = [f"{where}.{k}" for k in values if k not in model.model_fields]
    search = values.get("search") or {}
    names = {f.name for f in fields(SearchConfig)}
    return bad + [f"{where}.search.{k}" for k in search if k not in names]


def test_prefect_yaml_lists_known_settings_and_only_overrides() -> None:
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    for name, model in (("learner", LearnerSettings), ("selfplay-worker", WorkerSettings)):
        params = deployments[name]["parameters"]
        assert set(params) == {"settings"}, f"{name}: its parameters are one `settings` object"
        values = params["settings"]
        assert not _unknown(values, model, name), f"prefect.yaml names no such setting: {_unknown(values, model, name)}"
        same = [
            k
            for k, v in values.items()
            if k != "search" and v == _model_default(model, k) and (name, k) not in KEPT_DEFAULTS
        ]
        assert not same, f"{name}: {same} repeat the model's defaults; list only overrides"
        model.model_validate({**values, "store": "file:///tmp/x"})  # and they validate
    assert deployments["learner"]["parameters"]["settings"]["cycles"] < LearnerSettings.model_fields["cycles"].default


def test_the_unknown_key_check_can_fail() -> None:
    bad = {"store": "x", "cycle": 3, "search": {"sims": 3}}
    assert _unknown(bad, WorkerSettings, "w") == ["w.cycle", "w.search.sims"]


def test_a_long_running_learner_is_the_default() -> None:
    """`cycles` was 500 in the flow and 1,000,000 in the CLI: one run of a fleet learner is long; a deployment
    bounds its runs (prefect.yaml) to keep the Prefect database small."""
    assert LearnerSettings(store="x").cycles == 1_000_000


def test_cli_options_override_a_settings_file(tmp_path: Path) -> None:
    """`zeb train` passes settings as a JSON file; options given beside it win, defaults stay the model's."""
    saved = WorkerSettings(store="file:///s", worker_id="w1", search=SearchConfig(simulations=7, worlds=3))
    path = tmp_path / "worker.json"
    path.write_text(saved.model_dump_json())
    got: list[dict[str, Any]] = []
    from zeb_cli import settings_options

    command = settings_options.settings_command(
        lambda values: got.append(values),
        settings_options.model_settings(WorkerSettings)
        + settings_options.dataclass_settings(SearchConfig, SEARCH_OPTIONS, {"simulations": ("--sims",)}),
        [],
        "worker",
    )
    cli = typer.Typer()
    cli.command("w")(command)
    cli.command("other")(lambda: None)
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli, ["w", "--settings-json", str(path), "--sims", "9", "--batches", "2"])
    assert result.exit_code == 0, result.output
    settings = worker_settings(got[0])
    assert settings.search.simulations == 9 and settings.search.worlds == 3 and settings.batches == 2
    assert settings.worker_id == "w1" and settings.store == "file:///s"
    assert WorkerSettings.model_validate_json(saved.model_dump_json()) == saved


def test_bad_settings_end_the_command_with_the_option_named() -> None:
    with pytest.raises(typer.Exit):
        learner_settings({"store": "x", "lr": 0})
    with pytest.raises(typer.Exit):
        learner_settings({"lr": 1e-3})  # no store
    with pytest.raises(typer.Exit):
        worker_settings({"store": "x", "worlds": 0})
    assert learner_cmd.__name__ == "_learner" and worker_cmd.__name__ == "_worker"


def test_zeb_train_settings_files_round_trip(tmp_path: Path) -> None:
    from zeb_cli.train_cmd import _settings_file

    settings = LearnerSettings(store="file:///s", max_model_lag=77, learner_id="me-train-t", replay_ratio=8.0)
    path = Path(_settings_file(tmp_path, "learner", settings))
    assert LearnerSettings(**json.loads(path.read_text())) == settings


@pytest.mark.parametrize(
    ("name", "words"),
    [("quarantine", "reserved"), ("exp-best", "-best"), ("exp-bid", "-bid"), ("exp-optimizer", "-optimizer")],
)
def test_reserved_namespaces_are_refused_by_the_settings(name: str, words: str, capsys: pytest.CaptureFixture) -> None:
    """The store's own names (check_name) are refused when the settings are read (`zeb learner`, `zeb worker`,
    the flows' parameters), naming the option, not minutes later when the learner takes its lease."""
    from pydantic import ValidationError

    for model in (LearnerSettings, WorkerSettings):
        with pytest.raises(ValidationError, match=words):
            model(store="x", name=name)
    with pytest.raises(typer.Exit):
        learner_settings({"store": "x", "name": name})
    assert f"--name: namespace {name!r}" in capsys.readouterr().err
    with pytest.raises(typer.Exit):
        worker_settings({"store": "x", "name": name})
    assert LearnerSettings(store="x", name="exp-2.b").name == "exp-2.b"
