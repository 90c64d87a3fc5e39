"""The monitor's tasks: one per check, each over plain values (a store URL, a namespace), so each retries a store
or Prefect API outage on its own. The rules are `zeb_core.ops.monitor`'s; only the "stuck run" check's reading of flow
runs and their logs from the Prefect API lives here."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common import (
    STORE_RETRIES,
    STORE_RETRY_DELAY_S,
    open_ops_store,
    store_io_task,
    transient_api_failure,
)
from zeb_core.ops.monitor import Check, check_examples, check_lag, check_runs, check_step


@store_io_task("check-examples")
def check_examples_task(store: str, name: str, max_age_s: float, now: float, examples_url: str | None = None) -> Check:
    """Stall when the newest example file of `name` is older than `max_age_s` (or there is none)."""
    return check_examples(open_ops_store(store, examples_url), name, max_age_s, now)


@store_io_task("check-learner-step")
def check_step_task(
    store: str, name: str, max_age_s: float, now: float, memory: dict | None, examples_url: str | None = None
) -> tuple[Check, dict]:
    """Stall when the newest push of `name` is older than `max_age_s`; returns the check and the new memory."""
    return check_step(open_ops_store(store, examples_url), name, max_age_s, now, memory)


@store_io_task("check-model-lag")
def check_lag_task(store: str, name: str, max_lag: int, files: int, examples_url: str | None = None) -> Check:
    """How many steps behind the learner the newest files of the recent workers were played."""
    return check_lag(open_ops_store(store, examples_url), name, max_lag, files)


@task(
    name="check-runs",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_RETRY_DELAY_S,
    retry_condition_fn=transient_api_failure,
    cache_policy=NO_CACHE,
)
def check_runs_task(flow_names: list[str], name: str, default_name: str, heartbeat_s: float, now: float) -> Check:
    """Running flow runs of `flow_names` (for namespace `name`) whose newest log line is older than `heartbeat_s`,
    read from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort, LogSort

    last_seen: dict[str, float | None] = {}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(flow_names))),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=200,
        )
        for run in runs:
            params = run.parameters or {}  # the learner and worker flows take it as settings.name
            if (params.get("settings") or {}).get("name", params.get("name", default_name)) != name:
                continue
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])),
                limit=1,
                offset=0,
                sort=LogSort.TIMESTAMP_DESC,
            )
            times = [t for t in (run.start_time, run.state.timestamp if run.state else None) if t is not None]
            if logs:
                times.append(logs[0].timestamp)
            last_seen[f"{run.name} ({run.id})"] = max(t.timestamp() for t in times) if times else None
    return check_runs(last_seen, heartbeat_s, now)
