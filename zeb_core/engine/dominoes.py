"""Static domino facts and the per-declaration lookup tables that make batched play a few gathers.

Every rule of spec/texas42.md that depends only on (declaration, led suit, domino) is precomputed here once,
so the batched engine never branches per game: it indexes these tables with tensors.

Suits: 0..6 are pip suits; 7 is "the called suit" (trumps, or the doubles under decl 7/8).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

N_DOMINOES = 28
N_DECLS = 10
N_SUITS = 8
CALLED_SUIT = 7
NO_TRUMP = 9
DOUBLES_TRUMP = 7
DOUBLES_SUIT = 8
DECL_NAMES = (
    "blanks",
    "ones",
    "twos",
    "threes",
    "fours",
    "fives",
    "sixes",
    "doubles-trump",
    "doubles-suit",
    "no-trump",
)
MIN_BID, MAX_BID = 30, 42
TOTAL_POINTS = 42


def domino_id(high: int, low: int) -> int:
    if high < low:
        high, low = low, high
    return high * (high + 1) // 2 + low


HIGH = np.array([h for h in range(7) for _ in range(h + 1)], dtype=np.int64)
LOW = np.array([lo for h in range(7) for lo in range(h + 1)], dtype=np.int64)
IS_DOUBLE = HIGH == LOW
PIP_SUM = HIGH + LOW
COUNT = np.zeros(N_DOMINOES, dtype=np.int64)
COUNT[domino_id(5, 5)] = COUNT[domino_id(6, 4)] = 10
COUNT[domino_id(5, 0)] = COUNT[domino_id(4, 1)] = COUNT[domino_id(3, 2)] = 5


def domino_name(d: int) -> str:
    return f"{HIGH[d]}-{LOW[d]}"


def _carries(d: int, pip: int) -> bool:
    return HIGH[d] == pip or LOW[d] == pip


def _build_tables() -> dict[str, np.ndarray]:
    called = np.zeros((N_DECLS, N_DOMINOES), dtype=bool)
    for decl in range(N_DECLS):
        for d in range(N_DOMINOES):
            if decl <= 6:
                called[decl, d] = _carries(d, decl)
            elif decl in (DOUBLES_TRUMP, DOUBLES_SUIT):
                called[decl, d] = IS_DOUBLE[d]
    led = np.where(called, CALLED_SUIT, HIGH[None, :]).astype(np.int64)
    led[NO_TRUMP] = HIGH

    follows = np.zeros((N_DECLS, N_SUITS, N_DOMINOES), dtype=bool)
    rank = np.zeros((N_DECLS, N_SUITS, N_DOMINOES), dtype=np.int64)
    for decl in range(N_DECLS):
        for suit in range(N_SUITS):
            for d in range(N_DOMINOES):
                if suit == CALLED_SUIT:
                    follows[decl, suit, d] = called[decl, d]
                else:
                    follows[decl, suit, d] = _carries(d, suit) and not called[decl, d]
                if called[decl, d] and decl <= DOUBLES_TRUMP:
                    tier = 2
                    within = HIGH[d] if decl == DOUBLES_TRUMP else (20 if IS_DOUBLE[d] else PIP_SUM[d])
                elif follows[decl, suit, d]:
                    tier = 1
                    within = HIGH[d] if suit == CALLED_SUIT else (20 if IS_DOUBLE[d] else PIP_SUM[d])
                else:
                    tier, within = 0, 0
                rank[decl, suit, d] = 0 if tier == 0 else tier * 32 + within + 1
    return {"called": called, "led": led, "follows": follows, "rank": rank}


TABLES = _build_tables()


class DeviceTables:
    """The lookup tables as tensors on one device (flattened where the engine gathers rows)."""

    def __init__(self, device: torch.device) -> None:
        t = {k: torch.from_numpy(v).to(device) for k, v in TABLES.items()}
        self.called = t["called"]  # [10, 28] bool
        self.led = t["led"]  # [10, 28] suit a domino leads
        self.follows = t["follows"].reshape(N_DECLS * N_SUITS, N_DOMINOES)  # row decl*8+suit
        self.rank = t["rank"].reshape(N_DECLS * N_SUITS * N_DOMINOES)  # index (decl*8+suit)*28+d
        self.count = torch.from_numpy(COUNT).to(device)
        self.pip_sum = torch.from_numpy(PIP_SUM).to(device)
        self.is_double = torch.from_numpy(IS_DOUBLE).to(device)


@functools.cache
def tables_on(device: torch.device | str) -> DeviceTables:
    return DeviceTables(torch.device(device))
