"""`zeb store ...`: look at a store and act on it (status, history, revert, prune)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from zeb_cli.consoles import make_console
from zeb_core.formats.weights import DEFAULT_NAME

store_app = typer.Typer(
    help="Inspect and maintain a weights/examples store (file://DIR, hf://OWNER/REPO, s3://BUCKET/PREFIX).",
    no_args_is_help=True,
)
console = make_console(stderr=True)
out = make_console()

UrlArg = Annotated[str, typer.Argument(help="Store URL: file://DIR (or a path), hf://OWNER/REPO, s3://BUCKET/PREFIX.")]
NameOpt = Annotated[str, typer.Option("--name", help="Namespace (weights name).")]
ExamplesOpt = Annotated[
    str | None, typer.Option("--examples-url", help="Where examples live, if not beside the weights.")
]


def _open(url: str, examples_url: str | None):
    from zeb_core.store import StoreError, open_store

    try:
        return open_store(url, examples_url)
    except StoreError as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _guard(fn):
    """Store failures become one red line and exit code 1, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from zeb_core.store import StoreError

        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None

    return wrapper


@store_app.command("status")
@_guard
def status_cmd(
    url: UrlArg,
    name: NameOpt = DEFAULT_NAME,
    examples_url: ExamplesOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest step, best step, example files, quarantine and the lease holder."""
    store = _open(url, examples_url)
    if not store.weights.exists():
        _fail(f"no store at {store.url}; a learner creates it on its first start")
    status = store.status(name)
    if as_json:
        out.print_json(json.dumps(status))
        return
    table = Table("field", "value", title=f"store {status['url']} · {name}")
    lease = status["lease"]
    rows = [
        ("step", status["step"]),
        ("pushed at", _when(status["pushed_at"])),
        ("total games", status["total_games"]),
        ("examples ingested", status["examples_ingested"]),
        ("best step", status["best_step"]),
        ("example files", status["example_files"]),
        ("example bytes", f"{status['example_bytes']:,}"),
        ("newest example file", status["newest_example"]),
        ("quarantined files", status["quarantined"]),
        ("lease", f"{lease['holder']} until {_when(lease['expires'])}" if lease else "free"),
    ]
    for key, value in rows:
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


@store_app.command("history")
@_guard
def history_cmd(
    url: UrlArg,
    name: NameOpt = DEFAULT_NAME,
    examples_url: ExamplesOpt = None,
    limit: Annotated[int, typer.Option(help="Newest pushes to show.")] = 20,
) -> None:
    """Pushes of the namespace, newest first; a revision (or `step:N`) from here goes to `zeb store revert --to`."""
    pushes = _open(url, examples_url).history(name, limit=limit)
    if not pushes:
        console.print(f"no pushes of {name!r} in {url}")
        return
    table = Table("revision", "step", "time", "message", title=f"pushes of {name}")
    for p in pushes:
        table.add_row(p.revision, str(p.step), _when(p.time), p.message.split(": ", 1)[-1] if ": " in p.message else "")
    out.print(table)


@store_app.command("revert")
@_guard
def revert_cmd(
    url: UrlArg,
    to: Annotated[str, typer.Option("--to", help="Revision id (or prefix) or step:N.")],
    name: NameOpt = DEFAULT_NAME,
    examples_url: ExamplesOpt = None,
    reason: Annotated[str, typer.Option(help="Why; recorded in the state and the commit message.")] = "",
    force: Annotated[bool, typer.Option("--force", help="Revert even while a learner holds the lease.")] = False,
) -> None:
    """Make an earlier push the newest again (weights, optimizer, state in one push); the learner resumes from it.
    Refused while a learner holds the namespace (it would push over the revert), as in the revert flow."""
    target, rev = _open(url, examples_url).revert(name, to, reason, force=force)
    out.print(f"reverted {name} to push {target.revision} (step {target.step}); new revision {rev.id}")


@store_app.command("prune")
@_guard
def prune_cmd(
    url: UrlArg,
    keep: Annotated[int, typer.Option("--keep", help="Newest example files to keep.")],
    name: NameOpt = DEFAULT_NAME,
    examples_url: ExamplesOpt = None,
    max_age_hours: Annotated[float | None, typer.Option(help="Also delete files older than this.")] = None,
    quarantine_days: Annotated[float, typer.Option(help="Delete quarantined files older than this.")] = 7.0,
) -> None:
    """Delete example files beyond the newest K (and old quarantined files); never one the learner has not read,
    nor one its replay buffer refills from after a restart (from the buffer floor of its last push on)."""
    from zeb_core.learn.state import prune_sparing_buffer, pushed_buffer_floor

    if keep < 0:
        _fail("--keep must be >= 0")
    store = _open(url, examples_url)
    floor = pushed_buffer_floor(store, name)
    max_age_s = None if max_age_hours is None else max_age_hours * 3600
    report = prune_sparing_buffer(store, name, keep, max_age_s, floor)
    removed_q = store.prune_quarantine(quarantine_days * 86400)
    out.print(
        f"removed {len(report.removed)} example files and {len(removed_q)} quarantined files; "
        f"kept back {report.kept_unread} example files the learner has not ingested yet"
        + (f" and every file from {floor} on (its replay buffer refills from them)" if floor else "")
        + f"; {len(store.list_examples(name))} example files remain"
    )
