"""`zeb serve`: the bot protocol over HTTP, game sessions for the web page, and the page itself.

Every error a client can cause is a 4xx with `{"error": "<one clear sentence>"}`; nothing a client sends may
stop the server, so bodies are read and parsed here (size-capped) rather than by FastAPI's validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from zeb_core.bot import BotSession
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.players.base import SpecError
from zeb_core.serve.game import HUMAN_SEAT, GameError, GameStore
from zeb_core.serve.players import POLICY_NOTE, PlayerPool
from zeb_core.serve.schema import MOVE_REQUEST, NEW_GAME_REQUEST, PLAY_REQUEST, body, errors

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
MAX_PATHS = 8


class ClientError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request, required: bool = True) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ClientError(f"the request body is larger than {MAX_BODY} bytes", 413)
    if not body.strip():
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


def create_app(
    default_player: str | None = None,
    store_url: str | None = None,
    store_name: str = DEFAULT_NAME,
    device: str = "cpu",
    refresh_s: float = 30.0,
    max_games: int = 1000,
) -> FastAPI:
    """The app; players are built on first use, and the default one right away so a bad spec fails at start.

    No `default_player`: the store's best weights when there is a store with some, else heuristic."""
    pool = PlayerPool(default_player, store_url, store_name, device, refresh_s)
    pool.get(pool.default)  # raises SpecError for a bad --player
    games = GameStore(pool.get, max_games)
    app = FastAPI(title="Zeb", description="Texas 42 bots: the bot protocol over HTTP and a page to play them.")
    app.state.pool, app.state.games = pool, games

    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return _error(str(exc), exc.status)

    @app.exception_handler(GameError)
    async def _game_error(_: Request, exc: GameError) -> JSONResponse:
        return _error(str(exc), exc.status)

    @app.exception_handler(SpecError)
    async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return _error(str(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(
                f"there is no {request.url.path} here; see GET /v1/players, POST /v1/move, POST /v1/games", 404
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
        path: Annotated[
            list[str], Query(description="checkpoint folders or files to list too", max_length=MAX_PATHS)
        ] = [],  # noqa: B006 - FastAPI copies a Query default; it is never mutated
    ) -> dict[str, Any]:
        """The players the page offers; each `path=` adds that checkpoint's policy player (checked, or why not)."""
        return {"default": pool.default, "players": pool.listing(path), "note": POLICY_NOTE}

    @app.post("/v1/move", responses=errors(400, 413), openapi_extra=body(MOVE_REQUEST))
    async def move(request: Request, player: Annotated[str | None, Query(min_length=1)] = None) -> JSONResponse:
        """The bot protocol: a request for the seat to move in, `{"play", "policy", "value"}` out."""
        body = _object(await _json_body(request))
        spec = _spec(player, "player") or _spec(body.get("player"), "player")

        def answer() -> dict[str, Any]:
            bot = pool.get(spec)
            with pool.compute_lock:
                return BotSession(bot, seed=0).respond(body)

        reply = await run_in_threadpool(answer)
        if "error" in reply:
            status = 500 if reply["error"].startswith("internal error") else 400
            return _error(reply["error"], status)
        return JSONResponse(reply)

    @app.post("/v1/games", responses=errors(400, 413), openapi_extra=body(NEW_GAME_REQUEST, required=False))
    async def new_game(request: Request) -> dict[str, Any]:
        """Deal a hand (benchmark distribution, from `seed` when given) and let the bots play up to seat 0."""
        body = _object(await _json_body(request, required=False))
        bots = _bots(body, pool.default)
        seed = body.get("seed")

        def create() -> dict[str, Any]:
            for spec in set(bots.values()):  # build (load weights) before taking the lock every move waits on
                pool.get(spec)
            with pool.compute_lock:
                return games.create(seed, bots).view()

        return await run_in_threadpool(create)

    @app.get("/v1/games/{game_id}", responses=errors(404))
    def get_game(game_id: str) -> dict[str, Any]:
        game = games.get(game_id)
        with game.lock:
            return game.view()

    @app.post("/v1/games/{game_id}/play", responses=errors(400, 404, 409, 413, 422), openapi_extra=body(PLAY_REQUEST))
    async def play(request: Request, game_id: str) -> dict[str, Any]:
        """Play seat 0's domino, then the bots' moves up to seat 0's next turn (or the end of the hand)."""
        body = _object(await _json_body(request))
        if "domino" not in body:
            raise ClientError("missing field 'domino' (the id of the domino to play)")

        def run() -> dict[str, Any]:
            with pool.compute_lock:
                return games.play(game_id, body["domino"]).view()

        return await run_in_threadpool(run)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
