"""`zeb store ...` commands (filled in by the stores work)."""

import typer

app = typer.Typer(help="Inspect and manage a weights/examples store (status, history, revert, prune).", no_args_is_help=True)
