"""Serving: the bot protocols, and `zeb serve` (the protocols over HTTP and a web page to play against the bots).

- bot: the bot protocol as a Python call (`BotSession`: a request dict in, a reply dict out); `zeb bot`'s JSON lines
- bot_v2: bot protocol version 2 (the auction, then plays), which `BotSession.respond` sends every version 2 request
- app: `create_app`, the HTTP app (its routes in `routes/`, one router per concern)
- game, fullgame: one hand, and a whole game, for the web page
- players, models, limits: the players and models the server offers, and what a client may ask for
- guard, schema: the ASGI middleware in front of every route; the OpenAPI schema's bodies and errors

No re-exports: `zeb bot` imports `zeb_core.serve.bot` without the HTTP app.
"""
