"""Every error a client can cause as a 4xx with `{"error": "<one clear sentence>"}`, and anything else as a 500
of the same shape: the exception handlers create_app adds to its app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zeb_core.players.base import SpecError
from zeb_core.serve.game import GameError
from zeb_core.serve.limits import RequestRefused
from zeb_core.serve.routes.common import ClientError, error


def add_error_handlers(app: FastAPI) -> None:
    """The app's exception handlers: the client's errors, a game's, a bad spec, a refused request, FastAPI's own
    (404, 405, validation) and, last, any other exception."""

    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return error(str(exc), exc.status)

    @app.exception_handler(GameError)
    async def _game_error(_: Request, exc: GameError) -> JSONResponse:
        return error(str(exc), exc.status)

    @app.exception_handler(SpecError)
    async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return error(str(exc), 400)

    @app.exception_handler(RequestRefused)
    async def _refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return error(str(exc), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error(
                f"there is no {request.url.path} here; see GET /v1/players, POST /v1/move, POST /v1/games, "
                "POST /v1/full-games",
                404,
            )
        response = error(str(exc.detail), exc.status_code)
        if exc.status_code == 405:
            response = error(f"{request.method} is not allowed on {request.url.path}", 405)
        response.headers.update(exc.headers or {})  # a 405 says which methods are (Allow, RFC 9110)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error(f"{where}: {first.get('msg', 'invalid request')}", 400)

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        return error(f"internal error: {type(exc).__name__}: {exc}", 500)
