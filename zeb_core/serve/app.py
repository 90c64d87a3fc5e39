"""`zeb serve`: the bot protocol over HTTP, game sessions for the web page, and the page itself.

Every error a client can cause is a 4xx with `{"error": "<one clear sentence>"}`; nothing a client sends may
stop the server, so bodies are parsed here rather than by FastAPI's validation. `guard.RequestGuard` reads them
first (size-capped, JSON-typed) and checks Host, Origin, the token and the rate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from zeb_core.bot import BotSession
from zeb_core.bot_v2 import split_full_spec
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.players.base import SpecError
from zeb_core.serve.fullgame import DEFAULT_TARGET, FullGame, FullGameStore
from zeb_core.serve.game import HUMAN_SEAT, GameError, GameStore
from zeb_core.serve.guard import GuardSettings, RequestGuard, client_key
from zeb_core.serve.limits import DecisionRunner, RequestRefused, ServeLimits
from zeb_core.serve.models import OfferedModels
from zeb_core.serve.players import BIDDER, POLICY_NOTE, PlayerPool
from zeb_core.serve.schema import (
    MOVE_ANY_REQUEST,
    NEW_GAME_REQUEST,
    PLAY_REQUEST,
    BidBody,
    DeclareBody,
    DominoBody,
    NewFullGame,
    body,
    errors,
    model_schema,
    parse,
)

STATIC = Path(__file__).parent / "static"
MAX_PATHS = 8


class ClientError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request, required: bool = True) -> Any:
    body = await request.body()  # RequestGuard has read it, refusing one past its size limit
    if not body:  # no body at all; whitespace alone is not JSON (RFC 8259 wants a value) and gets its error
        if required:
            raise ClientError("the request body is empty; send a JSON object")
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ClientError(f"the request is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError):  # undecodable bytes, 4300+ digit integers, deep nesting
        raise ClientError("the request is not valid JSON (undecodable, too deep or a number too long)") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ClientError("the request must be a JSON object")
    return body


def _spec(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ClientError(f"{field!r} must be a non-empty player spec string, got {value!r}")
    return value.strip()


def _bots(body: dict[str, Any], default: str) -> dict[int, str]:
    """Seat -> spec from `bots` ({"1": spec, ...}), or `partner` and `opponents`; unset seats get the default."""
    partner = _spec(body.get("partner"), "partner") or default
    opponents = _spec(body.get("opponents"), "opponents") or default
    bots = {1: opponents, 2: partner, 3: opponents}
    given = body.get("bots")
    if given is not None:
        if not isinstance(given, dict):
            raise ClientError("'bots' must be an object mapping seats 1, 2, 3 to player specs")
        for key, spec in given.items():
            if key not in ("1", "2", "3"):
                raise ClientError(f"'bots' seat {key!r} is not one of 1, 2, 3 (seat {HUMAN_SEAT} is yours)")
            bots[int(key)] = _spec(spec, f"bots.{key}") or default
    return bots


def _named_specs(body: dict[str, Any]) -> set[str]:
    """Every spec the body names, those that `bots` overrides included: a bad one is an error even unused."""
    given = body.get("bots")
    named = [body.get("partner"), body.get("opponents"), *(given.values() if isinstance(given, dict) else ())]
    return {v.strip() for v in named if isinstance(v, str) and v.strip()}


def _parsed(model: type, body: Any) -> Any:
    try:
        return parse(model, body)
    except ValueError as exc:
        raise ClientError(str(exc)) from None


def _client(request: Request) -> str:
    """Who asks, for the games each client may keep: its address (an IPv6 client's /64), as the rate limit counts."""
    return client_key(request.scope)


def _wants_bidder(body: dict[str, Any]) -> bool:
    """A request of another protocol version than 1 (version 2 bids and declares with a bidder)."""
    version = body.get("version", 1)
    return type(version) is not int or version != 1


def create_app(
    default_player: str | None = None,
    store_url: str | None = None,
    store_name: str = DEFAULT_NAME,
    device: str = "cpu",
    refresh_s: float = 30.0,
    max_games: int | None = None,
    default_bidder: str | None = None,
    limits: ServeLimits | None = None,
    models: Mapping[str, str | Path] | None = None,
    model_dirs: Sequence[str | Path] = (),
    guard: GuardSettings | None = None,
) -> FastAPI:
    """The app; players are built on first use, and the default one right away so a bad spec fails at start.

    No `default_player`: the store's best weights when there is a store with some, else heuristic. No
    `default_bidder`: baseline where it exists, else random (the full game's bots are BIDDER+PLAYER). Clients'
    specs are held to `limits` and may name only the models offered: `models` (name -> path) and every bundle
    under `model_dirs` (serve/models.py); `max_games` overrides limits.max_games. No `guard`:
    GuardSettings' defaults (any Host, no token, no rate limit); `zeb serve` passes the names it binds."""
    limits = limits or ServeLimits()
    if max_games is not None:
        limits = limits.model_copy(update={"max_games": max_games})
    offered = OfferedModels(models, list(model_dirs))  # raises SpecError for a model that is not there
    pool = PlayerPool(
        default_player, store_url, store_name, device, refresh_s, default_bidder=default_bidder, limits=limits,
        models=offered,
    )  # fmt: skip
    pool.get(pool.default)  # raises SpecError for a bad --player
    pool.get_bidder(pool.default_bidder)  # and for a bad --bidder
    bounds = {"per_client": limits.games_per_client, "idle_s": limits.game_idle_s}
    bounds["lock_wait_s"] = limits.decision_timeout_s
    games = GameStore(pool.player, limits.max_games, **bounds)
    full_games = FullGameStore(pool.session, limits.max_games, **bounds)
    runner = DecisionRunner(limits)
    app = FastAPI(title="Zeb", description="Texas 42 bots: the bot protocol over HTTP and a page to play them.")
    app.state.pool, app.state.games, app.state.full_games = pool, games, full_games
    app.state.runner = runner
    app.state.guard, app.state.refusals = guard or GuardSettings(), Counter[str]()
    app.add_middleware(RequestGuard, settings=app.state.guard, refusals=app.state.refusals)

    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return _error(str(exc), exc.status)

    @app.exception_handler(GameError)
    async def _game_error(_: Request, exc: GameError) -> JSONResponse:
        return _error(str(exc), exc.status)

    @app.exception_handler(SpecError)
    async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return _error(str(exc), 400)

    @app.exception_handler(RequestRefused)
    async def _refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return _error(str(exc), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(
                f"there is no {request.url.path} here; see GET /v1/players, POST /v1/move, POST /v1/games, "
                "POST /v1/full-games",
                404,
            )
        response = _error(str(exc.detail), exc.status_code)
        if exc.status_code == 405:
            response = _error(f"{request.method} is not allowed on {request.url.path}", 405)
        response.headers.update(exc.headers or {})  # a 405 says which methods are (Allow, RFC 9110)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(f"{where}: {first.get('msg', 'invalid request')}", 400)

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "default_player": pool.default}

    @app.get("/v1/players", responses=errors(400))
    def players(
        path: Annotated[list[str], Query(include_in_schema=False)] = [],  # noqa: B006 - refused, never mutated
        bidder: Annotated[
            list[str], Query(description="bidder specs to list too (the full game)", max_length=MAX_PATHS)
        ] = [],  # noqa: B006 - FastAPI copies a Query default; it is never mutated
    ) -> dict[str, Any]:
        """The players the page offers: the built-in ones, the store's, the operator's models (`models`, by name),
        and the limits a client's spec must keep. `bidders` are the full game's bidders (each `bidder=` adds that
        spec); a full-game bot is BIDDER+PLAYER. A `path=` is refused: the server reads only what it offers."""
        if path:
            raise ClientError(
                "path= is not accepted: this server plays only the models its operator offers, listed here under "
                "'models' (name one as policy:model=NAME)"
            )
        return {
            "default": pool.default,
            "players": pool.listing(),
            "note": POLICY_NOTE,
            "default_bidder": pool.default_bidder,
            "bidders": pool.bidder_listing(bidder),
            "default_target": DEFAULT_TARGET,
            "models": [m.entry() for m in offered.models.values()],
            "limits": limits.model_dump(),
        }

    @app.post("/v1/move", responses=errors(400, 413, 503, 504), openapi_extra=body(MOVE_ANY_REQUEST))
    async def move(request: Request, player: Annotated[str | None, Query(min_length=1)] = None) -> JSONResponse:
        """The bot protocol: version 1 (a play: `{"play", "policy", "value"}` out) or version 2 (a bid, a
        declaration or a play; docs/bot-protocol-v2.md). `player` may be BIDDER+PLAYER."""
        body = _object(await _json_body(request))
        spec = _spec(player, "player") or _spec(body.get("player"), "player")
        bidder_spec, player_spec = split_full_spec(spec) if spec else (None, None)
        player_spec = pool.check(player_spec)  # the client spec policy, before any work
        bidder_spec = pool.check(bidder_spec, BIDDER) if bidder_spec or _wants_bidder(body) else None
        search = pool.is_search(player_spec) or (bidder_spec is not None and pool.is_search(bidder_spec, BIDDER))

        def answer() -> dict[str, Any]:
            pool.get(player_spec)  # built here, so a spec that cannot be is a 400 rather than a protocol error
            bidder = None
            if bidder_spec is not None:
                pool.get_bidder(bidder_spec)
                bidder = pool.bidder(bidder_spec)
            return BotSession(pool.player(player_spec), seed=0, bidder=bidder).respond(body)

        reply = await runner.run(answer, search)
        if "error" in reply:
            status = 500 if reply["error"].startswith("internal error") else 400
            return _error(reply["error"], status)
        return JSONResponse(reply)

    @app.post("/v1/games", responses=errors(400, 413, 503, 504), openapi_extra=body(NEW_GAME_REQUEST, required=False))
    async def new_game(request: Request) -> dict[str, Any]:
        """Deal a hand (benchmark distribution, from `seed` when given) and let the bots play up to seat 0."""
        body = _object(await _json_body(request, required=False))
        bots = {seat: pool.check(spec) for seat, spec in _bots(body, pool.default).items()}
        named = set(bots.values()) | {pool.check(spec) for spec in _named_specs(body)}
        seed, owner = body.get("seed"), _client(request)

        def create() -> dict[str, Any]:
            for spec in named:  # built (weights loaded) first: a bad one is a 400 before the deal
                pool.get(spec)
            return games.create(seed, bots, owner).view()

        return await runner.run(create, any(pool.is_search(spec) for spec in named))

    @app.get("/v1/games/{game_id}", responses=errors(404, 409))
    def get_game(game_id: str) -> dict[str, Any]:
        return games.view(game_id)

    @app.post(
        "/v1/games/{game_id}/play",
        responses=errors(400, 404, 409, 413, 422, 503, 504),
        openapi_extra=body(PLAY_REQUEST),
    )
    async def play(request: Request, game_id: str) -> dict[str, Any]:
        """Play seat 0's domino, then the bots' moves up to seat 0's next turn (or the end of the hand)."""
        body = _object(await _json_body(request))
        if "domino" not in body:
            raise ClientError("missing field 'domino' (the id of the domino to play)")
        search = any(pool.is_search(spec) for spec in games.get(game_id).bots.values())

        def run() -> dict[str, Any]:
            return games.play(game_id, body["domino"]).view()

        return await runner.run(run, search)

    # ------------------------------------------------------------ the full game: hands to `target` marks
    @app.post(
        "/v1/full-games",
        responses=errors(400, 413, 503, 504),
        openapi_extra=body(model_schema(NewFullGame), required=False),
    )
    async def new_full_game(request: Request) -> dict[str, Any]:
        """Start a game to `target` marks (7): deal, and let the bots bid (and play) up to seat 0's first decision.

        Bots are BIDDER+PLAYER specs (a player spec bids with the default bidder)."""
        raw = _object(await _json_body(request, required=False))
        req = _parsed(NewFullGame, raw)
        bots = {seat: pool.full_spec(spec) for seat, spec in _bots(raw, "").items()}
        named = {pool.full_spec(spec) for spec in _named_specs(raw)}
        target = DEFAULT_TARGET if req.target is None else req.target
        owner = _client(request)

        def create() -> dict[str, Any]:
            for spec in set(bots.values()) | named:  # built (weights loaded) first: a bad one is a 400
                bidder, player = split_full_spec(spec)
                pool.get(player), pool.get_bidder(bidder)
            return full_games.create(req.seed, bots, target, bool(req.forced_bid), owner).view()

        return await runner.run(create, any(pool.full_is_search(spec) for spec in set(bots.values()) | named))

    @app.get("/v1/full-games/{game_id}", responses=errors(404, 409))
    def get_full_game(game_id: str) -> dict[str, Any]:
        return full_games.view(game_id)

    async def _act(game_id: str, action: Any) -> dict[str, Any]:
        search = any(pool.full_is_search(spec) for spec in full_games.get(game_id).bots.values())

        def run() -> dict[str, Any]:
            game = full_games.act(game_id, action)
            with game.lock:
                return game.view()

        return await runner.run(run, search)

    def _body_action(action: str, model: type[BaseModel], apply: Callable[[FullGame, Any], None], doc: str) -> None:
        """POST /v1/full-games/{game_id}/`action`: seat 0's decision, a JSON body parsed as `model`, then the bots."""

        async def handler(request: Request, game_id: str) -> dict[str, Any]:
            req = _parsed(model, _object(await _json_body(request)))
            return await _act(game_id, lambda g: apply(g, req))

        app.post(
            f"/v1/full-games/{{game_id}}/{action}",
            name=f"full_{action}",
            description=doc,
            responses=errors(400, 404, 409, 413, 422, 503, 504),
            openapi_extra=body(model_schema(model)),
        )(handler)

    _body_action(
        "bid",
        BidBody,
        lambda g, req: g.bid_human(req.bid),
        'Seat 0 bids (`{"bid": 31}`, `{"bid": 84}` for 2 marks) or passes (`{"bid": 0}`); then the bots.',
    )
    _body_action(
        "declare",
        DeclareBody,
        lambda g, req: g.declare_human(req.decl),
        "Seat 0, the auction's winner, names the declaration (0..9); then it leads.",
    )
    _body_action(
        "play",
        DominoBody,
        lambda g, req: g.play_human(req.domino),
        "Seat 0 plays a domino; then the bots, up to seat 0's next turn or the end of the hand.",
    )

    @app.post("/v1/full-games/{game_id}/next", responses=errors(404, 409, 503, 504))
    async def full_next(game_id: str) -> dict[str, Any]:
        """After a hand: the deal passes left and the next hand's auction starts."""
        return await _act(game_id, FullGame.next_hand)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
