"""Solver positions: B play-phase positions as numpy arrays of bitmask hands, built from a GameState."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.solver.tables import BITS, FOLLOW, LED


@dataclass
class Positions:
    """B positions of the play phase; everything the (perfect-information) solver needs, nothing else."""

    hands: np.ndarray  # [B, 4] int64 masks of the dominoes each seat still holds (bit d = domino d)
    decl: np.ndarray  # [B] int64 declaration 0..9
    leader: np.ndarray  # [B] int64 seat that led the trick in progress (that leads next, when it is empty)
    trick: np.ndarray  # [B, 3] int64 dominoes played so far in the trick in progress, in order; -1 pads
    n_trick: np.ndarray  # [B] int64 plays in the trick in progress (0..3)
    points: np.ndarray  # [B, 2] int64 team points of the finished tricks

    def __len__(self) -> int:
        return self.hands.shape[0]

    @property
    def current(self) -> np.ndarray:
        """[B] the seat to move."""
        return (self.leader + self.n_trick) % N_SEATS

    @classmethod
    def from_state(cls, state: GameState) -> Positions:
        """The positions of every game of `state` (any device; finished games have empty hands)."""
        owner = state.owner.cpu().numpy()
        live = ~state.played.cpu().numpy()
        hands = np.stack([((owner == s) & live) @ BITS for s in range(N_SEATS)], axis=1).astype(np.int64)
        n_plays = state.n_plays.cpu().numpy().astype(np.int64)
        n_trick = n_plays % 4
        history = state.history.cpu().numpy()
        start = n_plays - n_trick
        cols = np.minimum(start[:, None] + np.arange(3)[None, :], 27)
        trick = np.where(
            np.arange(3)[None, :] < n_trick[:, None],
            np.take_along_axis(history, cols, 1),
            -1,
        )
        leader = np.where(n_trick > 0, state.trick_leader.cpu().numpy(), state.current.cpu().numpy())
        return cls(
            hands=hands,
            decl=state.decl.cpu().numpy().astype(np.int64),
            leader=leader.astype(np.int64),
            trick=trick.astype(np.int64),
            n_trick=n_trick,
            points=state.team_points.cpu().numpy().astype(np.int64),
        )

    def take(self, rows: np.ndarray) -> Positions:
        """The positions `rows` (a copy), in that order."""
        return Positions(**{f: getattr(self, f)[rows] for f in self.__dataclass_fields__})

    def legal_mask(self) -> np.ndarray:
        """[B, 28] bool: the dominoes the seat to move may play (the engine's rule, on masks)."""
        seat = self.current
        hand = self.hands[np.arange(len(self)), seat]
        lead = np.where(self.n_trick > 0, self.trick[:, 0], 0)
        suit = LED[self.decl, lead]
        follow = hand & FOLLOW[self.decl, suit]
        legal = np.where((self.n_trick > 0) & (follow != 0), follow, hand)
        return (legal[:, None] & BITS[None, :]) != 0
