"""A hand against the bots for the web page: POST /v1/games deals it, GET /v1/games/{game_id} shows it, POST
/v1/games/{game_id}/play plays seat 0's domino and the bots' moves after it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zeb_core.serve.routes.common import (
    ClientError,
    Games,
    Pool,
    Runner,
    bots,
    client,
    json_body,
    json_object,
    named_specs,
)
from zeb_core.serve.schema import NEW_GAME_REQUEST, PLAY_REQUEST, body, errors

router = APIRouter()


@router.post("/v1/games", responses=errors(400, 413, 503, 504), openapi_extra=body(NEW_GAME_REQUEST, required=False))
async def new_game(request: Request, pool: Pool, games: Games, runner: Runner) -> dict[str, Any]:
    """Deal a hand (benchmark distribution, from `seed` when given) and let the bots play up to seat 0."""
    body = json_object(await json_body(request, required=False))
    seats = {seat: pool.check(spec) for seat, spec in bots(body, pool.default).items()}
    named = set(seats.values()) | {pool.check(spec) for spec in named_specs(body)}
    seed, owner = body.get("seed"), client(request)

    def create() -> dict[str, Any]:
        for spec in named:  # built (weights loaded) first: a bad one is a 400 before the deal
            pool.get(spec)
        return games.create(seed, seats, owner).view()

    return await runner.run(create, any(pool.is_search(spec) for spec in named))


@router.get("/v1/games/{game_id}", responses=errors(404, 409))
def get_game(game_id: str, games: Games) -> dict[str, Any]:
    return games.view(game_id)


@router.post(
    "/v1/games/{game_id}/play",
    responses=errors(400, 404, 409, 413, 422, 503, 504),
    openapi_extra=body(PLAY_REQUEST),
)
async def play(request: Request, game_id: str, pool: Pool, games: Games, runner: Runner) -> dict[str, Any]:
    """Play seat 0's domino, then the bots' moves up to seat 0's next turn (or the end of the hand)."""
    body = json_object(await json_body(request))
    if "domino" not in body:
        raise ClientError("missing field 'domino' (the id of the domino to play)")
    search = any(pool.is_search(spec) for spec in games.get(game_id).bots.values())

    def run() -> dict[str, Any]:
        return games.play(game_id, body["domino"]).view()

    return await runner.run(run, search)
