"""`zeb serve` over HTTP: the bot protocol, the player list, game sessions, every error a client can cause, store
players that follow newer weights, and the CLI starting a real uvicorn.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.formats.weights import load_bundle_dir
from zeb_core.model.checkpoint import init_checkpoint
from zeb_core.players import SpecError
from zeb_core.players.store_player import StorePlayer
from zeb_core.serve.app import create_app
from zeb_core.serve.bot import SPEC_EXAMPLE as EXAMPLE
from zeb_core.store import FaultyBackend, RetryPolicy, open_store

REPO = Path(__file__).resolve().parents[1]
JSON_TYPE = {"content-type": "application/json"}  # a body of another type is refused (415) before parsing


@pytest.fixture(scope="module")
def client(small_checkpoint: Path) -> TestClient:
    """The operator offers the small checkpoint as model "small"; clients name it (policy:model=small)."""
    with TestClient(create_app(models={"small": small_checkpoint}), raise_server_exceptions=False) as c:
        yield c


def _error(resp: httpx.Response, status: int, fragment: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and fragment in body["error"], body
    return body["error"]


# ---------------------------------------------------------------- health and players
def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True, "default_player": "heuristic"}


def test_players_lists_builtins_and_the_offered_models(client: TestClient, small_checkpoint: Path) -> None:
    body = client.get("/v1/players").json()
    by_spec = {p["spec"]: p for p in body["players"]}
    assert by_spec["random"]["available"] and by_spec["heuristic"]["available"] and by_spec["heuristic"]["default"]
    good = by_spec["policy:model=small"]
    assert good["available"] and good["description"] == "the greedy policy of model 'small' (step 0)"
    assert body["models"] == [{"name": "small", "kind": "play", "description": "a play network, step 0"}]
    assert str(small_checkpoint) not in json.dumps(body)
    _error(client.get("/v1/players", params={"path": [str(small_checkpoint)]}), 400, "path= is not accepted")
    _error(client.get("/v1/players", params={"bidder": ["x"] * 9}), 400, "at most 8")


def test_store_players_degrade_to_a_clear_reason(tmp_path: Path) -> None:
    """An empty store (or no store layer at all) lists its weights as unavailable and refuses them with a 400."""
    with TestClient(create_app(store_url=str(tmp_path)), raise_server_exceptions=False) as c:
        stores = [p for p in c.get("/v1/players").json()["players"] if p["spec"].startswith("store:")]
        assert [p["which"] for p in stores] == ["latest", "best"]
        assert all(not p["available"] and p["reason"] for p in stores)
        resp = c.post("/v1/move", params={"player": stores[0]["spec"]}, json=EXAMPLE)
        assert resp.status_code == 400 and "store" in resp.json()["error"]
        assert c.get("/healthz").status_code == 200


# ---------------------------------------------------------------- the bot protocol
@pytest.mark.parametrize("spec", [None, "random", "heuristic"])
def test_move_answers_the_spec_example(client: TestClient, spec: str | None) -> None:
    resp = client.post("/v1/move", params={"player": spec} if spec else {}, json=EXAMPLE)
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert reply["play"] in (15, 20) and set(reply["policy"]) == {"15", "20"}


def test_move_with_a_network_player_reports_policy_and_value(client: TestClient) -> None:
    spec = "policy:model=small"
    by_query = client.post("/v1/move", params={"player": spec}, json=EXAMPLE).json()
    by_body = client.post("/v1/move", json={**EXAMPLE, "player": spec}).json()
    assert by_query == by_body  # greedy and deterministic, the same built player
    assert by_query["play"] in (15, 20)
    assert sum(by_query["policy"].values()) == pytest.approx(1.0, abs=1e-3) and -1 <= by_query["value"] <= 1


def test_move_with_the_rollout_player(client: TestClient) -> None:
    """Every kind of the player table is a spec the API takes: rollout searches the request's position."""
    reply = client.post("/v1/move", json={**EXAMPLE, "player": "rollout:model=small,worlds=2"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["play"] in (15, 20)


BAD_BODIES = [
    (b"", 400, "empty"),
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe\x00", 400, "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({**EXAMPLE, "seat": 1}).encode(), 400, "turn"),
    (json.dumps({**EXAMPLE, "hand": [0, 6, 8, 9, 15, 15]}).encode(), 400, "twice"),
    (json.dumps({**EXAMPLE, "decl": 12}).encode(), 400, "declaration id 12"),
    (json.dumps({k: v for k, v in EXAMPLE.items() if k != "hand"}).encode(), 400, "hand"),
    (json.dumps({**EXAMPLE, "player": "chess"}).encode(), 400, "unknown player 'chess'"),
    (json.dumps({**EXAMPLE, "player": 7}).encode(), 400, "player spec string"),
    (json.dumps({**EXAMPLE, "player": "policy:path=/nonexistent/x"}).encode(), 400, "only from the server's command"),
    (json.dumps({**EXAMPLE, "player": "policy:model=nope"}).encode(), 400, "models offered: small"),
    (json.dumps({**EXAMPLE, "player": "heuristic:depth=3"}).encode(), 400, "does not take depth"),
    (b"{" + b'"a": 1, ' * 10000 + b'"b": 2}', 413, "larger than"),
]


@pytest.mark.parametrize("body", [b"\x0c", b"\x0b", b" \x0c\n", b" \t\n\r"])
def test_a_body_of_whitespace_is_not_an_empty_body(client: TestClient, body: bytes) -> None:
    """An optional body may be left out; whitespace alone is not JSON (found by the schema fuzz)."""
    assert client.post("/v1/games", content=b"").status_code == 200
    _error(client.post("/v1/games", content=body, headers={"content-type": "application/json"}), 400, "not valid JSON")


def test_a_bad_spec_is_refused_even_where_bots_overrides_it(client: TestClient) -> None:
    """`opponents` names seats 1 and 3, `bots` all three: the unused spec is still the client's mistake."""
    bots = {"1": "random", "2": "heuristic", "3": "random"}
    assert client.post("/v1/games", json={"bots": bots, "opponents": "heuristic"}).status_code == 200
    _error(client.post("/v1/games", json={"bots": bots, "opponents": "chess"}), 400, "unknown player 'chess'")
    _error(client.post("/v1/full-games", json={"bots": bots, "partner": "chess"}), 400, "chess")


@pytest.mark.parametrize("body, status, fragment", BAD_BODIES, ids=[f"{s}-{f}" for _, s, f in BAD_BODIES])
def test_bad_move_requests_get_a_4xx_with_one_clear_error(
    client: TestClient, body: bytes, status: int, fragment: str
) -> None:
    _error(client.post("/v1/move", content=body, headers={"content-type": "application/json"}), status, fragment)


def test_wrong_routes_and_methods_are_4xx_and_the_server_keeps_serving(client: TestClient) -> None:
    _error(client.get("/v1/move"), 405, "GET is not allowed")
    _error(client.get("/v2/anything"), 404, "POST /v1/move")
    for body in BAD_BODIES:
        assert 400 <= client.post("/v1/move", content=body[0]).status_code < 500
    assert client.post("/v1/move", json=EXAMPLE).json()["play"] in (15, 20)


# ---------------------------------------------------------------- game sessions for the page
def _engine_replay(seed: int, moves: list[int]) -> GameState:
    dealt = deal_benchmark(1, make_generator(seed))
    state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
    for m in moves:
        state.apply(torch.tensor([m]))
    return state


def test_a_whole_hand_through_the_api_matches_the_engine(client: TestClient) -> None:
    game = client.post("/v1/games", json={"seed": 7, "partner": "random", "opponents": "heuristic"}).json()
    again = client.post("/v1/games", json={"seed": 7, "partner": "random", "opponents": "heuristic"}).json()
    assert game["id"] != again["id"] and game["hand"] == again["hand"] and game["contract"] == again["contract"]
    assert game["bots"] == {"1": "heuristic", "2": "random", "3": "heuristic"}
    dealt = deal_benchmark(1, make_generator(7))
    assert sorted(game["hand"]) == sorted(dealt.hands[0, 0].tolist())
    while not game["done"]:
        assert game["your_turn"] and game["legal"] and set(game["legal"]) <= set(game["hand"])
        assert game["result"] is None  # other seats' hands stay hidden until the end
        game = client.post(f"/v1/games/{game['id']}/play", json={"domino": game["legal"][-1]}).json()
    moves = [p["domino"] for p in game["plays"]]
    assert len(moves) == 28 and [p["seat"] for p in game["plays"] if p["by"] == "you"] == [0] * 7
    replay = _engine_replay(7, moves)
    assert game["team_points"] == game["result"]["team_points"] == replay.team_points[0].tolist()
    assert game["result"]["contract_made"] == bool(replay.contract_made()[0])
    assert sum(game["team_tricks"]) == 7 and len(game["tricks"]) == 7
    assert client.get(f"/v1/games/{game['id']}").json()["plays"] == game["plays"]
    _error(client.post(f"/v1/games/{game['id']}/play", json={"domino": moves[0]}), 409, "hand is over")


def test_bad_game_requests_get_a_4xx(client: TestClient) -> None:
    game = client.post("/v1/games", json={"seed": 11}).json()
    gid = game["id"]
    while not (illegal := [d for d in game["hand"] if d not in game["legal"]]):  # play on to a suit to follow
        assert not game["done"], "the hand ended before seat 0 had to follow suit"
        game = client.post(f"/v1/games/{gid}/play", json={"domino": game["legal"][0]}).json()
    assert len(game["plays"]) % 4, "a trick in progress: seat 0 follows, it does not lead"
    not_held = next(d for d in range(28) if d not in game["hand"])
    _error(client.post(f"/v1/games/{gid}/play", json={"domino": not_held}), 422, "")
    _error(client.post(f"/v1/games/{gid}/play", json={"domino": illegal[0]}), 422, "does not follow the led suit")
    assert client.get(f"/v1/games/{gid}").json()["plays"] == game["plays"]  # the renege was not played
    _error(client.post(f"/v1/games/{gid}/play", json={"domino": "6-6"}), 400, "domino id")
    _error(client.post(f"/v1/games/{gid}/play", json={"domino": 28}), 400, "not a domino id")
    _error(client.post(f"/v1/games/{gid}/play", json={}), 400, "missing field 'domino'")
    _error(client.post("/v1/games/nope/play", json={"domino": 0}), 404, "no game with id")
    _error(client.get("/v1/games/nope"), 404, "no game with id")
    _error(client.post("/v1/games", json={"seed": -1}), 400, "'seed' must be an integer")
    _error(client.post("/v1/games", json={"seed": "abc"}), 400, "'seed' must be an integer")
    _error(client.post("/v1/games", json={"opponents": "chess"}), 400, "unknown player")
    _error(client.post("/v1/games", json={"bots": {"0": "random"}}), 400, "seat '0'")
    _error(client.post("/v1/games", json={"bots": ["random"]}), 400, "'bots' must be an object")
    # The game is untouched by all of that: the first legal domino still plays.
    assert client.post(f"/v1/games/{gid}/play", json={"domino": game["legal"][0]}).json()["n_plays"] > game["n_plays"]


def test_the_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="hand"' in page.text and "/static/app.js" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


# ---------------------------------------------------------------- store players follow the store
def _bundle(tmp: Path, seed: int, step: int):
    init_checkpoint("small", tmp / f"ckpt-{seed}", seed=seed)
    bundle = load_bundle_dir(tmp / f"ckpt-{seed}")
    bundle.state["step"] = step
    return bundle


def test_store_player_loads_once_and_follows_newer_weights(tmp_path: Path) -> None:
    """A real local store; the outage is the store's own fault injection (every call fails)."""
    url = f"file://{tmp_path}/store"
    store = open_store(url, retry=RetryPolicy.fast())
    store.weights = FaultyBackend(store.weights, rate=0.0)
    with pytest.raises(SpecError, match="no latest weights"):
        StorePlayer(store, url, which="latest")
    store.push_weights(_bundle(tmp_path, seed=1, step=3))
    player = StorePlayer(store, url, which="latest", refresh_s=3600)
    state = deal_benchmark(4, make_generator(0))
    games = torch.arange(4)
    for _ in range(3):
        player.decide(state, state.legal_mask(), games)
    calls = store.weights.calls
    assert (player.step, player.loads) == (3, 1)
    assert store.weights.calls == calls  # within the refresh window: no store traffic, no reload

    newer = _bundle(tmp_path, seed=2, step=8)
    store.push_weights(newer)
    assert not player.maybe_reload()  # still inside the window
    player.refresh_s = 0.0
    player.decide(state, state.legal_mask(), games)
    assert (player.step, player.loads, player.name) == (8, 2, "store(latest model, step 8)")
    loaded = player.inner.model.state_dict()
    assert all(torch.equal(loaded[k].cpu(), newer.tensors[k]) for k in newer.tensors)
    player.decide(state, state.legal_mask(), games)
    assert player.loads == 2  # same step: not pulled again

    store.push_weights(_bundle(tmp_path, seed=3, step=9))
    store.weights.rate = 0.999999  # the store goes away: the loaded weights keep playing
    decision = player.decide(state, state.legal_mask(), games)
    assert state.legal_mask()[games, decision.moves].all()
    assert player.step == 8 and "injected" in player.last_error
    store.weights.rate = 0.0  # and it comes back: the next refresh catches up
    player.decide(state, state.legal_mask(), games)
    assert (player.step, player.last_error) == (9, None)


# ---------------------------------------------------------------- the CLI and a real uvicorn
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_refuses_a_bad_player_and_a_busy_port() -> None:
    from zeb_cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--player", "chess"])
    assert result.exit_code == 2 and "unknown player 'chess'" in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2 and "already in use" in result.output


def test_zeb_serve_runs_a_real_server(small_checkpoint: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "zeb_cli.main",
        "serve",
        "--port",
        str(port),
        "--player",
        f"policy:path={small_checkpoint}",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "zeb serve did not answer /healthz within 60 s"
            time.sleep(0.1)
        reply = httpx.post(f"{base}/v1/move", json=EXAMPLE, timeout=10).json()
        assert reply["play"] in (15, 20) and "value" in reply
        assert httpx.post(f"{base}/v1/move", content=b"{oops", headers=JSON_TYPE, timeout=10).status_code == 400
        assert httpx.get(f"{base}/healthz", timeout=10).json()["default_player"] == f"policy:path={small_checkpoint}"
    finally:
        proc.terminate()
        proc.wait(10)
