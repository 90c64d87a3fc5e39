"""`zeb serve` under bad input (issue 12, item 9): a real server on 127.0.0.1 gets thousands of requests generated
from its own OpenAPI schema (schemathesis, valid and invalid data) and from hypothesis (junk bodies, game
sessions, legal positions from the engine). No request may get a 5xx; every 4xx says why in `{"error": ...}`;
every legal position gets a legal move; the server keeps serving throughout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from zeb_core.engine import GameState, deal_benchmark, make_generator

REPO = Path(__file__).resolve().parents[1]
SCHEMA_CASES = 1200  # requests generated from the schema; the tests below add about 1,000 more (2,200 in all)
FAST = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True)


def examples(n: int) -> settings:
    return settings(FAST, max_examples=n)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`zeb serve` in its own process (uvicorn, as users run it), heuristic bots by default."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "zeb_cli.main", "serve", "--port", str(port), "--player", "heuristic"]
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path_factory.mktemp("serve") / "server.log", "w+") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "zeb serve exited at start"
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "zeb serve did not answer /healthz within 60 s"
                time.sleep(0.1)
            yield base
            assert proc.poll() is None, "the server died"
            log.seek(0)
            assert "Traceback" not in log.read(), "the server logged a traceback"
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def check_reply(resp: httpx.Response | schemathesis.Response, what: str) -> None:
    """No 5xx; a 4xx is JSON `{"error": "<a sentence>"}`; a 2xx is JSON."""
    status, content = resp.status_code, resp.content
    if isinstance(resp, httpx.Response):
        content_type = resp.headers.get("content-type", "")
    else:  # schemathesis: header name -> list of values
        content_type = next((v[0] for k, v in resp.headers.items() if k.lower() == "content-type"), "")
    assert status < 500, f"{what}: {status} {content[:300]!r}"
    assert content_type.startswith("application/json"), f"{what}: {status} {content_type!r}"
    body = json.loads(content)
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, f"{what}: {status} {body!r}"
        assert isinstance(body["error"], str) and len(body["error"].strip()) >= 10, f"{what}: {body!r}"


# ---------------------------------------------------------------- from the OpenAPI schema
@pytest.mark.long
def test_schema_fuzz_gets_no_5xx_and_every_4xx_has_a_reason(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()}
    assert operations == {
        "GET /healthz",
        "GET /v1/players",
        "POST /v1/move",
        "POST /v1/games",
        "GET /v1/games/{game_id}",
        "POST /v1/games/{game_id}/play",
        "POST /v1/full-games",
        "GET /v1/full-games/{game_id}",
        "POST /v1/full-games/{game_id}/bid",
        "POST /v1/full-games/{game_id}/declare",
        "POST /v1/full-games/{game_id}/play",
        "POST /v1/full-games/{game_id}/next",
    }
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    seen: Counter[tuple[str, int]] = Counter()
    session = requests.Session()  # one keep-alive connection rather than one per request

    @examples(SCHEMA_CASES)
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(session=session, timeout=30)
        seen[(case.operation.label, response.status_code)] += 1
        check_reply(response, f"{case.method} {case.formatted_path}")
        # Schemathesis' own checks too: no 5xx, documented statuses and content types, responses that match
        # the schema, invalid data rejected. Not "valid data accepted": the schema cannot say which hands are
        # consistent, so a schema-valid impossible position is rightly a 400 (legal ones: the test below).
        case.validate_response(response, excluded_checks=[positive_data_acceptance])

    with session:
        fuzz()
    total = sum(seen.values())
    assert total >= SCHEMA_CASES
    by_op = Counter(op for op, _ in seen.elements())
    assert set(by_op) == operations, by_op  # every operation was exercised (/healthz has only one request)
    with_body = [n for op, n in by_op.items() if op.startswith("POST") and not op.endswith("/next")]  # /next: none
    assert min(with_body) >= SCHEMA_CASES // 20 and by_op["POST /v1/full-games/{game_id}/next"] >= 10, by_op
    assert sum(n for (op, status), n in seen.items() if op == "POST /v1/move" and status == 400) > 0
    assert sum(n for (op, status), n in seen.items() if op == "POST /v1/games" and status == 200) > 0
    assert sum(n for (op, status), n in seen.items() if op == "POST /v1/full-games" and status == 200) > 0
    assert httpx.get(f"{server}/healthz", timeout=10).status_code == 200


# ---------------------------------------------------------------- junk that no schema describes
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
BOT_FIELDS = ("seat", "hand", "decl", "bidder", "bid", "leader", "plays", "player")
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(BOT_FIELDS), JSON_VALUES, max_size=8).map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b"1" * 5000),
    st.just(b'{"seat": ' + b"9" * 70000 + b"}"),
    st.sampled_from([b'{"seat": NaN}', b'{"domino": Infinity}', b'{"seat": 1e999}', b"\xff\xfe{}"]),
)


@examples(300)
@given(
    body=BODIES,
    route=st.sampled_from(["/v1/move", "/v1/games", "/v1/games/0123456789abcdef/play"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", None]),
)
def test_junk_bodies_get_a_4xx_with_a_reason(
    http: httpx.Client, body: bytes, route: str, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    resp = http.post(route, content=body, headers=headers)
    check_reply(resp, f"POST {route} {body[:60]!r}")
    if route == "/v1/move":
        assert resp.status_code >= 400 or resp.json()["play"] in range(28)


@pytest.mark.parametrize(
    "path", ["/healthz", "/v1/players", "/v1/move", "/v1/games", "/v1/games/x", "/v1/games/x/play"]
)
def test_undeclared_methods_get_405_with_allow(http: httpx.Client, path: str) -> None:
    allowed = {"GET"} if path in ("/healthz", "/v1/players", "/v1/games/x") else {"POST"}
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - allowed:
        resp = http.request(method, path)
        check_reply(resp, f"{method} {path}")
        assert resp.status_code == 405 and set(resp.headers["allow"].replace(" ", "").split(",")) == allowed


# ---------------------------------------------------------------- game sessions
@examples(60)
@given(
    seed=st.integers(0, 2**31),
    moves=st.lists(st.one_of(JSON_VALUES, st.integers(0, 27)), min_size=1, max_size=8),
    legal_pick=st.integers(0, 6),
)
def test_game_sessions_under_bad_plays_stay_consistent(
    http: httpx.Client, seed: int, moves: list, legal_pick: int
) -> None:
    """Bad plays between good ones are 4xx with a reason and change nothing; legal ones always go through."""
    game = http.post("/v1/games", json={"seed": seed, "partner": "random", "opponents": "random"})
    check_reply(game, "new game")
    game = game.json()
    for move in moves:
        if game["done"]:
            break
        before = game
        resp = http.post(f"/v1/games/{game['id']}/play", json={"domino": move})
        check_reply(resp, f"play {move!r}")
        if resp.status_code >= 400:
            assert http.get(f"/v1/games/{game['id']}").json() == before, "a refused play changed the game"
            legal = before["legal"]
            resp = http.post(f"/v1/games/{game['id']}/play", json={"domino": legal[legal_pick % len(legal)]})
            check_reply(resp, "a legal play")
            assert resp.status_code == 200, resp.text
        else:
            assert move in before["legal"], f"{move!r} was accepted but is not legal ({before['legal']})"
        game = resp.json()
        assert game["n_plays"] > before["n_plays"]
        assert game["done"] or (game["your_turn"] and set(game["legal"]) <= set(game["hand"]))


# ---------------------------------------------------------------- every legal position gets a legal move
def _position(seed: int, n_plays: int, pick: list[int]) -> tuple[dict, list[int]]:
    """A hand from the benchmark deal played `n_plays` legal moves in: the bot request of the seat to move, and
    that seat's legal dominoes according to the engine."""
    dealt = deal_benchmark(1, make_generator(seed))
    state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
    plays = []
    for i in range(n_plays):
        legal = state.legal_mask()[0].nonzero().flatten().tolist()
        move = legal[pick[i] % len(legal)]
        plays.append([int(state.current[0]), move])
        state.apply(torch.tensor([move]))
    seat = int(state.current[0])
    request = {
        "seat": seat,
        "hand": state.held(state.current)[0].nonzero().flatten().tolist(),
        "decl": int(state.decl[0]),
        "bidder": int(state.bidder[0]),
        "bid": int(state.bid[0]),
        "leader": int(state.leader[0]),
        "plays": plays,
    }
    return request, state.legal_mask()[0].nonzero().flatten().tolist()


@examples(250)
@given(
    seed=st.integers(0, 2**31),
    n_plays=st.integers(0, 27),
    pick=st.lists(st.integers(0, 6), min_size=27, max_size=27),
    player=st.sampled_from([None, "random", "heuristic"]),
)
def test_every_legal_position_gets_a_legal_move(
    http: httpx.Client, seed: int, n_plays: int, pick: list[int], player: str | None
) -> None:
    request, legal = _position(seed, n_plays, pick)
    resp = http.post("/v1/move", json=request, params={"player": player} if player else None)
    check_reply(resp, f"move {request}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["play"] in legal and len(legal) >= 1
