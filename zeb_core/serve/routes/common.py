"""What the routes share: the request body read by hand (so that nothing a client sends can stop the server, and
every error is one clear sentence), the client's error, and the app's state as FastAPI dependencies.

The state is made once per app by create_app (app.state.pool, .games, .full_games, .runner); a route names the
pieces it uses as parameters (`pool: Pool`), which FastAPI fills from the request's app. They are no request
parameters: the OpenAPI schema does not show them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from zeb_core.serve.fullgame import FullGameStore
from zeb_core.serve.game import HUMAN_SEAT, GameStore
from zeb_core.serve.guard import client_key
from zeb_core.serve.limits import DecisionRunner
from zeb_core.serve.players import PlayerPool


class ClientError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def json_body(request: Request, required: bool = True) -> Any:
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


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ClientError("the request must be a JSON object")
    return body


def spec(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ClientError(f"{field!r} must be a non-empty player spec string, got {value!r}")
    return value.strip()


def bots(body: dict[str, Any], default: str) -> dict[int, str]:
    """Seat -> spec from `bots` ({"1": spec, ...}), or `partner` and `opponents`; unset seats get the default."""
    partner = spec(body.get("partner"), "partner") or default
    opponents = spec(body.get("opponents"), "opponents") or default
    seats = {1: opponents, 2: partner, 3: opponents}
    given = body.get("bots")
    if given is not None:
        if not isinstance(given, dict):
            raise ClientError("'bots' must be an object mapping seats 1, 2, 3 to player specs")
        for key, value in given.items():
            if key not in ("1", "2", "3"):
                raise ClientError(f"'bots' seat {key!r} is not one of 1, 2, 3 (seat {HUMAN_SEAT} is yours)")
            seats[int(key)] = spec(value, f"bots.{key}") or default
    return seats


def named_specs(body: dict[str, Any]) -> set[str]:
    """Every spec the body names, those that `bots` overrides included: a bad one is an error even unused."""
    given = body.get("bots")
    named = [body.get("partner"), body.get("opponents"), *(given.values() if isinstance(given, dict) else ())]
    return {v.strip() for v in named if isinstance(v, str) and v.strip()}


def client(request: Request) -> str:
    """Who asks, for the games each client may keep: its address (an IPv6 client's /64), as the rate limit counts."""
    return client_key(request.scope)


# The app's state (create_app), for the routes. Coroutines, so FastAPI reads them on the event loop, not in a thread.
async def _pool(request: Request) -> PlayerPool:
    return request.app.state.pool


async def _games(request: Request) -> GameStore:
    return request.app.state.games


async def _full_games(request: Request) -> FullGameStore:
    return request.app.state.full_games


async def _runner(request: Request) -> DecisionRunner:
    return request.app.state.runner


Pool = Annotated[PlayerPool, Depends(_pool)]
Games = Annotated[GameStore, Depends(_games)]
FullGames = Annotated[FullGameStore, Depends(_full_games)]
Runner = Annotated[DecisionRunner, Depends(_runner)]
