"""`zeb serve` under an expensive client (issue 35, item 7): every cost a client's spec names is bounded (a 400 that
names the limit and its setting), a request's decisions have a time budget (504 past it, the server unharmed),
searches take turns in their slots (503 when none frees) while cheap players never wait for them, and SIGTERM stops
a real server within seconds even in the middle of a long decision.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from zeb_core.engine import deal_benchmark, make_generator
from zeb_core.serve.app import create_app
from zeb_core.serve.bot import SPEC_EXAMPLE as EXAMPLE
from zeb_core.serve.limits import ServeLimits

REPO = Path(__file__).resolve().parents[1]
BID = {"version": 2, "phase": "bid", "seat": 2, "dealer": 0, "hand": [2, 4, 9, 13, 14, 15, 27], "bids": [[1, 0]]}
LONG_SEARCH = "mcts:model=small,sims=10000,nodes=20000"  # many seconds (allowed only by raised limits)


@pytest.fixture(scope="module")
def client(small_checkpoint: Path) -> Iterator[TestClient]:
    with TestClient(create_app(models={"small": small_checkpoint}), raise_server_exceptions=False) as c:
        yield c


def _error(resp: httpx.Response, status: int, *fragments: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and all(f in body["error"] for f in fragments), body
    return body["error"]


# ---------------------------------------------------------------- bounded specs
OVER_LIMIT = [
    ("/v1/move", {**EXAMPLE, "player": "pimc:worlds=6000"}, "pimc_worlds", "64"),
    ("/v1/move", {**EXAMPLE, "player": "pimc:worlds=10000000"}, "pimc_worlds", "64"),
    ("/v1/move", {**BID, "player": "mc:worlds=100000000+heuristic"}, "mc_worlds", "32"),
    ("/v1/move", {**EXAMPLE, "player": "mcts:model=small,sims=100000"}, "mcts_sims", "200"),
    ("/v1/move", {**EXAMPLE, "player": "mcts:model=small,sims=100,nodes=1000000"}, "mcts_nodes", "400"),
    ("/v1/move", {**EXAMPLE, "player": "mcts:model=small,worlds=500"}, "mcts_worlds", "8"),
    ("/v1/move", {**EXAMPLE, "player": "rollout:model=small,worlds=100000"}, "rollout_worlds", "16"),
    ("/v1/move", {**EXAMPLE, "player": "pimc:worlds=32,infer=small,candidates=99999"}, "pimc_candidates", "256"),
    ("/v1/move", {**EXAMPLE, "player": "pimc:worlds=16,auction=1,candidates=257"}, "pimc_candidates", "256"),
    ("/v1/games", {"opponents": "pimc:worlds=10000000"}, "pimc_worlds", "64"),
    ("/v1/full-games", {"partner": "mc:worlds=100000000+heuristic"}, "mc_worlds", "32"),
    ("/v1/full-games", {"bots": {"3": "baseline+pimc:worlds=6000"}}, "pimc_worlds", "64"),
]


@pytest.mark.parametrize(
    "route, body, field, limit", OVER_LIMIT, ids=[b.get("player", str(b)) for _, b, _, _ in OVER_LIMIT]
)
def test_a_spec_over_a_limit_is_a_400_naming_the_limit(
    client: TestClient, route: str, body: dict, field: str, limit: str
) -> None:
    start = time.monotonic()
    _error(client.post(route, json=body), 400, f"ServeLimits.{field}", f"limit of {limit}", f"--limit {field}=")
    assert time.monotonic() - start < 2.0, "a refused spec costs nothing"


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("random:seed=99999999999999999999999", "at most"),
        ("pimc:worlds=-5", "at least 0"),
        ("policy:model=small,temp=nan", "finite"),
        ("pimc:worlds=8,objective=WIN;rm", "lowercase word"),
        ("mcts:model=small,clairvoyant=2", "0 or 1"),
    ],
)
def test_other_client_values_are_checked_too(client: TestClient, spec: str, fragment: str) -> None:
    _error(client.post("/v1/move", json={**EXAMPLE, "player": spec}), 400, fragment)


def test_specs_within_the_limits_play_and_the_operator_may_raise_them(small_checkpoint: Path) -> None:
    limits = ServeLimits(pimc_worlds=100, mc_worlds=40)
    with TestClient(create_app(limits=limits), raise_server_exceptions=False) as c:
        for spec in ("pimc:worlds=100", "pimc:worlds=8,objective=points"):
            reply = c.post("/v1/move", json={**EXAMPLE, "player": spec})
            assert reply.status_code == 200 and reply.json()["play"] in (15, 20), reply.text
        assert c.post("/v1/move", json={**BID, "player": "mc:worlds=40+heuristic"}).json()["bid"] in range(85)
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "pimc:worlds=101"}), 400, "limit of 100")
        assert c.get("/v1/players").json()["limits"]["pimc_worlds"] == 100
    # The operator's own spec is trusted as given, whatever the limits.
    with TestClient(create_app("pimc:worlds=4", limits=ServeLimits(pimc_worlds=2)), raise_server_exceptions=False) as c:
        assert c.post("/v1/move", json=EXAMPLE).json()["play"] in (15, 20)
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "pimc:worlds=4,seed=1"}), 400, "limit of 2")


# ---------------------------------------------------------------- the time budget and the search slots
def test_a_request_past_the_time_budget_is_a_504_and_cheap_players_still_answer(small_checkpoint: Path) -> None:
    """A budget of 0.5 s: a search of 3,000 simulations (several seconds) is a 504; heuristic (about 10 ms, 50
    times within the budget, so a loaded machine does not make it late) still answers while that search runs."""
    limits = ServeLimits(decision_timeout_s=0.5, mcts_sims=3000, mcts_nodes=6000)
    app = create_app(models={"small": small_checkpoint}, limits=limits)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/v1/move", json={**EXAMPLE, "player": "policy:model=small"})  # loaded, so only the search is slow
        start = time.monotonic()
        slow = c.post("/v1/move", json={**EXAMPLE, "player": "mcts:model=small,sims=3000"})
        _error(slow, 504, "ServeLimits.decision_timeout_s", "budget of 0.5 s")
        assert time.monotonic() - start < 5.0
        reply = c.post("/v1/move", json={**EXAMPLE, "player": "heuristic"})  # the search may still be running
        assert reply.status_code == 200 and reply.json()["play"] in (15, 20)
    app.state.runner.executor.shutdown(wait=True)  # the search that ran past its budget ends here, not later


def test_searches_take_turns_and_one_that_finds_no_slot_is_a_503(small_checkpoint: Path) -> None:
    """One slot, taken by a search: a second search waits search_wait_s (0 here), then 503; heuristic goes on."""
    limits = ServeLimits(searches=1, search_wait_s=0.0, decision_timeout_s=60)
    app = create_app(models={"small": small_checkpoint}, limits=limits)
    runner = app.state.runner
    with TestClient(app, raise_server_exceptions=False) as c:
        first: list = []
        search = {**EXAMPLE, "player": "mcts:model=small,sims=200"}
        thread = threading.Thread(target=lambda: first.append(c.post("/v1/move", json=search)))
        thread.start()
        deadline = time.monotonic() + 30
        while runner.searching == 0 and not first:
            assert time.monotonic() < deadline, "the first search never started"
            time.sleep(0.01)
        assert runner.searching == 1 and not first, "the first search ended before the second was sent"
        _error(c.post("/v1/move", json={**EXAMPLE, "player": "pimc:worlds=4"}), 503, "busy", "ServeLimits.searches")
        assert c.post("/v1/move", json={**EXAMPLE, "player": "random"}).status_code == 200
        thread.join(120)
        assert first[0].status_code == 200 and first[0].json()["play"] in (15, 20), first[0].text
    assert runner.searching == 0


# ---------------------------------------------------------------- the solver does not stop other threads
def test_the_solver_runs_without_the_gil_and_threads_get_the_same_values() -> None:
    """A pimc search is one long solver call: it must let the server's other threads run, and two threads solving
    at once (each with its own tables) must get exactly what one thread gets."""
    from zeb_core.solver import move_values, warm_up

    warm_up()
    deals = [deal_benchmark(32, make_generator(seed)) for seed in (1, 2)]
    start = time.perf_counter()
    alone = [move_values(d, "points") for d in deals]
    one_call = (time.perf_counter() - start) / 2  # one solver call of 32 whole hands: about a second
    results: dict[int, object] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.update({i: move_values(deals[i], "points")})) for i in (0, 1)
    ]
    for t in threads:
        t.start()
    gaps, last = [], time.perf_counter()
    while any(t.is_alive() for t in threads):
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], alone[i], equal_nan=True) for i in (0, 1))
    assert max(gaps) < one_call / 4, f"this thread waited {max(gaps):.2f} s for a {one_call:.2f} s solver call"


# ---------------------------------------------------------------- a real server: cheap players and SIGTERM
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(small_checkpoint: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`zeb serve` offering the small checkpoint, its mcts limits raised so that LONG_SEARCH is allowed."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "zeb_cli.main", "serve", "--port", str(port), "--player", "heuristic",
        "--model", f"small={small_checkpoint}", "--limit", "mcts_sims=10000", "--limit", "mcts_nodes=20000",
        "--limit", "decision_timeout_s=120", "--limit", "shutdown_s=1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "zeb serve did not answer /healthz within 90 s"
        time.sleep(0.1)


def _search_in_background(base: str) -> tuple[threading.Thread, list]:
    """LONG_SEARCH sent from a thread; its outcome (a response or an exception) lands in the list."""
    outcome: list = []

    def send() -> None:
        try:
            outcome.append(httpx.post(f"{base}/v1/move", json={**EXAMPLE, "player": LONG_SEARCH}, timeout=180))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    time.sleep(1.5)  # it has reached the search
    return thread, outcome


def test_a_heuristic_move_is_answered_while_a_long_search_runs(small_checkpoint: Path, tmp_path: Path) -> None:
    proc, base = _start(small_checkpoint, tmp_path / "server.log")
    try:
        thread, outcome = _search_in_background(base)
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(10):
                start = time.monotonic()
                reply = http.post("/v1/move", json={**EXAMPLE, "player": "heuristic"})
                assert reply.status_code == 200 and reply.json()["play"] in (15, 20)
                assert time.monotonic() - start < 1.0, "a heuristic move waited for the search"
        assert thread.is_alive() and not outcome, f"the search was not running throughout: {outcome}"
    finally:
        proc.kill()
        proc.wait(10)


def test_sigterm_stops_the_server_within_seconds_in_the_middle_of_a_search(
    small_checkpoint: Path, tmp_path: Path
) -> None:
    proc, base = _start(small_checkpoint, tmp_path / "server.log")
    try:
        thread, outcome = _search_in_background(base)
        assert thread.is_alive() and not outcome, f"the search was not running: {outcome}"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"zeb serve still ran 20 s after SIGTERM:\n{(tmp_path / 'server.log').read_text()[-2000:]}")
        assert time.monotonic() - start < 6.0, f"zeb serve took {time.monotonic() - start:.1f} s to stop"
        thread.join(10)
        assert outcome and not (isinstance(outcome[0], httpx.Response) and outcome[0].status_code == 200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
