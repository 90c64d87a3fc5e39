"""`zeb serve`: the bot protocol over HTTP and a web page to play a hand against the bots."""

from zeb_core.serve.app import create_app

__all__ = ["create_app"]
