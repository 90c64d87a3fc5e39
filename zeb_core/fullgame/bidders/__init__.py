"""The bidder kinds a spec may name, as one explicit table, and the builders of bidders and full-game players.

A new kind is a new row of `BIDDERS` (as `players.base.PLAYERS` for the play phase): nothing registers on import.
"""

from __future__ import annotations

import torch

from zeb_core.fullgame.bidders.baseline import baseline_bidder_from_spec
from zeb_core.fullgame.bidders.montecarlo import mc_bidder_from_spec
from zeb_core.fullgame.bidders.net_bidder import net_bidder_from_spec
from zeb_core.fullgame.bidders.random_bidder import random_bidder_from_spec
from zeb_core.fullgame.interface import Bidder, BidderFactory, FullGamePlayer
from zeb_core.players.interface import SpecError, parse_spec

BIDDERS: dict[str, tuple[BidderFactory, str]] = {
    "random": (random_bidder_from_spec, "random[:pass=P,seed=S] passes with probability P, else a random legal bid"),
    "baseline": (baseline_bidder_from_spec, "counts trumps, the trump double, doubles, count into points; bids them"),
    "mc": (mc_bidder_from_spec, "mc:worlds=K[,threshold=T,bid=lowest|highest,decls=N,seed=S] P(make), solved deals"),
    "net": (net_bidder_from_spec, "net:path=W[,temp=T,margin=M] a trained BidNet: best expected marks, the best trump"),
}


def make_bidder(spec: str, device: torch.device | str = "cpu", seed: int = 0) -> Bidder:
    """Build a bidder from a spec such as `random` or `random:pass=0.8`."""
    kind, params = parse_spec(spec)
    if kind not in BIDDERS:
        raise SpecError(f"unknown bidder {kind!r} in {spec!r}; known: {', '.join(sorted(BIDDERS))}")
    factory, _ = BIDDERS[kind]
    try:
        return factory(params, torch.device(device), seed)
    except SpecError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise SpecError(f"bidder spec {spec!r}: {exc}") from None


def make_full_game_player(spec: str, device: torch.device | str = "cpu", seed: int = 0) -> FullGamePlayer:
    """`BIDDER+PLAYER` (e.g. `baseline+heuristic`) -> a FullGamePlayer; a clear SpecError for anything else."""
    from zeb_core.players.base import make_player

    bidder_spec, plus, player_spec = spec.partition("+")
    if not plus or not bidder_spec.strip() or not player_spec.strip():
        raise SpecError(f"full-game player {spec!r} must be BIDDER+PLAYER, e.g. baseline+heuristic")
    player = make_player(full_game_play_spec(player_spec), device, seed)
    return FullGamePlayer(spec, make_bidder(bidder_spec, device, seed), player)


def full_game_play_spec(player_spec: str) -> str:
    """The play-phase spec as the full game builds it: `pimc` and `rollout` play for the hand's real bid
    (objective=contract) unless the spec names an objective; the benchmark's (more than 21 points) would ignore the
    bid."""
    kind, params = parse_spec(player_spec)
    if kind not in ("pimc", "rollout") or "objective" in params:
        return player_spec
    spec = player_spec.strip()
    return f"{spec}{',' if ':' in spec else ':'}objective=contract"


def known_bidders() -> dict[str, str]:
    return {kind: help_text for kind, (_, help_text) in BIDDERS.items()}
