"""Graceful stop on SIGINT/SIGTERM (Ctrl-C, `prefect` cancellation, a process worker's terminate): the flow
finishes the step in hand, saves what it must, and returns."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between cycles."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.previous: dict[int, Any] = {}  # what signal.signal returned: a handler, an int or None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.event.set()

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def __bool__(self) -> bool:
        return self.event.is_set()
