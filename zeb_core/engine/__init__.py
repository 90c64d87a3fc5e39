"""Batched Texas 42 play-phase engine."""

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.dominoes import COUNT, DECL_NAMES, HIGH, LOW, N_DOMINOES, domino_id, domino_name
from zeb_core.engine.state import (
    HAND_SIZE,
    N_PLAYS,
    N_SEATS,
    N_TRICKS,
    GameState,
    IllegalMoveError,
    InvalidDealError,
)

__all__ = [
    "COUNT",
    "DECL_NAMES",
    "HAND_SIZE",
    "HIGH",
    "LOW",
    "N_DOMINOES",
    "N_PLAYS",
    "N_SEATS",
    "N_TRICKS",
    "GameState",
    "IllegalMoveError",
    "InvalidDealError",
    "deal_benchmark",
    "domino_id",
    "domino_name",
    "make_generator",
]
