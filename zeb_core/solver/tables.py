"""The engine's rule tables recast as 28-bit domino masks, so the numba search works on bitmasks.

Nothing here restates a rule: every array is derived from `zeb_core.engine.dominoes.TABLES` and `COUNT`, so the
solver agrees with the engine by construction. Bit d of a mask stands for domino id d.
"""

from __future__ import annotations

import numpy as np

from zeb_core.engine.dominoes import COUNT, N_DECLS, N_DOMINOES, N_SUITS, TABLES

BITS = np.int64(1) << np.arange(N_DOMINOES, dtype=np.int64)  # [28] the mask of each domino


def _mask(selected: np.ndarray) -> np.ndarray:
    """OR of BITS over the last axis where `selected` (bool [..., 28]) is true."""
    return (selected.astype(np.int64) * BITS).sum(axis=-1).astype(np.int64)


FOLLOW = _mask(TABLES["follows"])  # [10, 8] dominoes that follow suit s under decl
LED = TABLES["led"].astype(np.int64)  # [10, 28] suit a domino leads
LEADS = _mask(LED[:, None, :] == np.arange(N_SUITS)[None, :, None])  # [10, 8] dominoes that lead suit s
RANK = TABLES["rank"].astype(np.int64)  # [10, 8, 28] rank of a domino in a trick of led suit s
ABOVE = _mask(RANK[:, :, None, :] > RANK[:, :, :, None])  # [10, 8, 28] dominoes ranked above d in suit s
POINTS = COUNT.astype(np.int64)  # [28] count points of each domino
TEN = int(_mask(COUNT == 10))  # the 10-point dominoes
FIVE = int(_mask(COUNT == 5))  # the 5-point dominoes

assert FOLLOW.shape == (N_DECLS, N_SUITS) and ABOVE.shape == (
    N_DECLS,
    N_SUITS,
    N_DOMINOES,
)

# All of one declaration's masks in one flat int64 row, so the search passes a single small array around.
R_FOLLOW, R_LEADS, R_LED, R_RANK, R_ABOVE, R_POINTS, RULES_SIZE = 0, 8, 16, 44, 268, 492, 520
RULES = np.concatenate(
    [
        FOLLOW,
        LEADS,
        LED,
        RANK.reshape(N_DECLS, -1),
        ABOVE.reshape(N_DECLS, -1),
        np.broadcast_to(POINTS, (N_DECLS, N_DOMINOES)),
    ],
    axis=1,
).astype(np.int64)  # [10, 520]
assert RULES.shape == (N_DECLS, RULES_SIZE)
