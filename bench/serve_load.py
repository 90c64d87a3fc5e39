"""Load on `zeb serve`: concurrent clients asking POST /v1/move for legal positions, on 127.0.0.1 only.

Starts its own `zeb serve` (a free port on 127.0.0.1, `--player`), then `--clients` clients, each with its own
keep-alive connection, send one request after another for `--seconds` seconds or until `--max-requests` in all,
whichever comes first. The positions are real ones: benchmark deals played some random legal moves in. Every
reply must be a 200 with a legal domino (any other is counted under `errors`).
Run: .venv/bin/python bench/serve_load.py [--clients 50] [--seconds 30] [--max-requests 100000] [--player heuristic]
Prints p50 and p99 latency (ms), requests/s, then requests and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
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


def start_server(player: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "zeb_cli.main", "serve", "--host", HOST, "--port", str(port), "--player", player]
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


async def load(base: str, clients: int, seconds: float, max_requests: int, work: list[tuple[dict, set[int]]]) -> dict:
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.monotonic() + seconds

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
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"p50": pick(0.50), "p99": pick(0.99), "rps": len(latencies) / wall, "n": len(latencies), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--player", default="heuristic", help="the server's default player spec")
    parser.add_argument("--positions", type=int, default=500, help="distinct positions the clients cycle through")
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 0 < args.seconds <= 300 and 1 <= args.max_requests <= 1_000_000):
        raise SystemExit("bounded on purpose: --clients 1..200, --seconds up to 300, --max-requests up to 1,000,000")
    torch.set_num_threads(1)
    work = positions(args.positions)
    proc, base = start_server(args.player)
    try:
        for request, _ in work[:20]:  # warm-up
            httpx.post(f"{base}/v1/move", json=request, timeout=30)
        result = asyncio.run(load(base, args.clients, args.seconds, args.max_requests, work))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"p50 latency ms: {result['p50']:.1f}")
    print(f"p99 latency ms: {result['p99']:.1f}")
    print(f"requests/s: {result['rps']:.0f}")
    print(f"requests: {result['n']} ({args.clients} clients, {args.player}); errors: {result['errors']}")


if __name__ == "__main__":
    main()
