"""`zeb serve --store URL`: the store's best weights are the page's default partner and opponents, named by step
and win rates from the weights' state JSON; the latest before any promotion; heuristic without weights; an
explicit --player always wins. A real local store, a real app (FastAPI's test client)."""

from __future__ import annotations

from pathlib import Path

import torch
from fastapi.testclient import TestClient

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.formats.weights import load_bundle_dir
from zeb_core.model.checkpoint import init_checkpoint
from zeb_core.serve.app import create_app
from zeb_core.serve.players import offered_store_spec
from zeb_core.store import open_store

EVAL = {"eval/vs_random_win_rate": 0.715, "eval/vs_heuristic_win_rate": 0.651, "step": 340}


def _bundle(tmp: Path, step: int, last_eval: dict | None = None):
    folder = tmp / f"ckpt-{step}"
    if not folder.exists():
        init_checkpoint("small", folder, seed=step)
    bundle = load_bundle_dir(folder)
    bundle.state["step"] = step
    if last_eval is not None:
        bundle.state["last_eval"] = last_eval
    return bundle


def _replay_legal(game: dict) -> None:
    """The bots' plays, replayed by the engine on the same seeded deal with its legality check on."""
    dealt = deal_benchmark(1, make_generator(game["seed"]))
    state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
    for play in game["plays"]:
        state.apply(torch.tensor([play["domino"]]), check=True)


def test_the_stores_best_weights_are_the_default_named_by_step_and_win_rates(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    store.push_weights(_bundle(tmp_path, 360, {**EVAL, "step": 360, "eval/vs_random_win_rate": 0.7}))
    store.promote(_bundle(tmp_path, 340, EVAL))
    best = offered_store_spec("best")
    with TestClient(create_app(store_url=url), raise_server_exceptions=False) as c:
        assert c.get("/healthz").json()["default_player"] == best
        body = c.get("/v1/players").json()
        assert body["default"] == best
        by_spec = {p["spec"]: p for p in body["players"]}
        entry = by_spec[best]
        assert entry["default"] and entry["available"]
        assert entry["label"] == "store best (step 340, 71.5% vs random, 65.1% vs heuristic) (server default)"
        assert entry["eval"] == {"vs_random": 0.715, "vs_heuristic": 0.651, "step": 340}
        latest = by_spec[offered_store_spec("latest")]
        assert (
            not latest["default"] and latest["label"] == "store latest (step 360, 70.0% vs random, 65.1% vs heuristic)"
        )
        assert not by_spec["heuristic"]["default"] and by_spec["heuristic"]["label"] == "heuristic"

        game = c.post("/v1/games", json={"seed": 7}).json()  # no partner or opponents given: the default
        assert game["bots"] == {"1": best, "2": best, "3": best}
        _replay_legal(game)


def test_before_a_promotion_the_latest_is_the_default_and_an_older_evaluation_says_its_step(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    open_store(url).push_weights(_bundle(tmp_path, 12, {**EVAL, "step": 10}))
    with TestClient(create_app(store_url=url), raise_server_exceptions=False) as c:
        default = c.get("/v1/players").json()
        assert default["default"] == offered_store_spec("latest")
        entry = next(p for p in default["players"] if p["default"])
        assert (
            entry["label"] == "store latest (step 12, 71.5% vs random, 65.1% vs heuristic at step 10) (server default)"
        )


def test_without_weights_or_with_an_explicit_player_the_store_is_not_the_default(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    with TestClient(create_app(store_url=url), raise_server_exceptions=False) as c:
        assert c.get("/v1/players").json()["default"] == "heuristic"
    open_store(url).push_weights(_bundle(tmp_path, 3))  # a state with no evaluation: the step alone
    with TestClient(create_app(default_player="random", store_url=url), raise_server_exceptions=False) as c:
        body = c.get("/v1/players").json()
        assert body["default"] == "random"
        latest = next(p for p in body["players"] if p["spec"] == offered_store_spec("latest"))
        assert latest["label"] == "store latest (step 3)" and "eval" not in latest
