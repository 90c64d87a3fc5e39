"""`zeb serve`: check the player spec and the port up front (one-line errors, exit 2), then run uvicorn."""

from __future__ import annotations

import errno
import math
import socket
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from zeb_core.serve.guard import GuardSettings
    from zeb_core.serve.limits import ServeLimits


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check_port(host: str, port: int) -> None:
    """Bind once ourselves so a busy port is one clear line rather than uvicorn's traceback and exit 1."""
    if not 0 < port < 65536:
        _fail(f"--port {port} is outside 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        _fail(f"cannot resolve --host {host!r}: {exc.strerror}")
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(f"port {port} on {host} is already in use; pick another with --port")
            _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def serve(
    player: Annotated[
        str | None,
        typer.Option(
            help="Default player spec: random, heuristic, policy:path=DIR[,temp=T], store:url=URL,which=best "
            "(default: the --store's best weights, its latest before a promotion, else heuristic)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 to accept other machines).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8042,
    store: Annotated[
        str | None,
        typer.Option(help="Weights store whose latest and best weights the page offers, e.g. file:///abs/runs/NAME."),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device for network players: cpu, cuda, or auto.")] = "cpu",
    models: Annotated[
        list[str] | None,
        typer.Option(
            help="Folder whose weights bundles clients may play, by name (policy:model=NAME; a bundle's path below "
            "the folder, a checkpoint folder by its name), repeatable. Clients never name paths.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="One more model clients may play: NAME=PATH (a checkpoint folder or file), repeatable."),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            help="A bound on what clients may ask, FIELD=VALUE, repeatable: pimc_worlds (64), mc_worlds (32), "
            "mcts_sims (200), rollout_worlds (16), decision_timeout_s (10), searches (1), games_per_client (20), "
            "game_idle_s (3600), player_memory_mb (1024), shutdown_s (3), ... (zeb_core/serve/limits.py).",
        ),
    ] = None,
    bidder: Annotated[
        str | None,
        typer.Option(
            help="Default bidder of the full game's bots (and of version-2 bid requests): random, baseline, "
            "mc:worlds=K, net:path=W (default: baseline)."
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name (or address) clients reach this server by, repeatable: the Host header must be "
            "127.0.0.1, localhost, [::1], the --host (for 0.0.0.0 this machine's names) or one of these. "
            "'*' turns the check off (only behind a proxy that checks Host).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ZEB_SERVE_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on the API (16+ characters); open the page as /#token=TOKEN.",
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(help="Requests per second each client address may make on average (default: no limit)."),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Requests a client may make at once before --rate-limit applies (default: 30).")
    ] = None,
) -> None:
    """Serve the bot protocol (POST /v1/move, versions 1 and 2) and a web page at / to play a hand, or a whole game
    to 7 marks with its auction, against the bots."""
    from pydantic import ValidationError

    from zeb_cli.consoles import resolve_device
    from zeb_core.players import SpecError
    from zeb_core.serve.app import create_app
    from zeb_core.serve.guard import GuardSettings, allowed_hosts_for

    device = resolve_device(device)
    limits, named = _limits(limit or []), _named_models(model or [])
    try:
        given = {"token": token, "rate_per_s": rate_limit, "burst": burst}  # unset: the model's default
        hosts = allowed_hosts_for(host, allowed_host or ())
        guard = GuardSettings(allowed_hosts=hosts, **{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        flags = {"token": "--token", "rate_per_s": "--rate-limit", "burst": "--burst"}
        why = [(flags.get(str(e["loc"][0]), e["loc"][0]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
        _fail("; ".join(f"{flag}: {msg}" for flag, msg in why))
    try:
        app = create_app(
            default_player=player,
            store_url=store,
            device=device,
            default_bidder=bidder,
            limits=limits,
            models=named,
            model_dirs=models or (),
            guard=guard,
        )
    except SpecError as exc:
        _fail(str(exc))
    _check_port(host, port)

    import uvicorn

    pool = app.state.pool
    shown = next((e["label"] for e in pool.listing() if e["spec"] == pool.default), pool.default)
    shown = shown.removesuffix(" (server default)")
    typer.echo(
        f"Zeb is serving on http://{host}:{port}/ (default partner and opponents: {shown}); Ctrl+C stops it.", err=True
    )
    typer.echo(_guard_line(guard), err=True)
    grace = math.ceil(limits.shutdown_s)  # then in-flight requests are cancelled and SIGTERM ends the process
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=grace)


def _limits(given: list[str]) -> ServeLimits:
    """ServeLimits from --limit FIELD=VALUE options; a bad one is one line naming the field, and exit 2."""
    from pydantic import ValidationError

    from zeb_core.serve.limits import ServeLimits

    values: dict[str, str] = {}
    for item in given:
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in ServeLimits.model_fields:
            _fail(f"--limit {item!r}: use FIELD=VALUE, FIELD one of {', '.join(ServeLimits.model_fields)}")
        values[key.strip()] = value.strip()
    try:
        return ServeLimits.model_validate(values)
    except ValidationError as exc:
        _fail("; ".join(f"--limit {e['loc'][0]}: {e['msg']}" for e in exc.errors()))
    raise AssertionError("unreachable")


def _named_models(given: list[str]) -> dict[str, str]:
    """{name: path} from --model NAME=PATH options."""
    named: dict[str, str] = {}
    for item in given:
        name, eq, path = item.partition("=")
        if not eq or not name.strip() or not path.strip():
            _fail(f"--model {item!r}: use NAME=PATH")
        named[name.strip()] = path.strip()
    return named


def _guard_line(guard: GuardSettings) -> str:
    """One line on what the server lets in, so an operator exposing it sees what is (not) protected."""
    hosts = "any Host" if guard.allowed_hosts is None else "Host " + ", ".join(guard.allowed_hosts)
    token = "a token on the API" if guard.token else "no token (anyone who reaches the port can use it)"
    rate = f"{guard.rate_per_s:g} requests/s per client (burst {guard.burst})" if guard.rate_per_s else "no rate limit"
    return f"It answers to {hosts}; {token}; {rate}."
