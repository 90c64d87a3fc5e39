"""What `zeb serve` reads and keeps for its clients (issue 35, items 9 and 11): a client names only the models the
operator offered (by name; paths, store URLs and fault injection are refused, with an error that says nothing of
the server's disk), each client keeps a bounded number of games, the longest idle game goes first, and the players
games use stay within the pool's memory bound (a game holds its bots by name, not their networks).
"""

from __future__ import annotations

import gc
import shutil
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.fullgame.bidnet import BidNet, save_bidnet
from zeb_core.model.checkpoint import init_checkpoint
from zeb_core.players.base import make_player
from zeb_core.serve.app import create_app
from zeb_core.serve.bot import SPEC_EXAMPLE as EXAMPLE
from zeb_core.serve.limits import ServeLimits
from zeb_core.serve.players import held_bytes

BID = {"version": 2, "phase": "bid", "seat": 2, "dealer": 0, "hand": [2, 4, 9, 13, 14, 15, 27], "bids": [[1, 0]]}
REVEALING = ("exist", "no checkpoint", "config", "holds", "directory", "folder", "permission", "safetensors")


def _error(resp: httpx.Response, status: int, *fragments: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and all(f in body["error"] for f in fragments), body
    return body["error"]


def _replay_legal(game: dict) -> None:
    """A one-hand game's plays, replayed by the engine on the same seeded deal with its legality check on."""
    dealt = deal_benchmark(1, make_generator(game["seed"]))
    state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
    for play in game["plays"]:
        state.apply(torch.tensor([play["domino"]]), check=True)


@pytest.fixture(scope="module")
def client(small_checkpoint: Path) -> Iterator[TestClient]:
    with TestClient(create_app(models={"small": small_checkpoint}), raise_server_exceptions=False) as c:
        yield c


# ---------------------------------------------------------------- paths, URLs and faults from clients
def _ask(c: TestClient, where: str, spec: str) -> httpx.Response:
    if where == "move":
        return c.post("/v1/move", json={**EXAMPLE, "player": spec})
    if where == "bid":
        return c.post("/v1/move", json={**BID, "player": spec})
    if where == "game":
        return c.post("/v1/games", json={"opponents": spec})
    if where == "full-game":
        return c.post("/v1/full-games", json={"partner": spec})
    if where == "players?path":
        return c.get("/v1/players", params={"path": spec})
    assert where == "players?bidder"
    body = c.get("/v1/players", params={"bidder": spec}).json()
    entry = next(b for b in body["bidders"] if b["spec"] == spec)
    assert not entry["available"]
    return httpx.Response(400, json={"error": entry["reason"]})


FROM_CLIENTS = [
    ("move", "policy:path={p}"),
    ("move", "mcts:path={p},sims=8"),
    ("move", "rollout:path={p},worlds=2"),
    ("move", "pimc:worlds=4,infer={p}"),
    ("move", "pimc:worlds=4,prior={p}"),
    ("move", "store:url=file://{p},which=best"),
    ("move", "store:url=file://{p}?faults=0.99,which=best"),
    ("move", "store:which=best,refresh=0"),
    ("bid", "net:path={p}+heuristic"),
    ("game", "policy:path={p}"),
    ("full-game", "net:path={p}+heuristic"),
    ("players?path", "{p}"),
    ("players?bidder", "net:path={p}"),
]


@pytest.mark.parametrize("where, spec", FROM_CLIENTS, ids=[f"{w}-{s}" for w, s in FROM_CLIENTS])
def test_paths_urls_and_faults_from_clients_are_refused_and_reveal_nothing(
    client: TestClient, small_checkpoint: Path, tmp_path: Path, where: str, spec: str
) -> None:
    """The same refusal, at once, for a checkpoint, a plain folder, a file and nothing at all."""
    (tmp_path / "file").write_text("x")
    errors = []
    for path in (small_checkpoint, tmp_path, tmp_path / "file", tmp_path / "missing"):
        start = time.monotonic()
        error = _error(_ask(client, where, spec.format(p=path)), 400)
        assert time.monotonic() - start < 5.0, "nothing was read or waited for"
        errors.append(error.replace(str(path), "<P>"))
    assert len(set(errors)) == 1, errors
    assert not any(word in errors[0].lower() for word in REVEALING), errors[0]
    assert str(small_checkpoint.parent) not in errors[0] and str(tmp_path) not in errors[0]


def test_operator_offered_models_play_by_name(small_checkpoint: Path, tmp_path: Path) -> None:
    """--model NAME=PATH and --models DIR (a checkpoint folder by its name, a BidNet folder too)."""
    runs = tmp_path / "runs"
    init_checkpoint("small", runs / "run-a", seed=1)
    save_bidnet(BidNet(24), runs / "bids")
    app = create_app(models={"mine": small_checkpoint}, model_dirs=[runs])
    with TestClient(app, raise_server_exceptions=False) as c:
        listing = c.get("/v1/players").json()
        assert {(m["name"], m["kind"]) for m in listing["models"]} == {("mine", "play"), ("run-a", "play"),
                                                                     ("bids", "bid")}  # fmt: skip
        assert {"policy:model=mine", "policy:model=run-a"} <= {p["spec"] for p in listing["players"]}
        assert "net:model=bids" in {b["spec"] for b in listing["bidders"] if b["available"]}
        for spec in (
            "policy:model=mine",
            "policy:model=run-a,temp=0.5",
            "mcts:model=run-a,sims=8",
            "rollout:model=mine,worlds=2",
            "pimc:worlds=4,infer=mine,prior=run-a",
        ):
            reply = c.post("/v1/move", json={**EXAMPLE, "player": spec})
            assert reply.status_code == 200 and reply.json()["play"] in (15, 20), (spec, reply.text)
        bid = c.post("/v1/move", json={**BID, "player": "net:model=bids+heuristic"})
        assert bid.status_code == 200 and bid.json()["bid"] in (0, *range(31, 43), 84), bid.text
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "policy:model=bids"}), 400, "not a play network")
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "policy:model=nope"}), 400, "offered: mine, run-a")
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "policy"}), 400, "needs model=NAME")
        game = c.post("/v1/games", json={"seed": 3, "partner": "policy:model=mine", "opponents": "policy:model=run-a"})
        assert game.status_code == 200, game.text
        view = game.json()
        while not view["done"]:
            view = c.post(f"/v1/games/{view['id']}/play", json={"domino": view["legal"][0]}).json()
        _replay_legal(view)
        assert view["bots"] == {"1": "policy:model=run-a", "2": "policy:model=mine", "3": "policy:model=run-a"}
        for text in (str(listing), str(view)):
            assert str(tmp_path) not in text and str(small_checkpoint) not in text


def test_an_offered_model_that_fails_to_load_is_named_not_located(small_checkpoint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(small_checkpoint, broken)
    app = create_app(models={"broken": broken})
    weights = broken / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x55
    weights.write_bytes(bytes(raw))  # damaged after the server started
    with TestClient(app, raise_server_exceptions=False) as c:
        error = _error(c.post("/v1/move", json={**EXAMPLE, "player": "policy:model=broken"}), 400, "broken")
        assert str(tmp_path) not in error, error


def test_a_bad_operator_model_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    from zeb_core.players import SpecError

    with pytest.raises(SpecError, match="not a weights bundle"):
        create_app(models={"x": tmp_path})
    with pytest.raises(SpecError, match="no such folder"):
        create_app(model_dirs=[tmp_path / "missing"])


# ---------------------------------------------------------------- game sessions
def _new(c: TestClient, route: str) -> str:
    reply = c.post(route, json={"seed": 1, "partner": "random", "opponents": "random"})
    assert reply.status_code == 200, reply.text
    return reply.json()["id"]


@pytest.mark.parametrize("route", ["/v1/games", "/v1/full-games"])
def test_games_per_client_are_bounded_and_no_client_wipes_anothers(route: str) -> None:
    app = create_app(limits=ServeLimits(games_per_client=3, max_games=10))
    with (
        TestClient(app, raise_server_exceptions=False, client=("10.0.0.1", 5000)) as a,
        TestClient(app, raise_server_exceptions=False, client=("10.0.0.2", 5000)) as b,
    ):
        theirs = _new(b, route)
        mine = [_new(a, route) for _ in range(30)]
        assert b.get(f"{route}/{theirs}").status_code == 200, "another client's games wiped a game"
        assert all(a.get(f"{route}/{gid}").status_code == 200 for gid in mine[-3:])
        _error(a.get(f"{route}/{mine[-4]}"), 404, "expired")
        store = app.state.games if route == "/v1/games" else app.state.full_games
        assert store.owned("10.0.0.1") == mine[-3:] and store.owned("10.0.0.2") == [theirs]


@pytest.mark.parametrize("route", ["/v1/games", "/v1/full-games"])
def test_the_longest_idle_game_goes_first_not_the_oldest(route: str) -> None:
    app = create_app(limits=ServeLimits(max_games=3))
    with TestClient(app, raise_server_exceptions=False) as c:
        first, second, third = (_new(c, route) for _ in range(3))
        assert c.get(f"{route}/{first}").status_code == 200  # the oldest is being played
        fourth = _new(c, route)
        _error(c.get(f"{route}/{second}"), 404, "expired")
        assert all(c.get(f"{route}/{gid}").status_code == 200 for gid in (first, third, fourth))


def test_a_game_idle_past_game_idle_s_is_dropped() -> None:
    app = create_app(limits=ServeLimits(game_idle_s=0.3))
    with TestClient(app, raise_server_exceptions=False) as c:
        kept, idle = _new(c, "/v1/games"), _new(c, "/v1/games")
        for _ in range(3):
            time.sleep(0.15)
            assert c.get(f"/v1/games/{kept}").status_code == 200  # played: it stays
        _error(c.get(f"/v1/games/{idle}"), 404, "expired")


# ---------------------------------------------------------------- player memory
def test_player_memory_stays_bounded_and_games_do_not_keep_dropped_players(small_checkpoint: Path) -> None:
    """Six games, each with two temp= variants of a network: the pool keeps at most what its memory bound allows,
    no game keeps a dropped network alive, and every game still plays (a dropped player is built again)."""
    one = held_bytes(make_player(f"policy:path={small_checkpoint}"))
    limits = ServeLimits(player_memory_mb=1.5 * one / 2**20)  # one network at a time
    app = create_app(models={"small": small_checkpoint}, limits=limits)
    pool = app.state.pool
    refs: list[weakref.ref] = []
    with TestClient(app, raise_server_exceptions=False) as c:
        ids = []
        for k in range(1, 7):
            bots = {"partner": f"policy:model=small,temp=0.{k}", "opponents": f"policy:model=small,temp=1.{k}"}
            reply = c.post("/v1/games", json={"seed": k, **bots})
            assert reply.status_code == 200, reply.text
            ids.append(reply.json()["id"])
            refs += [weakref.ref(p) for spec, p in pool.built() if "model=" in spec]
            assert pool.memory() <= limits.player_memory_mb * 2**20
        gc.collect()
        alive = {id(r()) for r in refs if r() is not None}
        assert len(alive) <= 1, f"{len(alive)} networks are still alive; the bound allows one"
        for gid in ids:  # each game goes on: its players are built again as they are needed
            view = c.get(f"/v1/games/{gid}").json()
            for _ in range(2):
                view = c.post(f"/v1/games/{gid}/play", json={"domino": view["legal"][0]}).json()
            _replay_legal(view)
            assert view["n_plays"] >= 8
        assert pool.memory() <= limits.player_memory_mb * 2**20
