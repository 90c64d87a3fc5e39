"""`zeb serve`'s routes, one APIRouter per concern; zeb_core/serve/app.py:create_app includes them in this order.

- players: GET /healthz and GET /v1/players (what the page and a client may ask for);
- moves: POST /v1/move (the bot protocol, versions 1 and 2);
- games: a hand against the bots (POST /v1/games, GET and POST /v1/games/{game_id}...);
- full_games: a game to 7 marks (POST /v1/full-games, its bids, declarations, plays and next hands);
- pages: the web page (GET / and, mounted by create_app, /static).

Their shared pieces (the body read, the client's error, the app's state as dependencies) are in `common`, the
exception handlers that turn every error into `{"error": ...}` in `errors`.
"""
