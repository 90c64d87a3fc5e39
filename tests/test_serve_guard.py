"""`zeb serve`'s front door (issue 35, items 8, 10, 12; zeb_core/serve/guard.py) against real servers on 127.0.0.1:
a body past the limit is refused before it is read (by Content-Length, and by counting a chunked stream), with the
server's memory measured; a body not typed JSON, a foreign Host (DNS rebinding) or Origin (another site's page),
a missing token and a client over its rate are refused with a reason, and nothing they asked for is done.
The same from a real cross-origin page in Chromium: tests/test_serve_browser_crossorigin.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from zeb_core.serve.app import create_app
from zeb_core.serve.guard import MAX_BODY, GuardSettings, RateLimiter, allowed_hosts_for, client_key

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 15.0
TOKEN = "test-token-0123456789abcdef"
JSON_TYPE = {"content-type": "application/json"}
ATTACK = 64 * 1024 * 1024  # bytes a client tries to push into the server (a whole body would be buffered twice)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(guard: GuardSettings | None, host: str = "127.0.0.1") -> Iterator[tuple[str, Any]]:
    """`create_app(guard=guard)` under a real uvicorn on `host` (a thread of this process): its URL and the app."""
    import uvicorn

    app = create_app(default_player="heuristic", guard=guard)
    port = _free_port(host)
    srv = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the uvicorn server did not start"
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}", app
    finally:
        srv.should_exit = True
        thread.join(TIMEOUT)


def _strict(*extra: str, **settings: Any) -> GuardSettings:
    """What `zeb serve` builds for --host 127.0.0.1 (plus --allowed-host `extra`)."""
    return GuardSettings(allowed_hosts=allowed_hosts_for("127.0.0.1", extra), **settings)


def _refused(resp: httpx.Response, status: int, fragment: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert fragment in resp.json()["error"], resp.json()


def _games(app: Any) -> int:
    """Games the server holds: what a request that got through would have created."""
    return len(app.state.games.games) + len(app.state.full_games.games)


# ---------------------------------------------------------------- item 8: the body limit, in `zeb serve` itself
@pytest.fixture(scope="module")
def zeb_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`zeb serve` as users run it (its own process, so its memory can be read), the token from ZEB_SERVE_TOKEN."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "ZEB_SERVE_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "zeb_cli.main", "serve", "--port", str(port), "--player", "heuristic"]
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log_path, "w+") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"zeb serve exited at start: {log_path.read_text()}"
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, "zeb serve did not answer /healthz within 60 s"
                time.sleep(0.1)
            assert "a token on the API" in log_path.read_text(), "the start line says what the server lets in"
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _request_head(base: str, framing: str) -> bytes:
    port = base.rsplit(":", 1)[1]
    return (
        f"POST /v1/move HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _connect(base: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=TIMEOUT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # no autotuned megabytes in flight
    return sock


def _answer(sock: socket.socket, within: float) -> bytes:
    """What the server says on `sock` within `within` seconds (up to its hang-up); b"" when it said nothing."""
    sock.settimeout(within)
    got = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            got += chunk
    return got


def _push(sock: socket.socket, total: int, piece: bytes) -> int:
    """Send `piece` until `total` bytes went or the server hung up or answered; the bytes the server took."""
    sent = 0
    while sent < total:
        if select.select([sock], [], [], 0)[0]:  # an answer (a refusal) or a hang-up: stop pushing
            break
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    return sent


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_past_the_limit_is_refused_before_it_is_read(zeb_serve: tuple[str, int], framing: str) -> None:
    """Item 8: a 1.5 GiB Content-Length gets its 413 at once, with no byte of the body sent; a chunked body (no
    length announced) gets it as soon as the count passes the limit. Then 64 MiB pushed as fast as the server
    takes them: it hangs up after about the limit, and its peak memory does not grow by the push."""
    base, pid = zeb_serve
    chunk = b"x" * 1024
    one = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _connect(base) as sock:
        start = time.monotonic()
        if framing == "content-length":
            sock.sendall(_request_head(base, f"Content-Length: {3 * 2**29}"))  # 1.5 GiB announced, none sent
        else:  # one byte past the limit in 1 KiB chunks, and no last chunk: the server must count, not wait
            sock.sendall(_request_head(base, "Transfer-Encoding: chunked") + one * (MAX_BODY // 1024) + b"1\r\nx\r\n")
        answer = _answer(sock, within=5.0)
        took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert f"larger than {MAX_BODY} bytes".encode() in answer and b"connection: close" in answer.lower()
    assert took < 2.0, f"the 413 took {took:.2f} s"

    before = _peak_rss(pid)
    with _connect(base) as sock:
        if framing == "content-length":
            sock.sendall(_request_head(base, f"Content-Length: {ATTACK}"))
            taken = _push(sock, ATTACK, chunk * 64)
        else:
            sock.sendall(_request_head(base, "Transfer-Encoding: chunked"))
            taken = _push(sock, ATTACK, one * 64)
    grown = _peak_rss(pid) - before
    print(f"{framing}: the server took {taken / 2**20:.2f} MiB of {ATTACK / 2**20:.0f}; peak RSS grew {grown} B")
    assert taken < 8 * 2**20, f"the server took {taken} bytes of a refused body"
    assert grown < 16 * 2**20, f"the server's peak memory grew by {grown} bytes"
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200, "the server keeps serving"


def test_zeb_serve_is_strict_by_default(zeb_serve: tuple[str, int]) -> None:
    """The CLI's guard: the bound names only, the token from ZEB_SERVE_TOKEN, bodies typed JSON."""
    base, _ = zeb_serve
    auth = {"authorization": f"Bearer {TOKEN}"}
    _refused(httpx.get(f"{base}/v1/players", timeout=10), 401, "wants its token")
    assert httpx.get(f"{base}/v1/players", headers=auth, timeout=10).status_code == 200
    _refused(httpx.get(f"{base}/v1/players", headers={**auth, "host": "rebind.example"}, timeout=10), 400, "Host")
    _refused(httpx.post(f"{base}/v1/games", content=b"{}", headers=auth, timeout=10), 415, "application/json")
    assert httpx.post(f"{base}/v1/games", json={}, headers=auth, timeout=10).status_code == 200


# ---------------------------------------------------------------- item 10: cross-site requests
@pytest.fixture(scope="module")
def strict() -> Iterator[tuple[str, Any]]:
    with serving(_strict("zeb.example")) as served:
        yield served


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None]
)
def test_a_body_not_typed_json_is_refused_and_not_acted_on(strict: tuple[str, Any], content_type: str | None) -> None:
    """Item 10: a browser sends text/plain, form and multipart bodies to any site without a preflight."""
    base, app = strict
    before = _games(app)
    headers = {"content-type": content_type} if content_type else {}
    for route, body in (("/v1/games", b'{"seed": 1}'), ("/v1/full-games", b"{}"), ("/v1/move", b"{}")):
        _refused(httpx.post(base + route, content=body, headers=headers, timeout=10), 415, "application/json")
    assert _games(app) == before, "a refused request created a game"
    assert httpx.post(f"{base}/v1/games", content=b'{"seed": 1}', headers=JSON_TYPE, timeout=10).status_code == 200
    assert httpx.post(f"{base}/v1/games", timeout=10).status_code == 200, "no body needs no Content-Type"
    assert _games(app) == before + 2


def test_a_foreign_host_is_refused(strict: tuple[str, Any]) -> None:
    """Item 10, DNS rebinding: a page of rebind.example whose name now points here sends Host: rebind.example."""
    base, app = strict
    port = base.rsplit(":", 1)[1]
    before = _games(app)
    for host in ("rebind.example", f"rebind.example:{port}", f"127.0.0.1.nip.io:{port}", "", "a b", "x@127.0.0.1"):
        resp = httpx.post(f"{base}/v1/games", json={}, headers={"host": host}, timeout=10)
        assert resp.status_code == 400 and "Host" in resp.json()["error"], (host, resp.text)
    assert _games(app) == before
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", f"zeb.example:{port}"):
        assert httpx.get(f"{base}/v1/players", headers={"host": host}, timeout=10).status_code == 200, host


def test_a_foreign_origin_is_refused(strict: tuple[str, Any]) -> None:
    """Item 10: only the server's own page (Origin = its Host) may call it from a browser."""
    base, app = strict
    port = int(base.rsplit(":", 1)[1])
    before = _games(app)
    for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}", "null", "x"):
        resp = httpx.post(f"{base}/v1/games", json={}, headers={"origin": origin}, timeout=10)
        _refused(resp, 403, "only this server's own page")
    assert _games(app) == before
    own = {"origin": f"http://127.0.0.1:{port}"}
    assert httpx.post(f"{base}/v1/games", json={}, headers=own, timeout=10).status_code == 200
    via_name = {"origin": f"http://localhost:{port}", "host": f"localhost:{port}"}
    assert httpx.get(f"{base}/v1/players", headers=via_name, timeout=10).status_code == 200
    proxied = {"origin": "https://zeb.example", "host": "zeb.example"}  # a TLS proxy that keeps the Host
    assert httpx.get(f"{base}/v1/players", headers=proxied, timeout=10).status_code == 200
    assert app.state.refusals["origin"] == 5


# ---------------------------------------------------------------- item 12: token and rate limit
def test_the_token_guards_the_api_not_the_page() -> None:
    with serving(_strict(token=TOKEN)) as (base, app):
        before = _games(app)
        for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN}):
            resp = httpx.post(f"{base}/v1/games", json={}, headers=headers, timeout=10)
            _refused(resp, 401, "Authorization: Bearer TOKEN")
            assert resp.headers["www-authenticate"].startswith("Bearer")
        assert _games(app) == before
        for path in ("/", "/static/app.js", "/healthz"):
            assert httpx.get(base + path, timeout=10).status_code == 200, path
        assert httpx.post(f"{base}/v1/games", json={}, headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
        assert _games(app) == before + 1


def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    """A bucket of 3 refilled at 5 per second per client; another address (or one a local proxy names) has its
    own."""
    with serving(_strict(rate_per_s=5, burst=3)) as (base, _), httpx.Client(base_url=base, timeout=10) as one:
        assert [one.get("/v1/players").status_code for _ in range(3)] == [200] * 3
        last = one.get("/v1/players")
        _refused(last, 429, "too many requests")
        assert int(last.headers["retry-after"]) == 1
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=base, timeout=10, transport=transport) as other:
            assert other.get("/v1/players").status_code == 200, "another client has its own bucket"
        proxied = {"x-forwarded-for": "203.0.113.9"}  # uvicorn trusts a proxy on 127.0.0.1 to name the client
        assert one.get("/v1/players", headers=proxied).status_code == 200, "a client behind a proxy has its own"
        time.sleep(1.0)
        assert one.get("/v1/players").status_code == 200, "the bucket refills"


def test_the_rate_limiter_forgets_the_oldest_clients_and_groups_ipv6() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_clients=3)
    assert [limiter.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.wait("a", 0.5) == pytest.approx(0.5)
    for who in "bcd":
        limiter.wait(who, 1.0)
    assert list(limiter.buckets) == ["b", "c", "d"]
    v6 = [client_key({"client": (f"2001:db8::{i}", 1)}) for i in (1, 2)]
    assert v6[0] == v6[1] == "2001:db8::/64"
    assert client_key({"client": ("::ffff:10.0.0.1", 1)}) == "10.0.0.1"


def test_settings_refuse_a_short_token_and_normalise_hosts() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        GuardSettings(token="short")
    hosts = allowed_hosts_for("::1", ["Zeb.Example.", "2001:DB8::1"])
    assert hosts is not None and {"[::1]", "127.0.0.1", "localhost", "zeb.example", "[2001:db8::1]"} <= set(hosts)
    assert allowed_hosts_for("0.0.0.0", ["*"]) is None
    wildcard = allowed_hosts_for("0.0.0.0")
    assert wildcard is not None and socket.gethostname().lower() in wildcard
