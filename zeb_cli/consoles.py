"""The CLI's rich consoles (a terminal's own width, else wide enough that a report keeps its tables whole) and the
helpers that write to them for every command module: `fail`, a match's progress bar, the --device flag read."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Columns when the output is a file or a pipe (`make run > log`, nohup, CI): rich's default there is 80, which cut
# the `zeb train` report's full-game table to "net+poli…" and its intervals to "83.6%..9…".
PIPE_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    """A Console on stdout (or stderr) that uses the terminal's width, or PIPE_WIDTH when not a terminal (the
    COLUMNS environment variable still wins, as rich reads it)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH)


console = make_console(stderr=True)
out = make_console()


def resolve_device(device: str) -> str:
    """The flag read as zeb_core.ops.device reads it; one this machine cannot use ends the command with the reason."""
    from zeb_core.ops.device import resolve_device as resolve

    try:
        return str(resolve(device))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
        raise


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def match_progress(quiet: bool) -> Progress:
    """A match's bar on stderr (games done, elapsed, left); `quiet` (--json) hides it so stdout stays JSON alone."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("games"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=quiet,
    )
