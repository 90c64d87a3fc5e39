"""The CLI's rich consoles: a terminal's own width, else wide enough that a report keeps its tables whole."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Columns when the output is a file or a pipe (`make run > log`, nohup, CI): rich's default there is 80, which cut
# the `zeb train` report's full-game table to "net+poli…" and its intervals to "83.6%..9…".
PIPE_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    """A Console on stdout (or stderr) that uses the terminal's width, or PIPE_WIDTH when not a terminal (the
    COLUMNS environment variable still wins, as rich reads it)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH)
