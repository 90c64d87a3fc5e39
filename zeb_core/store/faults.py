"""A backend wrapper that injects the failures real stores produce: timeouts, 429s and 500s.

Used by the fault tests and by reliability runs (`?faults=0.2` on a store URL). A "timeout" is injected either
before the call (nothing happened) or after it (the write happened but the reply was lost), which is the case
that makes retried writes have to be harmless.
"""

from __future__ import annotations

import builtins
import random
import threading
from collections.abc import Sequence
from typing import Any

from zeb_core.store.backend import Backend, FileInfo, Revision, StoreUnavailable

KINDS = ("timeout", "429", "500")


class FaultyBackend(Backend):
    def __init__(self, inner: Backend, rate: float, seed: int = 0, kinds: Sequence[str] = KINDS) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"fault rate {rate} must be in [0, 1)")
        self.inner = inner
        self.history_copies = inner.history_copies  # the optional operations are the inner backend's
        self.commit_limited = inner.commit_limited
        self.shards = inner.shards
        self.rate = rate
        self.kinds = tuple(kinds)
        self.url = inner.url
        self.injected = 0
        self.calls = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _roll(self) -> tuple[str | None, bool]:
        with self._lock:
            self.calls += 1
            if self._rng.random() >= self.rate:
                return None, False
            self.injected += 1
            return self._rng.choice(self.kinds), self._rng.random() < 0.5

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        kind, after = self._roll()
        if kind is None:
            return getattr(self.inner, name)(*args, **kwargs)
        if kind == "timeout" and after:
            getattr(self.inner, name)(*args, **kwargs)
        label = {"timeout": "timed out", "429": "HTTP 429 Too Many Requests", "500": "HTTP 500 Internal Server Error"}
        raise StoreUnavailable(f"{self.url}: {name} {label[kind]} (injected)")

    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        return self._call("read", path, revision, max_bytes)

    def list(self, prefix: str = "") -> list[FileInfo]:
        return self._call("list", prefix)

    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        return self._call("commit", puts, deletes, message, history)

    def history(self, limit: int = 100) -> builtins.list[Revision]:  # `list` is also a method here
        return self._call("history", limit)

    def drop_history(self, revisions: Sequence[str]) -> None:
        return self._call("drop_history", revisions)

    def move(self, src: str, dst: str) -> bool:
        return self._call("move", src, dst)

    def drop_incomplete(self, before: float) -> int:
        return self._call("drop_incomplete", before)

    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        return self._call("read_versioned", path)

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        # A lost reply after a successful conditional write would look like a lost race; the lease code
        # re-reads and recognises its own lease, so this is safe to inject too.
        return self._call("write_if", path, data, token)

    def exists(self) -> bool:
        return self._call("exists")

    def create(self) -> None:
        return self._call("create")
