"""Players that choose moves for batches of games, and the spec strings that name them."""

from zeb_core.players.base import PLAYERS, Decision, Player, SpecError, known_players, make_player, parse_spec

__all__ = ["PLAYERS", "Decision", "Player", "SpecError", "known_players", "make_player", "parse_spec"]
