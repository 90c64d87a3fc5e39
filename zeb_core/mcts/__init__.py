"""Batched, imperfect-information PUCT search guided by ZebNet."""

from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.driver import MctsPlayer, MoveSearch, search_moves
from zeb_core.mcts.search import Evaluator, SearchResult, search

__all__ = ["Evaluator", "MctsPlayer", "MoveSearch", "SearchConfig", "SearchResult", "search", "search_moves"]
