"""POST /v1/move: the bot protocol over HTTP, one decision per request (a play; or, version 2, a bid or a
declaration too)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from zeb_core.serve.bot import BotSession
from zeb_core.serve.bot_v2 import split_full_spec
from zeb_core.serve.players import BIDDER
from zeb_core.serve.routes.common import Pool, Runner, error, json_body, json_object, spec
from zeb_core.serve.schema import MOVE_ANY_REQUEST, body, errors

router = APIRouter()


def _wants_bidder(body: dict[str, Any]) -> bool:
    """A request of another protocol version than 1 (version 2 bids and declares with a bidder)."""
    version = body.get("version", 1)
    return type(version) is not int or version != 1


@router.post("/v1/move", responses=errors(400, 413, 503, 504), openapi_extra=body(MOVE_ANY_REQUEST))
async def move(
    request: Request, pool: Pool, runner: Runner, player: Annotated[str | None, Query(min_length=1)] = None
) -> JSONResponse:
    """The bot protocol: version 1 (a play: `{"play", "policy", "value"}` out) or version 2 (a bid, a
    declaration or a play; docs/bot-protocol-v2.md). `player` may be BIDDER+PLAYER."""
    body = json_object(await json_body(request))
    full_spec = spec(player, "player") or spec(body.get("player"), "player")
    bidder_spec, player_spec = split_full_spec(full_spec) if full_spec else (None, None)
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
        return error(reply["error"], status)
    return JSONResponse(reply)
