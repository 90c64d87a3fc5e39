"""The legality checks that tests rely on can fail: a player that breaks a rule is caught by `check=True`.

Matches apply moves with `check=False` for speed, so a test that claims "plays legal games" must run the match
with `check=True` (or replay the moves through the engine). These tests show that a checked match stops at the
first illegal move of either kind (reneging on the led suit, playing a domino not in hand), while an unchecked
one plays on silently, which is why the check is needed.
"""

from __future__ import annotations

import pytest
import torch

from zeb_core.engine.state import GameState, IllegalMoveError
from zeb_core.evaluation.match import play_match
from zeb_core.players import make_player
from zeb_core.players.base import Decision, Player


class RenegingPlayer:
    """Plays a held domino of another suit whenever it could (and so must) follow the led suit; legal otherwise."""

    name = "reneging"

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        held, lg = state.held()[games], legal[games]
        wrong = held & ~lg
        pick = torch.where(wrong.any(1, keepdim=True), wrong, lg)
        return Decision(moves=pick.float().argmax(1))


class ThievingPlayer:
    """Plays the lowest-id domino nobody has played yet, held or not."""

    name = "thieving"

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        return Decision(moves=(~state.played[games]).float().argmax(1))


@pytest.mark.parametrize("cheat", [RenegingPlayer(), ThievingPlayer()], ids=lambda p: p.name)
def test_a_checked_match_catches_an_illegal_player(cheat: Player) -> None:
    with pytest.raises(IllegalMoveError, match="cannot play"):
        play_match(cheat, make_player("random"), 8, seed=0, check=True)
    with pytest.raises(IllegalMoveError, match="cannot play"):
        play_match(make_player("heuristic"), cheat, 8, seed=0, check=True)  # as player B too
    # Unchecked, the same match finishes and reports a result: a test without the check cannot see the cheat.
    result = play_match(cheat, make_player("random"), 8, seed=0)
    assert result.games == 8


def test_a_checked_match_of_legal_players_is_unchanged() -> None:
    a, b = make_player("heuristic"), make_player("random", seed=1)
    checked = play_match(a, b, 100, seed=4, check=True)
    unchecked = play_match(make_player("heuristic"), make_player("random", seed=1), 100, seed=4)
    assert (checked.win_rate, checked.avg_margin) == (unchecked.win_rate, unchecked.avg_margin)
