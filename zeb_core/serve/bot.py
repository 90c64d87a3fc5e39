"""The bot protocol (spec/bot-protocol.md) as a Python call: a request dict in, a reply dict out, never a raise.

`zeb bot` (JSON lines) and `zeb serve` (HTTP) are thin transports over `BotSession.respond`. A request without a
`version`, or with version 1, is version 1 and is answered here exactly as before; any other version goes to
`bot_v2` (docs/bot-protocol-v2.md: the auction, then plays), which answers version 2 and refuses the rest.
"""

from __future__ import annotations

import json
import random
from typing import IO, Any

import torch

from zeb_core.fullgame.interface import Bidder
from zeb_core.game.infoset import InfoState, InvalidRequest
from zeb_core.players.base import Player, make_player
from zeb_core.serve import bot_v2

# The request of spec/bot-protocol.md: ones are trump, seat 0 must follow fives, so 15 (5-0) and 20 (5-5) are legal.
SPEC_EXAMPLE: dict[str, Any] = {
    "seat": 0,
    "hand": [0, 6, 8, 9, 15, 20],
    "decl": 1,
    "bidder": 3,
    "bid": 40,
    "leader": 3,
    "plays": [[3, 11], [0, 1], [1, 16], [2, 2], [2, 17], [3, 27]],
}


class BotSession:
    """One player answering requests; worlds for hidden hands are drawn from a seeded RNG."""

    def __init__(
        self, player: Player, seed: int = 0, device: torch.device | str = "cpu", bidder: Bidder | None = None
    ) -> None:
        self.player = player
        self.rng = random.Random(seed)
        self.device = torch.device(device)
        self.seed = seed
        self.bidder = bidder  # version 2's auction; None: the default bidder, built when first asked to bid

    @classmethod
    def from_spec(cls, spec: str, seed: int = 0, device: str = "cpu") -> BotSession:
        """A player spec (`heuristic`) or a full-game spec `BIDDER+PLAYER` (`baseline+heuristic`)."""
        from zeb_core.fullgame.bidders import make_bidder

        bidder_spec, player_spec = bot_v2.split_full_spec(spec)
        bidder = make_bidder(bidder_spec, device, seed) if bidder_spec else None
        return cls(make_player(player_spec, device, seed), seed, device, bidder)

    def get_bidder(self) -> Bidder:
        if self.bidder is None:
            from zeb_core.fullgame.bidders import make_bidder

            self.bidder = make_bidder(bot_v2.default_bidder_spec(), self.device, self.seed)
        return self.bidder

    def respond(self, request: object) -> dict:
        """Version 1 (no `version`, or 1) as before; other versions by `bot_v2`."""
        if isinstance(request, dict) and "version" in request:
            version = request["version"]
            if type(version) is not int or version != 1:
                return bot_v2.respond_v2(self, request)
        return self.respond_play(request)

    def respond_play(self, request: object) -> dict:
        """A version-1 play request: the seat to move's domino, with its policy and value when the player has them."""
        try:
            info = InfoState.from_request(request)
            state = info.to_state(self.rng, self.device)
        except InvalidRequest as exc:
            return {"error": str(exc)}
        legal = state.legal_mask()
        decision = self.player.decide(state, legal, torch.tensor([0], device=self.device))
        play = int(decision.moves[0])
        if not bool(legal[0, play]):  # a player bug must not leak an illegal move to a client
            return {"error": f"internal error: player {self.player.name} chose an illegal domino {play}"}
        reply: dict = {"play": play}
        if decision.policy is not None:
            probs = decision.policy[0]
            reply["policy"] = {str(d): round(float(probs[d]), 4) for d in legal[0].nonzero().flatten().tolist()}
        if decision.value is not None:
            reply["value"] = round(float(decision.value[0]), 4)
        return reply

    def respond_line(self, line: str) -> str:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return json.dumps({"error": f"the request is not valid JSON ({exc.msg} at column {exc.colno})"})
        return json.dumps(self.respond(request))


def serve_lines(session: BotSession, stdin: IO[str], stdout: IO[str]) -> int:
    """Answer one reply line per non-empty request line until end of input; returns the number answered."""
    answered = 0
    for line in stdin:
        if not line.strip():
            continue
        stdout.write(session.respond_line(line) + "\n")
        stdout.flush()
        answered += 1
    return answered
