"""Players that choose moves for batches of games, and the spec strings that name them."""

from zeb_core.players.base import Decision, Player, SpecError, known_players, make_player, parse_spec, register

__all__ = ["Decision", "Player", "SpecError", "known_players", "make_player", "parse_spec", "register"]
