"""End to end on a real Prefect server: pools, `prefect deploy --all` of the project's prefect.yaml, process
workers, a learner and two self-play workers triggered as deployments on a local store, then revert and monitor;
every run must complete, the store must show the training, and no process may outlive the test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.prefect_server import PrefectStack, latest_artifact, processes_with_marker
from zeb_core.store import open_store

REPO = Path(__file__).resolve().parents[1]
PHASE_TIMEOUT_S = 200.0

LEARNER = dict(
    size="small",
    device="cpu",
    min_buffer_size=100,
    training_steps_per_cycle=5,
    batch_size=32,
    cycles=3,
    push_every=1,
    eval_every=1000,
    prune_every=1000,
    minutes=3.0,
    idle_sleep_s=0.5,
    continue_as_new=False,
    seed=0,
)
WORKER = dict(games_per_batch=8, batches=3, search=dict(simulations=8, worlds=2, max_nodes=32), device="cpu")


def _fastapi_breaks_prefect() -> str | None:
    """Prefect 3.8.8's server declares body fields like `limit: int = Body(None)`; FastAPI 0.151+ rejects the
    explicit nulls its own client sends there (422), which breaks `prefect deploy` and the worker."""
    import fastapi
    from packaging.version import Version

    if Version(fastapi.__version__) >= Version("0.151"):
        return (
            f"fastapi {fastapi.__version__} breaks the Prefect 3.8.8 server (422 on null `limit`/`offset`); "
            "pin fastapi<0.151 in pyproject.toml"
        )
    return None


def _wait(stack: PrefectStack, client: Any, run_ids: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    runs: dict[str, Any] = {}
    while time.monotonic() < deadline:
        runs = {label: client.read_flow_run(rid) for label, rid in run_ids.items()}
        if all(r.state is not None and r.state.is_final() for r in runs.values()):
            return runs
        time.sleep(1.0)
    states = {label: (r.state.name if r.state else None) for label, r in runs.items()}
    raise AssertionError(f"runs not finished after {timeout_s:.0f}s: {states}\n" + _diagnostics(stack, client, run_ids))


def _diagnostics(stack: PrefectStack, client: Any, run_ids: dict[str, Any]) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    parts = []
    for label, rid in run_ids.items():
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[rid])),
            limit=200,
            offset=0,
            sort=LogSort.TIMESTAMP_ASC,
        )
        parts.append(f"--- {label} ---\n" + "\n".join(f"{log.level} {log.message}" for log in logs)[-3000:])
    for name in stack.procs:
        parts.append(f"--- {name} log ---\n{stack.log(name, 3000)}")
    return "\n".join(parts)


def _trigger(client: Any, deployment: str, parameters: dict[str, Any]) -> Any:
    dep = client.read_deployment_by_name(deployment)
    return client.create_flow_run_from_deployment(dep.id, parameters=parameters).id


@pytest.mark.long
@pytest.mark.timeout(420)
def test_learner_and_workers_as_deployments(tmp_path: Path) -> None:
    problem = _fastapi_breaks_prefect()
    if problem:
        pytest.fail(problem)
    store_url = f"file://{tmp_path / 'store'}"
    stack = PrefectStack(
        tmp_path / "prefect",
        REPO,
        {
            "ZEB_HOME": str(REPO),  # the deployments' working directory (pull step)
            "ZEB_STORE": store_url,  # the deployments' default store
            "WANDB_MODE": "disabled",
            "OMP_NUM_THREADS": "1",
        },
    )
    try:
        stack.start_server()
        pools = [
            stack.cli("work-pool", "create", pool, "--type", "process", check=False) for pool in ("zeb-gpu", "zeb-cpu")
        ]
        for p in pools:
            assert p.returncode == 0, p.stdout + p.stderr
        stack.cli("deploy", "--all", timeout_s=240)
        stack.start_worker("zeb-gpu", "--limit", "3")
        stack.start_worker("zeb-cpu", "--limit", "2")

        with stack.client() as client:
            deps = {d.name: d for d in client.read_deployments()}
            assert set(deps) == {"learner", "selfplay-worker", "evaluate", "prune", "monitor", "revert", "baselines"}
            assert deps["learner"].global_concurrency_limit.limit == 1
            assert deps["learner"].parameters["settings"]["store"] == store_url
            assert {d.name for d in deps.values() if d.schedules} == {"evaluate", "prune", "monitor"}
            assert deps["selfplay-worker"].work_queue_name == "selfplay"

            # --- training: the learner first (it pushes step 0 and waits for data), then two workers
            # (a run's `settings` replaces the deployment's whole: start from it, as the UI's form does)
            learner_base, worker_base = (deps[d].parameters["settings"] for d in ("learner", "selfplay-worker"))
            ids = {"learner": _trigger(client, "learner/learner", {"settings": {**learner_base, **LEARNER}})}
            for i in range(2):
                ids[f"worker{i}"] = _trigger(
                    client,
                    "selfplay-worker/selfplay-worker",
                    {
                        "settings": {
                            **worker_base,
                            **WORKER,
                            "worker_id": f"e2e-w{i}",
                            "seed": i,
                            "outbox": str(tmp_path / f"outbox{i}"),
                        }
                    },
                )
            runs = _wait(stack, client, ids, PHASE_TIMEOUT_S)
            states = {label: r.state.type.value for label, r in runs.items()}
            assert set(states.values()) == {"COMPLETED"}, f"{states}\n" + _diagnostics(stack, client, ids)

            st = open_store(store_url)
            state = st.peek_state()
            assert state is not None and state["step"] == LEARNER["cycles"]
            assert state["examples_ingested"] >= LEARNER["min_buffer_size"]
            files = st.list_examples()
            assert len(files) == 2 * WORKER["batches"] and {f.worker for f in files} == {"e2e-w0", "e2e-w1"}
            assert [p.step for p in st.history()] == [3, 2, 1, 0]  # bootstrap, then a push per cycle
            assert latest_artifact(client, "learner-progress") is not None

            # --- operations: revert to step 1 and a monitor pass, on the CPU pool
            ops = {
                "revert": _trigger(client, "revert/revert", {"step": 1, "reason": "e2e test"}),
                "monitor": _trigger(client, "monitor/monitor", {"max_model_lag": 100}),
            }
            runs = _wait(stack, client, ops, PHASE_TIMEOUT_S)
            assert runs["revert"].state.is_completed(), _diagnostics(stack, client, ops)
            assert runs["monitor"].state.is_completed(), runs["monitor"].state.message
            state = st.peek_state()
            assert state["step"] == 1 and state["revert_reason"] == "e2e test" and state.get("reverted_from")
            table = latest_artifact(client, "model-monitor")
            assert table is not None and "running flow runs" in table["data"]
    finally:
        leftovers = stack.stop()
    assert processes_with_marker(stack.marker) == []
    assert leftovers == [], f"processes outlived their process groups: {leftovers}"
