"""One local Prefect server per run: `prefect server start` on 127.0.0.1 and a free port, its home (and SQLite
database) in the run folder, analytics off, started, checked for health and stopped cleanly.

Why one: without a server every process starts its own temporary one, so the history of a run is split over
several databases nobody can browse, and each of those API servers takes CPU and memory from self-play. One
server per run keeps the whole run (the learner's cycles, the workers' batches, their tasks, logs and artifacts)
in one database that its UI shows while the run goes on, and that `zeb ui` reopens afterwards.

The server records itself in HOME/server.json (its URL and process id) while it runs, so a `zeb ui` or a
`zeb train` on the same run finds and uses a live one instead of opening the same database twice.

It listens on 127.0.0.1 unless told otherwise. Bound to any other address, it never runs open: Prefect's API lets
whoever reaches it read the Secret blocks and run any deployment, so it then requires Prefect's basic
authentication (PREFECT_SERVER_API_AUTH_STRING; a new random one unless given), and the processes it serves get
the same string as PREFECT_API_AUTH_STRING. The UI asks for it as its password.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HOST = "127.0.0.1"
RECORD = "server.json"
DATABASE = "prefect.db"
START_TIMEOUT_S = 120.0  # a first start migrates the database; 20-30 s on a loaded 2-core machine
CLOUD_API = "https://api.prefect.cloud/api"
CLOUD_UI = "https://app.prefect.cloud"
# No deployments, schedules, work pools, automations or concurrency limits in a one-machine run: the services
# that serve them stay off, since on 2 cores every polling loop takes from self-play. Flow runs, task runs (the
# task-run recorder), logs, events (the persister) and artifacts are recorded, and the UI is fed live.
QUIET_SERVICES = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "TRIGGERS",
    "CANCELLATION_CLEANUP",
    "REPOSSESSOR",
)


AUTH_USER = "zeb"
WILDCARDS = ("0.0.0.0", "::", "")  # every interface: the server's own processes reach it on loopback


class PrefectServerError(RuntimeError):
    """The server did not start or did not become healthy; the message is one sentence saying why."""


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def new_auth_string() -> str:
    """A fresh `user:password` for Prefect's basic authentication (192 random bits)."""
    return f"{AUTH_USER}:{secrets.token_urlsafe(24)}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ui_url_for(api_url: str) -> str:
    """The UI's address for an API URL, as Prefect derives it: Cloud's app page of the workspace, else no /api."""
    url = api_url.rstrip("/")
    if url.startswith(CLOUD_API):
        url = url.replace(CLOUD_API, CLOUD_UI, 1)
    url = url.removesuffix("/api")
    return url.replace("/api/", "/").replace("/accounts/", "/account/").replace("/workspaces/", "/workspace/")


def configured_api_url() -> str | None:
    """The API a user chose: PREFECT_API_URL in the environment, else the active Prefect profile's (e.g. after
    `prefect cloud login`); None when Prefect would run without a server."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    try:
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    except Exception:  # noqa: BLE001 - an unreadable profile is no configured server
        return None


def healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


class LocalPrefectServer:
    """`prefect server start` in its own session, its output in `log_path`, its database in `home`.

    `host`: the address it listens on. `auth_string` (`user:password`): required of every API request; on an
    address other than loopback a new one is made when none is given, so such a server is never open."""

    def __init__(
        self,
        home: Path,
        log_path: Path | None = None,
        port: int | None = None,
        host: str = HOST,
        auth_string: str | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.log_path = log_path or self.home / "server.log"
        self.host = host
        self.port = port or free_port(host)
        self.auth_string = auth_string or (None if is_loopback(host) else new_auth_string())
        self.proc: subprocess.Popen | None = None
        self.owned = False  # True when this object started the process (and so stops it)

    @property
    def api_url(self) -> str:
        """Where this machine's processes reach the API (loopback when it listens on every interface)."""
        connect = HOST if self.host in WILDCARDS else self.host
        return f"http://{_url_host(connect)}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """Where a browser finds the UI: the address it listens on, or this machine's name for every interface."""
        public = socket.gethostname() if self.host in WILDCARDS else self.host
        return f"http://{_url_host(public)}:{self.port}"

    @property
    def database(self) -> Path:
        return self.home / DATABASE

    @classmethod
    def running(cls, home: Path) -> LocalPrefectServer | None:
        """The healthy server recorded in `home` (started by another `zeb train` or `zeb ui`), or None."""
        try:
            record = json.loads((Path(home) / RECORD).read_text())
            host = str(record.get("host", HOST))
            auth = record.get("auth_string")
            if not is_loopback(host) and not auth:  # never taken for an open server
                return None
            server = cls(home, port=int(record["port"]), host=host, auth_string=auth)
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _alive(pid) or not healthy(server.api_url):
            return None
        return server

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_UI_API_URL": f"{self.ui_url}/api",  # else the UI's pages call the default port, 4200
                "PREFECT_UI_URL": self.ui_url,
                "PREFECT_SERVER_API_HOST": self.host,
                "PREFECT_SERVER_API_PORT": str(self.port),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
                "PREFECT_CLI_PROMPT": "false",
                **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in QUIET_SERVICES},
            }
        )
        if self.auth_string:  # the server requires it; its own services and every client send it
            env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth_string
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env

    def start(
        self,
        timeout_s: float = START_TIMEOUT_S,
        base_env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
        die_with_parent: bool = False,
    ) -> None:
        """Start and wait until /api/health answers; on failure the process is stopped and PrefectServerError says
        why (it exited, with its last log line, or it was not healthy within `timeout_s`). `die_with_parent`: the
        server gets SIGTERM when this process dies, even by SIGKILL (Linux), so it is never left behind."""
        if not _port_free(self.port, self.host):  # else another server's /health would pass for this one's
            raise PrefectServerError(f"port {self.port} on {self.host} is in use by another program")
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [
            str(Path(sys.executable).with_name("prefect")),
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--analytics-off",
            "--no-scheduler",
            "--no-late-runs",
        ]
        if not Path(args[0]).is_file():  # e.g. a Python whose environment has no `prefect` script beside it
            raise PrefectServerError(f"no `prefect` command at {args[0]}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                env=self.env(base_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=pass_fds,
                preexec_fn=_sigterm_when_parent_dies() if die_with_parent else None,
            )
        self.owned = True
        try:
            self._wait_healthy(timeout_s)
        except BaseException:  # PrefectServerError, and Ctrl-C while it starts: never a server left running
            self.stop()
            raise
        self._record()

    def _record(self) -> None:
        """HOME/server.json, readable by this user only: it holds the auth string of a server that has one."""
        assert self.proc is not None
        record = {"port": self.port, "pid": self.proc.pid, "api_url": self.api_url, "host": self.host}
        if self.auth_string:
            record["auth_string"] = self.auth_string
        path = self.home / RECORD
        path.unlink(missing_ok=True)  # a new file, so the mode below is its mode
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))

    def _wait_healthy(self, timeout_s: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise PrefectServerError(
                    f"`prefect server start` exited with {self.proc.returncode} "
                    f"({self._last_line()}); see {self.log_path}"
                )
            if healthy(self.api_url) and self.proc.poll() is None:
                return
            if time.monotonic() >= deadline:
                raise PrefectServerError(
                    f"the Prefect server was not healthy within {timeout_s:g}s; see {self.log_path}"
                )
            time.sleep(0.5)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to the server's process group (uvicorn shuts down gracefully), SIGKILL past `grace_s`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # anything it started in its session
            os.killpg(proc.pid, signal.SIGKILL)
        self._forget(proc.pid)

    def wait(self) -> int:
        """Block until the server exits (`zeb ui`); its exit status."""
        assert self.proc is not None
        return self.proc.wait()

    def _forget(self, pid: int) -> None:
        record = self.home / RECORD
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if int(json.loads(record.read_text())["pid"]) == pid:
                record.unlink()

    def _last_line(self) -> str:
        """The log's last exception line (its last line when there is none): the reason, in most failures."""
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        errors = [ln for ln in lines if re.search(r"\w(Error|Exception): ", ln)]  # e.g. OperationalError: ...
        return (errors or lines or ["no output"])[-1][:200]


def _sigterm_when_parent_dies() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies (prctl PR_SET_PDEATHSIG); None elsewhere.
    libc is loaded here, in the parent, so the forked child only makes the one call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@contextlib.contextmanager
def standalone_api(what: str, say: Callable[[str], None]) -> Iterator[LocalPrefectServer | None]:
    """The Prefect API a standalone `zeb learner` / `zeb worker` reports to while the block runs.

    The user's API when one is configured. Else, where Prefect would start its own temporary server, a `prefect
    server start` in its own session instead, on Prefect's home database (where the temporary one keeps its
    history) and with a UI: Prefect starts its temporary server in the command's process group, so a Ctrl-C in
    the terminal (SIGINT to the whole group) killed it while the flow was still finishing, and the command hung
    for two minutes on a dead API and ended in a traceback. This one is stopped when the block ends, after the
    logs and events still queued have reached it. If it does not start, Prefect's temporary server it is.
    `ZEB_PREFECT_TEMPORARY=1` (what `zeb train --prefect-server-timeout 0` gives its processes, each in its own
    session already) keeps Prefect's temporary server.
    """
    if configured_api_url() or os.environ.get("ZEB_PREFECT_TEMPORARY") == "1":
        yield None
        return
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    home = Path(get_current_settings().home).expanduser()
    server = LocalPrefectServer(home, log_path=home / f"zeb-{what}-server.log")
    say(f"starting a Prefect server for this {what} on {server.ui_url} ...")
    try:
        server.start(die_with_parent=True)
    except PrefectServerError as exc:
        say(f"no Prefect server of its own ({exc}); Prefect's temporary one instead")
        yield None
        return
    say(f"Prefect UI: {server.ui_url}/runs   (stopped when the {what} stops)")
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        _drain_prefect_services()
        server.stop()


def _drain_prefect_services(timeout_s: float = 15.0) -> None:
    """Send the logs and events Prefect still holds before their server stops (as Prefect's own test harness does)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):  # a service that never started, or an API already gone
            service.drain_all(timeout=timeout_s)
