"""What the OpenAPI schema of `zeb serve` says about request bodies and errors.

The handlers read and check bodies themselves (so nothing a client sends can stop the server), which means
FastAPI cannot infer them; these fragments put them in the schema so that clients, and the schema-driven fuzz
test (tests/test_serve_fuzz.py), know the shapes and every status a client can cause.
"""

from __future__ import annotations

from typing import Any

from zeb_core.engine.dominoes import MAX_BID, MIN_BID, N_DECLS

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string", "minLength": 1, "description": "one clear sentence"}},
    "required": ["error"],
    "additionalProperties": False,
}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_SEAT = {"type": "integer", "minimum": 0, "maximum": 3}
_DOMINO = {"type": "integer", "minimum": 0, "maximum": 27, "description": "a domino id (spec/texas42.md)"}
_SPEC = {
    "type": "string",
    "pattern": r"^\s*(random|heuristic|policy|mcts|pimc|store)\s*(:[\s\S]*)?$",
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
    "example": {
        "seat": 0,
        "hand": [0, 6, 8, 9, 15, 20],
        "decl": 1,
        "bidder": 3,
        "bid": 40,
        "leader": 3,
        "plays": [[3, 11], [0, 1], [1, 16], [2, 2], [2, 17], [3, 27]],
    },
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


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body the handler parses itself."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the 4xx a route can answer, each `{"error": "..."}`."""
    why = {
        400: "a malformed request",
        404: "no such game",
        409: "not your turn, or the hand is over",
        413: "the body is too large",
        422: "an illegal domino",
    }
    return {s: {"description": why[s], "content": {"application/json": {"schema": _ERROR}}} for s in statuses}
