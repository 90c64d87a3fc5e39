"""What the OpenAPI schema of `zeb serve` says about request bodies and errors.

The handlers read and check bodies themselves (so nothing a client sends can stop the server), which means
FastAPI cannot infer them; these fragments put them in the schema so that clients, and the schema-driven fuzz
test (tests/test_serve_fuzz.py), know the shapes and every status a client can cause.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from zeb_core.engine.dominoes import MAX_BID, MIN_BID, N_DECLS
from zeb_core.players.base import PLAYERS
from zeb_core.serve.bot import SPEC_EXAMPLE
from zeb_core.serve.bot_v2 import MAX_BID_VALUE, MAX_TARGET

M = TypeVar("M", bound=BaseModel)

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string", "minLength": 1, "description": "one clear sentence"}},
    "required": ["error"],
    "additionalProperties": False,
}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_KINDS = "|".join(sorted(PLAYERS))  # the one table of kinds: a new kind is accepted here too
_SEAT = {"type": "integer", "minimum": 0, "maximum": 3}
_DOMINO = {"type": "integer", "minimum": 0, "maximum": 27, "description": "a domino id (spec/texas42.md)"}
_SPEC = {
    "type": "string",
    "pattern": rf"^\s*({_KINDS})\s*(:[\s\S]*)?$",
    "description": "a player spec: KIND[:key=value,...] (GET /v1/players)",
}

MOVE_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "The bot protocol: what the seat to move may know (spec/bot-protocol.md).",
    "properties": {
        "seat": _SEAT,
        "hand": {"type": "array", "items": _DOMINO, "maxItems": 7, "uniqueItems": True},
        "decl": {"type": "integer", "minimum": 0, "maximum": N_DECLS - 1},
        "bidder": _SEAT,
        "bid": {"type": "integer", "minimum": MIN_BID, "maximum": MAX_BID},
        "leader": _SEAT,
        "plays": {
            "type": "array",
            "maxItems": 27,
            "items": {"type": "array", "prefixItems": [_SEAT, _DOMINO], "items": False, "minItems": 2},
        },
        "player": _SPEC,
    },
    "required": ["seat", "hand", "decl", "bidder", "bid"],
    "example": SPEC_EXAMPLE,
}
NEW_GAME_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "Every field may be left out or null: a random seed, the server's default player.",
    "properties": {
        "seed": _or_null({"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
        "partner": _or_null(_SPEC),
        "opponents": _or_null(_SPEC),
        "bots": _or_null(
            {"type": "object", "propertyNames": {"enum": ["1", "2", "3"]}, "additionalProperties": _or_null(_SPEC)}
        ),
    },
}
PLAY_REQUEST: dict[str, Any] = {"type": "object", "properties": {"domino": _DOMINO}, "required": ["domino"]}


# ---------------------------------------------------------------- the full game (bot protocol 2, the page's games)
def _full_spec_pattern() -> str:
    from zeb_core.fullgame.bidders import BIDDERS

    bidders = "|".join(sorted(BIDDERS))
    return rf"^\s*({bidders})\s*(:[^+]*)?\+\s*({_KINDS})\s*(:[\s\S]*)?$"


_FULL_SPEC = {
    "anyOf": [_SPEC, {"type": "string", "pattern": _full_spec_pattern()}],
    "description": "BIDDER+PLAYER (e.g. random+heuristic), or a player spec that bids with the server's default bidder",
}
_V1_MOVE = {**MOVE_REQUEST, "properties": {**MOVE_REQUEST["properties"], "version": {"const": 1}}}
_V1_MOVE.pop("example")
_V1_MOVE["description"] = "Version 1 (no `version`, or 1): a play (spec/bot-protocol.md)."
_V1_MOVE["properties"]["player"] = _FULL_SPEC
_V2_PLAYER = {"player": {**_FULL_SPEC, "description": "the bot to ask: BIDDER+PLAYER or a player spec"}}


def _v2_move_schemas() -> list[dict[str, Any]]:
    from zeb_core.serve.bot_v2 import schemas

    out = []
    for phase, schema in schemas().items():
        schema = {**schema, "properties": {**schema["properties"], **_V2_PLAYER}}
        schema["description"] = f"Version 2, phase {phase!r} (docs/bot-protocol-v2.md). " + schema.get(
            "description", ""
        )
        out.append(schema)
    return out


MOVE_ANY_REQUEST: dict[str, Any] = {
    "description": "The bot protocol, version 1 (a play) or version 2 (a bid, a declaration, a play).",
    "anyOf": [_V1_MOVE, *_v2_move_schemas()],
    "example": MOVE_REQUEST["example"],
}


class NewFullGame(BaseModel):
    """POST /v1/full-games: every field may be left out or null."""

    model_config = ConfigDict(extra="ignore")
    seed: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None
    target: Annotated[StrictInt, Field(ge=1, le=MAX_TARGET, description="marks that win the game (7)")] | None = None
    forced_bid: StrictBool | None = Field(None, description="house rule: the dealer must bid when all others pass")
    partner: Annotated[str, Field(json_schema_extra=_FULL_SPEC)] | None = None
    opponents: Annotated[str, Field(json_schema_extra=_FULL_SPEC)] | None = None
    bots: dict[str, Annotated[str, Field(json_schema_extra=_FULL_SPEC)] | None] | None = Field(
        None, json_schema_extra={"propertyNames": {"enum": ["1", "2", "3"]}}
    )


class BidBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bid: Annotated[StrictInt, Field(ge=0, le=MAX_BID_VALUE, description="0 pass, 30..41 points, 42 x k marks")]


class DeclareBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    decl: Annotated[StrictInt, Field(ge=0, le=N_DECLS - 1, description="0..6 a pip suit, 7 doubles-trump, ...")]


class DominoBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    domino: Annotated[StrictInt, Field(ge=0, le=27, description="a domino id (spec/texas42.md)")]


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A flat model's JSON schema with the `json_schema_extra` spec fields folded in (no `type` beside `anyOf`)."""
    schema = model.model_json_schema()
    for prop in schema.get("properties", {}).values():
        for branch in prop.get("anyOf", []):
            if "anyOf" in branch:  # a spec: string | null -> the spec's own anyOf
                branch.pop("type", None)
            extra = branch.get("additionalProperties")
            if isinstance(extra, dict):
                for inner in extra.get("anyOf", []):
                    if "anyOf" in inner:
                        inner.pop("type", None)
    return schema


def parse(model: type[M], body: Any) -> M:
    """`body` as `model`, or ValueError with one sentence (the app answers it as a 400)."""
    from zeb_core.serve.bot_v2 import validation_message

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body the handler parses itself."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the 4xx a route can answer, each `{"error": "..."}`."""
    why = {
        400: "a malformed request",
        404: "no such game",
        409: "not your turn, or not this phase of the hand (auction, declaration, play, between hands)",
        413: "the body is too large",
        422: "an illegal domino, bid or declaration",
        503: "busy: the server's search slots stayed taken (try again)",
        504: "the bots' decisions ran past the server's time budget",
    }
    return {s: {"description": why[s], "content": {"application/json": {"schema": _ERROR}}} for s in statuses}
