"""The bot protocol: the spec's example, error replies, the JSON-lines transport, and consistent worlds."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.engine.dominoes import TABLES
from zeb_core.game.infoset import InfoState, InvalidRequest
from zeb_core.serve.bot import SPEC_EXAMPLE as EXAMPLE
from zeb_core.serve.bot import BotSession


def test_example_is_the_specs_request(shared_dir: Path) -> None:
    """SPEC_EXAMPLE (the tests' request and the OpenAPI example) is the request printed in spec/bot-protocol.md."""
    text = (shared_dir / "spec" / "bot-protocol.md").read_text()
    printed = text.split("Request:\n```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(printed) == EXAMPLE


@pytest.mark.parametrize("spec", ["random", "heuristic"])
def test_spec_example_gets_a_legal_play(spec: str) -> None:
    reply = BotSession.from_spec(spec).respond(EXAMPLE)
    assert reply["play"] in (15, 20)
    assert set(reply["policy"]) == {"15", "20"}


def test_policy_bot_reports_policy_and_value(small_checkpoint: Path) -> None:
    reply = BotSession.from_spec(f"policy:path={small_checkpoint}").respond(EXAMPLE)
    assert reply["play"] in (15, 20)
    assert sum(reply["policy"].values()) == pytest.approx(1.0, abs=1e-3)
    assert -1 <= reply["value"] <= 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seat": 1}, "turn"),
        ({"decl": 12}, "declaration id 12"),
        ({"bid": 50}, "bid 50"),
        ({"hand": [0, 6, 8, 9, 15, 15]}, "twice"),
        ({"hand": [0, 6, 8, 9, 15, 11]}, "seen twice"),
        ({"hand": [0, 6, 8, 9, 15]}, "not 7"),
        ({"hand": [0, 1, 6, 8, 9, 15, 20], "plays": [[3, 11], [1, 16]]}, "seat 0's turn"),
        ({"hand": [1, 6, 8, 9, 15, 20], "plays": [[3, 11], [0, 0]]}, "held"),
        ({"hand": "abc"}, "list"),
        ({"plays": [[3]]}, "pair"),
        ({"seat": "0"}, "integer"),
    ],
)
def test_impossible_requests_get_one_clear_error(change: dict, message: str) -> None:
    reply = BotSession.from_spec("heuristic").respond({**EXAMPLE, **change})
    assert set(reply) == {"error"} and message in reply["error"]


def test_void_contradiction_is_an_illegal_history() -> None:
    # No-trump: seat 0 leads 1-0; seat 1 plays 5-3, showing it has no ones; later it plays the 6-1.
    req = {
        "seat": 0,
        "hand": [5, 9, 14, 15, 20],
        "decl": 9,
        "bidder": 0,
        "bid": 30,
        "leader": 0,
        "plays": [[0, 1], [1, 18], [2, 4], [3, 2], [3, 27], [0, 0], [1, 22]],
    }
    reply = BotSession.from_spec("heuristic").respond(req)
    assert "void" in reply["error"] and "play 7" in reply["error"]


def bot_replies(player: str, lines: str) -> list[dict[str, Any]]:
    """`zeb bot --player PLAYER` in a real process fed `lines` (JSON lines): its replies, one a line."""
    proc = subprocess.run(
        [sys.executable, "-m", "zeb_cli.main", "bot", "--player", player],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(x) for x in proc.stdout.splitlines()]


def test_json_lines_transport_keeps_serving_after_bad_lines() -> None:
    lines = (
        "\n".join([json.dumps(EXAMPLE), "{not json", json.dumps({**EXAMPLE, "seat": 2}), json.dumps(EXAMPLE)]) + "\n"
    )
    replies = bot_replies("heuristic", lines)
    assert len(replies) == 4
    assert replies[0]["play"] in (15, 20) and replies[3]["play"] in (15, 20)
    assert "error" in replies[1] and "error" in replies[2]


def request_from_state(state: GameState, g: int) -> dict[str, Any]:
    """The version-1 request of the seat to move in game `g`, cut from the engine's true state."""
    seat, n = int(state.current[g]), int(state.n_plays[g])
    return {
        "seat": seat,
        "hand": [d for d in state.hands[g, seat].tolist() if not state.played[g, d]],
        "decl": int(state.decl[g]),
        "bidder": int(state.bidder[g]),
        "bid": int(state.bid[g]),
        "leader": int(state.leader[g]),
        "plays": [[int(s), int(d)] for s, d in zip(state.history_seat[g, :n], state.history[g, :n])],
    }


def test_sampled_worlds_respect_voids_counts_and_known_dominoes() -> None:
    """From many real positions, every sampled world gives no seat a domino it cannot hold."""
    gen = make_generator(4)
    state = deal_benchmark(40, gen)
    rng = random.Random(0)
    for step in range(27):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))
        if step % 3:
            continue
        for g in range(40):
            seat, n = int(state.current[g]), int(state.n_plays[g])
            req = request_from_state(state, g)
            info = InfoState.from_request(req)
            world = info.sample_world(rng)
            assert sorted(world[seat]) == sorted(req["hand"])
            played = {d for _, d in req["plays"]}
            all_held = [d for h in world for d in h]
            assert len(all_held) == len(set(all_held)) == 28 - n and not (set(all_held) & played)
            for s, suits in info.voids.items():
                for d in world[s]:
                    assert not any(TABLES["follows"][info.decl, suit, d] for suit in suits)
            rebuilt = info.to_state(rng)  # replaying the history in that world must be legal
            assert int(rebuilt.current[0]) == seat


def test_world_sampler_refuses_an_impossible_void_pattern() -> None:
    info = InfoState.from_request(EXAMPLE)
    info.voids = {1: set(range(8)), 2: set(range(8)), 3: set(range(8))}
    with pytest.raises(InvalidRequest, match="no deal"):
        info.sample_world(random.Random(0))
