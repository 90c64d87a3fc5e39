"""A real S3 protocol server for tests: moto's threaded server on a free localhost port.

    with s3_server() as endpoint:
        for k, v in s3_env(endpoint).items():
            monkeypatch.setenv(k, v)

Nothing here talks to AWS: the credentials are fake and the endpoint is 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


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
