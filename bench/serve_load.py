"""Load on `zeb serve`: concurrent clients asking POST /v1/move for legal positions, on 127.0.0.1 only.

Starts its own `zeb serve` (a free port on 127.0.0.1, `--player`), then `--clients` clients, each with its own
keep-alive connection, send one request after another for `--seconds` seconds or until `--max-requests` in all,
whichever comes first. The positions are real ones: benchmark deals played some random legal moves in. Every
reply must be a 200 with a legal domino (any other is counted under `errors`).

With `--expensive N`, N more clients send the most expensive requests the server's default limits allow, one
after another (pimc at its most worlds and the points objective from a hand's first play, mc bids over all ten
declarations, mcts and rollout of an offered small network, and full games whose bots are all those), while the
others measure the cheap player: its p99 must stay under a second (issue 35). Their replies (200, or 503/504 when
the search slot or the time budget says so) are counted apart.
Run: .venv/bin/python bench/serve_load.py [--clients 50] [--seconds 30] [--max-requests 100000] [--player heuristic]
     [--expensive 1]
Prints p50 and p99 latency (ms), requests/s, then requests and errors (and the expensive requests' statuses).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # never anything else: this is a load generator


def positions(n: int, seed: int = 0) -> list[tuple[dict, set[int]]]:
    """`n` bot requests (the seat to move after 0..27 random legal plays) with the engine's legal dominoes."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dealt = deal_benchmark(1, make_generator(seed * 100_003 + i))
        state = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
        plays = []
        for _ in range(rng.randrange(28)):
            move = rng.choice(state.legal_mask()[0].nonzero().flatten().tolist())
            plays.append([int(state.current[0]), move])
            state.apply(torch.tensor([move]))
        request = {
            "seat": int(state.current[0]),
            "hand": state.held()[0].nonzero().flatten().tolist(),
            "decl": int(state.decl[0]),
            "bidder": int(state.bidder[0]),
            "bid": int(state.bid[0]),
            "leader": int(state.leader[0]),
            "plays": plays,
        }
        out.append((request, set(state.legal_mask()[0].nonzero().flatten().tolist())))
    return out


# The costliest requests the default ServeLimits allow (zeb_core/serve/limits.py), model "bench" a small network.
EXPENSIVE_PLAY = (
    "pimc:worlds=64,objective=points",
    "mcts:model=bench,sims=200,worlds=8",
    "rollout:model=bench,worlds=16",
)
EXPENSIVE_BOT = "mc:worlds=32,decls=10+pimc:worlds=64,objective=points"
BID = {"version": 2, "phase": "bid", "seat": 2, "dealer": 0, "hand": [2, 4, 9, 13, 14, 15, 27], "bids": [[1, 0]]}


def expensive_requests(n: int = 20) -> list[tuple[str, dict]]:
    """(route, body): each costly player from a hand's first play, mc bids, and full games of costly bots."""
    out: list[tuple[str, dict]] = []
    for i in range(n):
        dealt = deal_benchmark(1, make_generator(900_001 + i))
        leader = int(dealt.leader[0])
        first = {"seat": leader, "hand": dealt.hands[0, leader].tolist(), "decl": int(dealt.decl[0]),
                 "bidder": int(dealt.bidder[0]), "bid": int(dealt.bid[0]), "leader": leader, "plays": []}  # fmt: skip
        out += [("/v1/move", {**first, "player": spec}) for spec in EXPENSIVE_PLAY]
        out += [("/v1/move", {**BID, "player": EXPENSIVE_BOT}), ("/v1/full-games", {"seed": i, "opponents":
                EXPENSIVE_BOT, "partner": EXPENSIVE_BOT})]  # fmt: skip
    return out


def start_server(player: str, model: Path | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "zeb_cli.main", "serve", "--host", HOST, "--port", str(port), "--player", player]
    cmd += ["--model", f"bench={model}"] if model is not None else []
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"zeb serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("zeb serve did not answer /healthz within 60 s")
        time.sleep(0.1)


async def load(
    base: str,
    clients: int,
    seconds: float,
    max_requests: int,
    work: list[tuple[dict, set[int]]],
    expensive: int = 0,
    costly: list[tuple[str, dict]] | None = None,
) -> dict:
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.monotonic() + seconds
    statuses: Counter[str] = Counter()
    costly_times: list[float] = []

    async def expensive_client(k: int) -> None:
        """One costly request after another, each answered (200) or refused in time (503/504)."""
        assert costly
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            i = k
            while time.monotonic() < stop_at:
                route, body = costly[i % len(costly)]
                i += expensive
                t = time.perf_counter()
                try:
                    statuses[str((await http.post(route, json=body)).status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                costly_times.append(time.perf_counter() - t)

    async def client(k: int) -> None:
        nonlocal errors, sent
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
            i = k
            while time.monotonic() < stop_at and sent < max_requests:
                sent += 1
                request, legal = work[i % len(work)]
                i += clients
                t = time.perf_counter()
                try:
                    resp = await http.post("/v1/move", json=request)
                    ok = resp.status_code == 200 and resp.json().get("play") in legal
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)), *(expensive_client(k) for k in range(expensive)))
    wall = time.perf_counter() - start
    latencies.sort()
    costly_times.sort()

    def pick(q: float, xs: list[float] = latencies) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")

    result = {"p50": pick(0.50), "p99": pick(0.99), "rps": len(latencies) / wall, "n": len(latencies)}
    costly_p50, costly_max = pick(0.5, costly_times), pick(1.0, costly_times)
    return {**result, "errors": errors, "statuses": statuses, "costly_p50": costly_p50, "costly_max": costly_max}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--player", default="heuristic", help="the server's default player spec")
    parser.add_argument("--positions", type=int, default=500, help="distinct positions the clients cycle through")
    parser.add_argument("--expensive", type=int, default=0, help="more clients sending the costliest allowed requests")
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 0 < args.seconds <= 300 and 1 <= args.max_requests <= 1_000_000):
        raise SystemExit("bounded on purpose: --clients 1..200, --seconds up to 300, --max-requests up to 1,000,000")
    if not 0 <= args.expensive <= 8:
        raise SystemExit("bounded on purpose: --expensive 0..8")
    torch.set_num_threads(1)
    work = positions(args.positions)
    with tempfile.TemporaryDirectory(prefix="zeb-serve-load-") as tmp:
        model = None
        if args.expensive:
            from zeb_core.model.checkpoint import init_checkpoint

            model = Path(tmp) / "bench"
            init_checkpoint("small", model, seed=0)
        costly = expensive_requests() if args.expensive else None
        proc, base = start_server(args.player, model)
        try:
            for request, _ in work[:20]:  # warm-up
                httpx.post(f"{base}/v1/move", json=request, timeout=30)
            for route, body in (costly or [])[:5]:  # the solver compiles and the network loads before the clock
                httpx.post(f"{base}{route}", json=body, timeout=120)
            result = asyncio.run(
                load(base, args.clients, args.seconds, args.max_requests, work, args.expensive, costly)
            )
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"p50 latency ms: {result['p50']:.1f}")
    print(f"p99 latency ms: {result['p99']:.1f}")
    print(f"requests/s: {result['rps']:.0f}")
    print(f"requests: {result['n']} ({args.clients} clients, {args.player}); errors: {result['errors']}")
    if args.expensive:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
        print(f"expensive requests ({args.expensive} clients): {statuses}; p50 {result['costly_p50']:.0f} ms, "
              f"slowest {result['costly_max']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
