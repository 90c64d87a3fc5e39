"""GET /healthz and GET /v1/players: that the server is up, and the players, bidders, models and limits a client
may name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from zeb_core.serve.fullgame import DEFAULT_TARGET
from zeb_core.serve.players import POLICY_NOTE
from zeb_core.serve.routes.common import ClientError, Pool
from zeb_core.serve.schema import errors

MAX_PATHS = 8
router = APIRouter()


@router.get("/healthz")
def healthz(pool: Pool) -> dict[str, Any]:
    return {"ok": True, "default_player": pool.default}


@router.get("/v1/players", responses=errors(400))
def players(
    pool: Pool,
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
        "models": [m.entry() for m in pool.models.models.values()],
        "limits": pool.limits.model_dump(),
    }
