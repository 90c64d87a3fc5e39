"""The revert flow (manual): restore an earlier push of a namespace as the newest. Weights, optimizer and state
go back in one commit that records where they came from and why (`Store.revert`); the learner resumes from it on
its next start, and workers load it on their next weights check."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.common import key_of, open_ops_store
from tasks.revert import revert_task
from zeb_core.formats.weights import DEFAULT_NAME


@flow(name="revert", log_prints=True)
def revert(
    store: str,
    name: str = DEFAULT_NAME,
    to: str | None = None,
    step: int | None = None,
    reason: str = "",
    examples_url: str | None = None,
    force: bool = False,
) -> dict:
    """Revert namespace `name` of `store` to an earlier push: `to` is a revision id (or a unique prefix) or
    `step:N`; `step` is a shorthand for `to=step:N` (the newest push of that step). `reason` is recorded with the
    revert. Refuses while a learner holds the namespace (it would push over the revert) unless `force`: the
    store's rule (`Store.revert`), the same for `zeb store revert`."""
    if (to is None) == (step is None):
        raise ValueError("give exactly one of `to` (a revision id or step:N) and `step`")
    target = to if to is not None else f"step:{step}"
    st = open_ops_store(store, examples_url)
    result = revert_task(store, name, target, reason, force, examples_url)
    create_markdown_artifact(
        f"## Revert of `{name}` in `{st.url}`\n\n"
        f"| | |\n| --- | --- |\n"
        f"| step before | {result['from_step']} |\n"
        f"| restored push | `{result['target_revision']}` (step {result['to_step']}) |\n"
        f"| new push | `{result['new_revision']}` |\n"
        f"| reason | {reason or '(none given)'} |\n\n"
        "The learner resumes from this push on its next start.\n",
        key=key_of(name, "revert"),
        description=f"{name} reverted to step {result['to_step']}",
    )
    return result
