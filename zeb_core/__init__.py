"""Zeb's library: engine, encoding, model, players, matches, formats and stores. Never imports Prefect."""

__version__ = "0.1.0"
