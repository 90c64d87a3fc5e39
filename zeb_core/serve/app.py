"""`zeb serve`: the bot protocol over HTTP, game sessions for the web page, and the page itself.

Every error a client can cause is a 4xx with `{"error": "<one clear sentence>"}`; nothing a client sends may
stop the server, so bodies are parsed by the routes rather than by FastAPI's validation. `guard.RequestGuard` reads
them first (size-capped, JSON-typed) and checks Host, Origin, the token and the rate. The routes are in
zeb_core/serve/routes/, one router per concern; create_app makes the state they share and includes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.serve.fullgame import FullGameStore
from zeb_core.serve.game import GameStore
from zeb_core.serve.guard import GuardSettings, RequestGuard
from zeb_core.serve.limits import DecisionRunner, ServeLimits
from zeb_core.serve.models import OfferedModels
from zeb_core.serve.players import PlayerPool
from zeb_core.serve.routes import full_games as full_games_routes
from zeb_core.serve.routes import games as games_routes
from zeb_core.serve.routes import moves, pages, players
from zeb_core.serve.routes.errors import add_error_handlers


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
    app = FastAPI(title="Zeb", description="Texas 42 bots: the bot protocol over HTTP and a page to play them.")
    app.state.pool = pool  # the routes' state (routes/common.py: Pool, Games, FullGames, Runner)
    app.state.games = GameStore(pool.player, limits.max_games, **bounds)
    app.state.full_games = FullGameStore(pool.session, limits.max_games, **bounds)
    app.state.runner = DecisionRunner(limits)
    app.state.guard, app.state.refusals = guard or GuardSettings(), Counter[str]()
    app.add_middleware(RequestGuard, settings=app.state.guard, refusals=app.state.refusals)
    add_error_handlers(app)
    for routes in (players, moves, games_routes, full_games_routes, pages):  # the OpenAPI schema's order
        app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    return app
