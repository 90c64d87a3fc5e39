"""Retrying transient store failures with exponential backoff and jitter (tenacity)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from zeb_core.store.backend import RateLimited, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("zeb.store")


@dataclass(frozen=True)
class RetryPolicy:
    """How long one store call keeps trying before it gives up with StoreUnavailable."""

    attempts: int = 8
    initial_s: float = 0.5
    max_wait_s: float = 30.0
    deadline_s: float = 300.0

    @classmethod
    def fast(cls) -> RetryPolicy:
        """For tests and for callers that retry at a higher level."""
        return cls(attempts=8, initial_s=0.01, max_wait_s=0.05, deadline_s=10.0)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (%s); retry %d in %.1fs", what, exc, state.attempt_number, wait)

    return before_sleep


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    """Exponential backoff with jitter, and never less than a 429's Retry-After (the store said how long)."""
    backoff = wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_wait_s, jitter=policy.initial_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else 0.0
        return max(backoff(state), min(asked, policy.deadline_s))

    return wait


def call_with_retry(policy: RetryPolicy, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    retrying = Retrying(
        retry=retry_if_exception_type(StoreUnavailable),
        wait=_wait(policy),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline_s),
        before_sleep=_log_retry(what),
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)
