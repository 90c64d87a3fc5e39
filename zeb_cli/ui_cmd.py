"""`zeb ui`: the Prefect UI on a `zeb train` run's history, after the run (or the live one while it runs).

`zeb train` records every flow run, task, log and artifact of a run in the database of its own Prefect server
(RUNS_DIR/NAME/prefect/server/prefect.db); this starts a server on that database, prints the URL and runs until
Ctrl-C. While the run's own server is up it only names that one, so one database never has two servers.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from zeb_cli.consoles import make_console
from zeb_cli.prefect_server import START_TIMEOUT_S, LocalPrefectServer, PrefectServerError

console = make_console(stderr=True)
out = make_console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def ui_cmd(
    name: Annotated[str, typer.Option(help="Run name, as given to `zeb train --name`.")] = "default",
    runs_dir: Annotated[Path, typer.Option(help="Where runs live.")] = Path("runs"),
    timeout: Annotated[float, typer.Option(help="Seconds the server may take to become healthy.")] = START_TIMEOUT_S,
) -> None:
    """Open a run's Prefect history (flow runs, tasks, logs, artifacts) in the Prefect UI; Ctrl-C stops it."""
    run_dir = runs_dir / name
    home = run_dir / "prefect" / "server"
    live = LocalPrefectServer.running(home)
    if live is not None:
        out.print(f"Prefect UI of run {name!r} (its server is up already): {live.ui_url}/runs", highlight=False)
        return
    server = LocalPrefectServer(home, log_path=run_dir / "logs" / "prefect-ui.log")
    if not server.database.is_file():
        _fail(
            f"run {name!r} has no Prefect history: {server.database} does not exist "
            f"(`zeb train --name {name}` records one; see --runs-dir)"
        )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops as cleanly as Ctrl-C
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even if started ignoring it
    try:
        console.print(f"starting a Prefect server on {server.database} ...")
        try:
            server.start(timeout)
        except PrefectServerError as exc:
            _fail(str(exc))
        out.print(f"Prefect UI of run {name!r}: {server.ui_url}/runs   (Ctrl-C stops it)", highlight=False)
        code = server.wait()
        _fail(f"the Prefect server stopped by itself (exit {code}); see {server.log_path}")
    except KeyboardInterrupt:
        console.print("stopping the Prefect server")
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
