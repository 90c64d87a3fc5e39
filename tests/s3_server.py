"""A real S3 protocol server for tests: moto's threaded server on a free localhost port.

    with s3_server() as endpoint:
        for k, v in s3_env(endpoint).items():
            monkeypatch.setenv(k, v)

Nothing here talks to AWS: the credentials are fake and the endpoint is 127.0.0.1.

`cutting_proxy(endpoint)` stands in front of it and can cut the body of a reply mid-way (a connection dropped
while an object downloads), which moto itself never does.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A localhost port nothing listens on (connections are refused at once)."""
    return free_port()


@contextmanager
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and the endpoint, for monkeypatch.setenv (boto3 reads AWS_ENDPOINT_URL_S3 itself)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        # Keep a developer's real ~/.aws config and profiles out of the tests.
        "AWS_CONFIG_FILE": "/nonexistent/zeb-test-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/zeb-test-aws-credentials",
    }


# Variables that would override the fake credentials above; tests delete them.
S3_ENV_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "host"}


class CuttingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards every request to `upstream` and, armed by `cut_next`, sends the
    next matching reply's status, headers and full Content-Length but only half its body, then drops the
    connection."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.cuts = 0  # replies cut so far
        self._armed: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def cut_next(self, match: str) -> None:
        """Cut the body of the next reply to a GET whose path contains `match`."""
        with self._lock:
            self._armed.append(match)

    def _take_cut(self, line: str) -> bool:
        with self._lock:
            for i, match in enumerate(self._armed):
                if line.startswith("GET ") and match in line:
                    del self._armed[i]
                    self.cuts += 1
                    return True
        return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "", proxy.upstream.port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    reply = conn.getresponse()
                    data = reply.read()
                    cut = proxy._take_cut(f"{self.command} {self.path}") and len(data) > 1
                    self.send_response(reply.status, reply.reason)
                    for k, v in reply.getheaders():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    if cut:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data[: len(data) // 2] if cut else data)
                    self.wfile.flush()
                    if cut:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        return Handler


@contextmanager
def cutting_proxy(upstream: str) -> Iterator[CuttingProxy]:
    """A `CuttingProxy` in front of `upstream` (an s3_server endpoint) while the block runs."""
    proxy = CuttingProxy(upstream)
    thread = threading.Thread(target=proxy.server.serve_forever, name="s3-cutting-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
        thread.join(timeout=5)
