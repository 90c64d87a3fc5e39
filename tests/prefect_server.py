"""A real Prefect stack for tests: `prefect server start` on 127.0.0.1 (a free port, SQLite in its own
PREFECT_HOME), work pools, `prefect deploy --all`, `prefect worker start`, and a clean stop.

Every process started here, and everything those processes start (flow-run processes get a session of their own),
carries a marker in its environment; `stop()` ends the process groups it started, then any process still carrying
the marker, by id, and reports what was left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
MARKER_VAR = "ZEB_TEST_STACK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with_marker(marker: str) -> list[int]:
    """Ids of live processes whose environment holds MARKER_VAR=marker (this user's processes only)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # zombies are gone already
                    found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def kill_marked(marker: str, wait_s: float = 0.0) -> list[int]:
    """Gives the processes carrying `marker` up to `wait_s` to exit on their own, then SIGKILLs those still running
    (and their process groups) and waits until they are gone. Returns the ids it had to kill: a test asserts on
    them after the cleanup, so a process left behind both fails it and is not left behind."""
    deadline = time.monotonic() + wait_s
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = processes_with_marker(marker)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return leftovers


class PrefectStack:
    def __init__(self, home: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.cwd = cwd
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.marker = uuid.uuid4().hex
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env = {
            **base,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            # no scheduled runs during a test; the services nobody needs here stay off (2-core CI)
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            MARKER_VAR: self.marker,
            **(env or {}),
        }
        self.procs: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------ processes
    def _spawn(self, label: str, args: list[str]) -> subprocess.Popen:
        out = open(self.logs / f"{label}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args,
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.procs[label] = proc
        return proc

    def start_server(self, timeout_s: float = 120.0) -> None:
        proc = self._spawn(
            "server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{self.log('server')}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout_s:.0f}s:\n{self.log('server')}")

    def cli(
        self, *args: str, timeout_s: float = 180.0, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start_worker(self, pool: str, *extra: str) -> subprocess.Popen:
        label = f"worker-{pool}"
        return self._spawn(label, [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--name", label, *extra])

    def log(self, label: str, tail: int = 6000) -> str:
        path = self.logs / f"{label}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else "(no log)"

    def stop(self, grace_s: float = 15.0) -> list[int]:
        """Stop workers first, then the server; then whatever still carries the marker. Returns the ids of
        processes that carried the marker after the graceful stop (they were then killed)."""
        order = [k for k in self.procs if k != "server"] + (["server"] if "server" in self.procs else [])
        for label in order:
            proc = self.procs[label]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return kill_marked(self.marker)

    # ------------------------------------------------------------ API
    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A synchronous Prefect client talking to this server."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            yield client

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            yield


def latest_artifact(client: Any, key: str) -> dict | None:
    """The newest artifact with `key`, as a dict (Prefect 3.8.8's sync `Artifact.get` sends a body its own server
    rejects, and empty run filters drop artifacts made outside tasks, so the request is spelled out)."""
    body = {"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0, "sort": "UPDATED_DESC"}
    found = client.request("POST", "/artifacts/filter", json=body).json()
    return found[0] if found else None


@contextlib.contextmanager
def local_client() -> Iterator[Any]:
    """A synchronous client on whatever API this process uses (the ephemeral one in serverless tests)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client
