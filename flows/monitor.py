"""The monitor flow: is training alive? Four checks on one namespace, a status table artifact, and a Failed state
with a clear message when any check fails (so a Prefect automation on "monitor Failed" can page someone).

    new examples       the newest example file is younger than `max_example_age_min`
    learner step       the newest push is younger than `max_step_age_min` (the step last seen is remembered in a
                       Prefect Variable, which stands in when a state has no push time)
    worker model lag   the newest file of each recent worker was played with weights at most `max_model_lag`
                       steps behind the current step
    running flow runs  no learner / self-play-worker run of this namespace sits in Running without a log line for
                       `heartbeat_min` minutes
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State
from prefect.variables import Variable

from tasks.common import key_of, open_ops_store, store_key
from tasks.monitor import (
    check_examples_task,
    check_lag_task,
    check_runs_task,
    check_step_task,
)
from zeb_core.formats.weights import DEFAULT_NAME


@flow(name="monitor", log_prints=True)
def monitor(
    store: str,
    name: str = DEFAULT_NAME,
    examples_url: str | None = None,
    max_example_age_min: float = 30.0,
    max_step_age_min: float = 60.0,
    max_model_lag: int = 50,
    lag_files: int = 16,
    heartbeat_min: float = 15.0,
    check_runs: bool = True,
    flow_names: list[str] | None = None,
) -> State:
    """Check the namespace `name` of `store` for stalls; Failed (with the reasons) when something is stuck.

    store: file://DIR, hf://OWNER/REPO or s3://BUCKET/PREFIX. max_example_age_min: newest example file at most
    this old. max_step_age_min: newest push at most this old. max_model_lag: steps a worker's weights may trail.
    lag_files: how many of the newest example files to read manifests from. heartbeat_min: a Running learner or
    worker run must have logged within this many minutes. flow_names: the flows whose runs are checked.
    """
    logger = get_run_logger()
    st = open_ops_store(store, examples_url)
    now = time.time()
    var_name = f"zeb-monitor-{store_key(st.url, name)}"
    memory = Variable.get(var_name, default=None)
    checks = [check_examples_task(store, name, 60 * max_example_age_min, now, examples_url)]
    step_check, memory = check_step_task(
        store, name, 60 * max_step_age_min, now, memory if isinstance(memory, dict) else None, examples_url
    )
    checks.append(step_check)
    if memory:
        Variable.set(var_name, memory, overwrite=True)
    checks.append(check_lag_task(store, name, max_model_lag, lag_files, examples_url))
    if check_runs:
        checks.append(
            check_runs_task(flow_names or ["learner", "selfplay-worker"], name, DEFAULT_NAME, 60 * heartbeat_min, now)
        )
    rows = [c.row() for c in checks]
    failed = [c for c in checks if not c.ok]
    create_table_artifact(
        rows,
        key=key_of(name, "monitor"),
        description=f"{name} in {st.url}: " + ("all checks pass" if not failed else f"{len(failed)} check(s) FAIL"),
    )
    for c in checks:
        (logger.info if c.ok else logger.error)("%s: %s (%s; %s)", c.check, "OK" if c.ok else "FAIL", c.value, c.detail)
    if failed:
        message = f"Zeb {name!r} stalled: " + " | ".join(f"{c.check}: {c.detail}" for c in failed)
        return Failed(message=message, data=rows)
    return Completed(message=f"Zeb {name!r} healthy: " + "; ".join(f"{c.check} {c.value}" for c in checks), data=rows)
