"""The operations flows (monitor, prune, revert, ladder) on Prefect without a server, against a local store that
the real Learner and SelfPlayWorker filled (no mocks of our own classes)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import example_bytes
from tests.prefect_server import latest_artifact, local_client
from zeb_core.formats.examples import example_filename
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.mcts.config import SearchConfig
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
from zeb_core.store import StoreError, open_store

TINY_SEARCH = SearchConfig(simulations=8, worlds=2, max_nodes=32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> object:
    """Small models and batches: one thread is as fast, and does not thrash when the CI machine is busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after a short real run: pushes of steps 0..3, step 1 promoted by the learner, step 3 promoted
    through the Store API, two example files (played with step-0 weights) ingested."""
    root = tmp_path_factory.mktemp("pristine") / "store"
    url = f"file://{root}"
    lrn = Learner(
        LearnerSettings(
            store=url,
            size="small",
            min_buffer_size=100,
            replay_buffer_size=100,  # the newer example file refills it: the prune test may remove the older one
            training_steps_per_cycle=3,
            batch_size=32,
            device="cpu",
            eval_games=100,
        )
    )
    lrn.start()
    worker = SelfPlayWorker(
        WorkerSettings(
            store=url, games_per_batch=6, device="cpu", seed=1, search=TINY_SEARCH, outbox=str(root.parent / "outbox")
        )
    )
    for _ in range(2):
        _, report = worker.generate()
        worker.upload(report)
    for _ in range(3):
        lrn.ingest()
        assert lrn.train() is not None
        lrn.push()
        if lrn.step == 1:
            assert lrn.maybe_promote().promote  # the first promotion (no best yet: no match needed)
    lrn.store.promote(bundle_from_model(lrn.model, {"step": lrn.step, "time": time.time()}), message="by hand")
    lrn.close()
    return root


@pytest.fixture()
def store_dir(pristine_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(pristine_store, target)
    return target


def test_monitor_passes_on_a_fresh_store(store_dir: Path) -> None:
    from flows.monitor import monitor

    state = monitor(store=f"file://{store_dir}", return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()
    assert [r["status"] for r in rows] == ["OK"] * 4
    assert "healthy" in state.message


def test_monitor_fails_on_a_stalled_store(store_dir: Path) -> None:
    from prefect import flow
    from prefect.states import Cancelled, Running

    from flows.monitor import monitor

    @flow(name="learner")
    def silent_learner(name: str = "model") -> None:  # a run that says Running and never logs again
        pass

    with local_client() as client:
        run = client.create_flow_run(silent_learner, parameters={"name": "model"}, state=Running())
    try:
        time.sleep(1.0)
        state = monitor(
            store=f"file://{store_dir}",
            max_example_age_min=0.5 / 60,
            max_step_age_min=0.5 / 60,
            max_model_lag=1,
            heartbeat_min=0.5 / 60,
            return_state=True,
        )
    finally:
        with local_client() as client:
            client.set_flow_run_state(run.id, Cancelled(), force=True)
    assert state.is_failed()
    assert "stalled" in state.message
    assert "no new example files" in state.message
    assert "learner step stuck at 3" in state.message
    assert "steps old" in state.message  # the workers played with step 0, the learner is at 3
    assert f"stuck in Running with no heartbeat: {run.name}" in state.message
    with local_client() as client:
        table = latest_artifact(client, "model-monitor")
    assert table is not None and table["data"].count("FAIL") == 4


def test_monitor_fails_on_an_empty_store(tmp_path: Path) -> None:
    from flows.monitor import monitor

    state = monitor(store=f"file://{tmp_path / 'empty'}", check_runs=False, return_state=True)
    assert state.is_failed()
    assert "is the learner running" in state.message


def test_prune_removes_and_reports(store_dir: Path) -> None:
    from flows.prune import prune

    st = open_store(f"file://{store_dir}")
    old = st.list_examples()
    assert len(old) == 2
    # one more file that the learner has not ingested: protected from pruning
    worker = SelfPlayWorker(
        WorkerSettings(
            store=f"file://{store_dir}",
            games_per_batch=4,
            device="cpu",
            seed=7,
            search=TINY_SEARCH,
            outbox=str(store_dir.parent / "outbox2"),
        )
    )
    _, report = worker.generate()
    fresh = worker.upload(report).uploaded
    # and a slow-clocked worker's file, stamped an hour back (before the files the buffer refills from): kept back
    data, manifest = example_bytes(20, seed=3, worker="slow-w")
    slow = example_filename("slow-w", manifest["sha256"], now=time.time() - 3600)
    st.examples.commit({slow: data}, message="a slow clock")
    # two quarantined files: one a week and a day old, one new
    st.quarantine("old-junk.safetensors", b"junk", "test: old")
    st.quarantine("new-junk.safetensors", b"junk", "test: new")
    week_ago = time.time() - 8 * 86400
    for p in (store_dir / "examples" / "quarantine").glob("old-junk*"):
        os.utime(p, (week_ago, week_ago))

    result = prune(store=f"file://{store_dir}", keep=0, max_age_hours=None)
    assert result["examples_removed"] == [old[0].path], "the newer file read refills the learner's buffer: kept"
    assert result["protected"] == 1
    assert [r.path for r in st.list_examples()] == [slow, old[1].path, fresh]
    assert sorted(result["quarantine_removed"]) == [
        "quarantine/old-junk.safetensors",
        "quarantine/old-junk.safetensors.reason.json",
    ]
    assert [f.path for f in st.list_quarantine()] == ["quarantine/new-junk.safetensors"]

    with local_client() as client:
        artifact = latest_artifact(client, "model-prune")
    assert artifact is not None and "example files | 1 of 4" in artifact["data"]
    assert f"from `{old[1].name}` on kept for the learner's replay buffer" in artifact["data"]


def test_revert_restores_an_earlier_push(store_dir: Path) -> None:
    from flows.revert import revert

    url = f"file://{store_dir}"
    st = open_store(url)
    assert st.latest_step() == 3
    lease = st.acquire_lease("model", "someone-else")
    with pytest.raises(StoreError, match="holds"):
        revert(store=url, step=1, reason="test")
    lease.release()
    with pytest.raises(ValueError, match="exactly one"):
        revert(store=url)

    result = revert(store=url, step=1, reason="value head diverged")
    assert result["from_step"] == 3 and result["to_step"] == 1
    state = st.peek_state()
    assert state["step"] == 1 and state["reverted_from"] == result["target_revision"]
    assert state["revert_reason"] == "value head diverged"
    assert st.history()[0].step == 1 and "revert" in st.history()[0].message
    # the learner resumes from the restored push
    lrn = Learner(LearnerSettings(store=url, size="small", min_buffer_size=100, device="cpu"))
    lrn.start()
    try:
        assert lrn.step == 1
    finally:
        lrn.close(push=False)


def test_zeb_store_revert_obeys_the_lease_rule_of_the_flow(store_dir: Path) -> None:
    """One rule in the store: `zeb store revert` refuses while a learner holds the namespace, as the flow does,
    and `--force` overrides it as force=True does."""
    from typer.testing import CliRunner

    from zeb_cli.main import app

    url = f"file://{store_dir}"
    st = open_store(url)
    lease = st.acquire_lease("model", "someone-else")
    result = CliRunner().invoke(app, ["store", "revert", url, "--to", "step:1"])
    assert result.exit_code == 1 and "holds" in result.output and "someone-else" in result.output
    assert st.latest_step() == 3, "a refused revert pushes nothing"
    result = CliRunner().invoke(app, ["store", "revert", url, "--to", "step:2", "--force", "--reason", "by hand"])
    assert result.exit_code == 0, result.output
    assert st.peek_state()["step"] == 2 and st.peek_state()["revert_reason"] == "by hand"
    lease.release()
    result = CliRunner().invoke(app, ["store", "revert", url, "--to", "step:1"])
    assert result.exit_code == 0 and st.latest_step() == 1, result.output


def test_store_tasks_retry_an_outage_but_not_a_refusal() -> None:
    """Tasks over plain values that do store I/O declare retries, taken only for StoreUnavailable."""
    from prefect import flow, task

    from tasks.common import transient_store_failure
    from tasks.ladder import ladder_match_task, ladder_players_task
    from tasks.monitor import check_examples_task, check_lag_task, check_step_task
    from tasks.prune import prune_examples_task, prune_quarantine_task
    from tasks.revert import revert_task
    from zeb_core.store import LeaseHeld, StoreUnavailable

    for t in (
        check_examples_task,
        check_step_task,
        check_lag_task,
        prune_examples_task,
        prune_quarantine_task,
        revert_task,
        ladder_players_task,
    ):
        assert t.retries >= 1 and t.retry_condition_fn is transient_store_failure, t.name
    assert ladder_match_task.retries == 0  # a span over players in memory
    calls = {"outage": 0, "refusal": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=transient_store_failure)
    def outage() -> str:
        calls["outage"] += 1
        if calls["outage"] < 3:
            raise StoreUnavailable("HTTP 503 (still, after the store's own backoff)")
        return "done"

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=transient_store_failure)
    def refusal() -> None:
        calls["refusal"] += 1
        raise LeaseHeld("a learner holds 'model'")

    @flow
    def both() -> tuple[str, bool]:
        return outage(), refusal(return_state=True).is_failed()

    assert both() == ("done", True)
    assert calls == {"outage": 3, "refusal": 1}


def test_ladder_of_baselines_anchors_random_at_zero() -> None:
    from flows.ladder import ladder

    ratings = ladder(games=4000, wandb_project=None)
    by = {r["player"]: r for r in ratings}
    assert set(by) == {"random", "heuristic"}
    assert by["random"]["elo"] == 0.0 and by["random"]["se"] == 0.0
    assert by["heuristic"]["elo"] > 0 and by["heuristic"]["ci_low"] > 0  # 54.6% is about +32 Elo


def test_ladder_rates_the_store_models(store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ladder import ladder

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    ratings = ladder(store=f"file://{store_dir}", games=120, wandb_project="zeb-test")
    labels = [r["player"] for r in ratings]
    assert len(labels) == 4 and "model@3 (newest, best)" in labels  # newest and best are one player
    assert [label for label in labels if label.startswith("model@1 (promoted ")], labels
    assert {"random", "heuristic"} <= set(labels)
    by = {r["player"]: r for r in ratings}
    assert by["random"]["elo"] == 0.0 and by["random"]["games"] == 3 * 120
    assert by["model@3 (newest, best)"]["roles"] == ["newest", "best"] and by["model@3 (newest, best)"]["step"] == 3
    assert [r["elo"] for r in ratings] == sorted((r["elo"] for r in ratings), reverse=True)
    for r in ratings:
        assert r["ci_low"] <= r["elo"] <= r["ci_high"]
    with local_client() as client:
        table = latest_artifact(client, "model-ladder")
        plot = latest_artifact(client, "model-ladder-plot")
    assert table is not None and "heuristic" in table["data"]
    assert plot is not None and "data:image/png;base64," in plot["data"]


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_gpu_job_templates_are_accepted_and_request_a_gpu(kind: str) -> None:
    import json
    import uuid

    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.utilities.templating import apply_values, find_placeholders

    template = json.loads(
        (Path(__file__).resolve().parents[1] / "deployments" / f"{kind}-gpu-job-template.json").read_text()
    )
    variables = template["variables"]["properties"]
    for placeholder in find_placeholders(template["job_configuration"]):
        assert placeholder.type.value == "standard" and placeholder.name in variables, placeholder
    env = variables["env"]["default"]
    assert env["ZEB_HOME"] == "/opt/zeb"
    for key, value in env.items():  # credentials come from Secret blocks, never literal values
        if key not in ("ZEB_HOME", "ZEB_OUTBOX_DIR"):
            assert [p.name for p in find_placeholders(value)] == [
                f"prefect.blocks.secret.zeb-{key.lower().replace('_', '-')}"
            ]
    defaults = {k: v["default"] for k, v in variables.items() if "default" in v}
    rendered = apply_values(template["job_configuration"], defaults)
    assert rendered["env"] == env
    if kind == "docker":
        assert rendered["container_create_kwargs"]["device_requests"][0]["device_ids"] == ["0"]
    else:
        container = rendered["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    with local_client() as client:  # the server validates the template
        pool = client.create_work_pool(
            WorkPoolCreate(name=f"zeb-gpu-{kind}-{uuid.uuid4().hex[:6]}", type=kind, base_job_template=template)
        )
        assert pool.base_job_template["variables"]["properties"]["image"]["default"] == "zeb-worker:latest"
