"""The full game for the web page, hands to `target` marks (7): POST /v1/full-games starts one, GET
/v1/full-games/{game_id} shows it, and seat 0's decisions (bid, declare, play; next after a hand) each run the
bots up to seat 0's next one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from zeb_core.serve.bot_v2 import split_full_spec
from zeb_core.serve.fullgame import DEFAULT_TARGET, FullGame, FullGameStore
from zeb_core.serve.limits import DecisionRunner
from zeb_core.serve.players import PlayerPool
from zeb_core.serve.routes.common import (
    ClientError,
    FullGames,
    Pool,
    Runner,
    bots,
    client,
    json_body,
    json_object,
    named_specs,
)
from zeb_core.serve.schema import BidBody, DeclareBody, DominoBody, NewFullGame, body, errors, model_schema, parse

router = APIRouter()


def _parsed(model: type, body: Any) -> Any:
    try:
        return parse(model, body)
    except ValueError as exc:
        raise ClientError(str(exc)) from None


@router.post(
    "/v1/full-games",
    responses=errors(400, 413, 503, 504),
    openapi_extra=body(model_schema(NewFullGame), required=False),
)
async def new_full_game(request: Request, pool: Pool, full_games: FullGames, runner: Runner) -> dict[str, Any]:
    """Start a game to `target` marks (7): deal, and let the bots bid (and play) up to seat 0's first decision.

    Bots are BIDDER+PLAYER specs (a player spec bids with the default bidder)."""
    raw = json_object(await json_body(request, required=False))
    req = _parsed(NewFullGame, raw)
    seats = {seat: pool.full_spec(spec) for seat, spec in bots(raw, "").items()}
    named = {pool.full_spec(spec) for spec in named_specs(raw)}
    target = DEFAULT_TARGET if req.target is None else req.target
    owner = client(request)

    def create() -> dict[str, Any]:
        for spec in set(seats.values()) | named:  # built (weights loaded) first: a bad one is a 400
            bidder, player = split_full_spec(spec)
            pool.get(player), pool.get_bidder(bidder)
        return full_games.create(req.seed, seats, target, bool(req.forced_bid), owner).view()

    return await runner.run(create, any(pool.full_is_search(spec) for spec in set(seats.values()) | named))


@router.get("/v1/full-games/{game_id}", responses=errors(404, 409))
def get_full_game(game_id: str, full_games: FullGames) -> dict[str, Any]:
    return full_games.view(game_id)


async def _act(
    pool: PlayerPool, full_games: FullGameStore, runner: DecisionRunner, game_id: str, action: Any
) -> dict[str, Any]:
    """Seat 0's decision `action` on the game, then the bots' up to seat 0's next one."""
    search = any(pool.full_is_search(spec) for spec in full_games.get(game_id).bots.values())

    def run() -> dict[str, Any]:
        game = full_games.act(game_id, action)
        with game.lock:
            return game.view()

    return await runner.run(run, search)


def _body_action(action: str, model: type[BaseModel], apply: Callable[[FullGame, Any], None], doc: str) -> None:
    """POST /v1/full-games/{game_id}/`action`: seat 0's decision, a JSON body parsed as `model`, then the bots."""

    async def handler(
        request: Request, game_id: str, pool: Pool, full_games: FullGames, runner: Runner
    ) -> dict[str, Any]:
        req = _parsed(model, json_object(await json_body(request)))
        return await _act(pool, full_games, runner, game_id, lambda g: apply(g, req))

    router.post(
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


@router.post("/v1/full-games/{game_id}/next", responses=errors(404, 409, 503, 504))
async def full_next(game_id: str, pool: Pool, full_games: FullGames, runner: Runner) -> dict[str, Any]:
    """After a hand: the deal passes left and the next hand's auction starts."""
    return await _act(pool, full_games, runner, game_id, FullGame.next_hand)
