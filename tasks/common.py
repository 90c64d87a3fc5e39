"""What the operations tasks and flows share: opening the store a deployment names, artifact keys, and the retry
settings of tasks that do store I/O on plain values."""

from __future__ import annotations

import hashlib
from typing import Any

from zeb_core.store import Store, StoreError, StoreUnavailable, open_store

# A store call already retries transient failures for minutes (zeb_core.store.retry); a task retries only an
# outage that outlasted that, and never a refusal (a held lease, a bad URL, a missing push).
STORE_RETRIES = 2
STORE_RETRY_DELAY_S = 60.0


def store_io_task(name: str, **options: Any) -> Any:
    """`@task` for store I/O on plain values: retried only while the store stays unavailable, never cached (every
    call reads the store afresh). `options` go to Prefect's `task` as they are (e.g. task_run_name)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(
        name=name,
        retries=STORE_RETRIES,
        retry_delay_seconds=STORE_RETRY_DELAY_S,
        retry_condition_fn=transient_store_failure,
        cache_policy=NO_CACHE,
        **options,
    )


def _failure(state: Any) -> BaseException | None:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a result we cannot read is not a transient failure
        return None
    return exc if isinstance(exc, BaseException) else None


def transient_store_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn`: retry only when the store stayed unavailable (StoreUnavailable)."""
    return isinstance(_failure(state), StoreUnavailable)


def transient_api_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn` for calls to the Prefect API: retry a transport error or an HTTP 5xx."""
    import httpx

    exc = _failure(state)
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, (httpx.TransportError, OSError))


def key_of(*parts: str) -> str:
    """An artifact / variable key: lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:200]


def store_key(url: str, name: str) -> str:
    """A short key naming one namespace of one store."""
    return key_of(name, hashlib.sha1(url.encode()).hexdigest()[:8])


def open_ops_store(url: str, examples_url: str | None = None) -> Store:
    """The store a deployment's parameter names; a clear error when `prefect deploy` left it unset."""
    if not url or "{{" in url:
        raise StoreError(
            f"no store given ({url!r}): export ZEB_STORE before `prefect deploy --all`, or pass store=... when you "
            "trigger the run"
        )
    return open_store(url, examples_url)
