"""Test-wide environment: an isolated Prefect home, no analytics, W&B offline, and where shared/ lives."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

_HOME = Path(tempfile.mkdtemp(prefix="zeb-test-prefect-"))
os.environ.setdefault("PREFECT_HOME", str(_HOME))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("WANDB_MODE", "offline")
# Two intra-op threads on a 2-core machine; one under pytest-xdist, whose workers already use both cores.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
# Prefect stops its temporary server at exit, after pytest has closed the captured streams.
logging.raiseExceptions = False

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZEB_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "golden" / "play_phase.jsonl").is_file():
        pytest.fail(f"shared reference material not found at {SHARED} (set ZEB_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def golden_file(shared_dir: Path) -> Path:
    return shared_dir / "golden" / "play_phase.jsonl"


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from zeb_core.model import init_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "small"
    init_checkpoint("small", path, seed=0)
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: the small model gains nothing from more, and on a busy 2-core machine spinning
    threads make it many times slower. Test files that want it for every test set
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _processes_naming(text: str) -> list[str]:
    """Pids whose command line or environment contains `text` (Linux /proc; unreadable processes are skipped)."""
    needle = text.encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(pid)
                        break
            except OSError:
                break
    return found


@pytest.fixture
def no_orphans(tmp_path: Path):  # type: ignore[no-untyped-def]
    """After the test, SIGKILL every process whose command line or environment names this test's tmp_path.

    `zeb train` starts its learner, workers and Prefect server in their own sessions; when a test gives up on it (a
    timeout), they would otherwise go on training for as long as the suite runs and slow every later test. The
    run's Prefect server names the run folder only in its environment (PREFECT_HOME), hence both.
    """
    yield tmp_path
    import signal

    found = _processes_naming(str(tmp_path))
    for pid in found:
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------ the local store servers, one per test module
@pytest.fixture(scope="module")
def hub() -> Iterator[Any]:
    """A local Hub server (tests/hf_hub_server.py: HfHubServer) shared by one test module's tests."""
    from hf_hub_server import hf_hub_server

    with hf_hub_server() as server:
        yield server


@pytest.fixture
def clean_hub(hub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`hub` with no fault or commit limit left by another test and the real Hub's variables (HF_ENDPOINT,
    HF_HUB_OFFLINE) unset; afterwards, a failure if huggingface_hub called a route the server does not serve. A
    module takes it with `pytestmark = pytest.mark.usefixtures("clean_hub")`."""
    for var in ("HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    hub.clear_faults()
    yield hub
    hub.clear_faults()
    assert hub.unhandled == [], f"huggingface_hub called routes the test Hub does not serve: {hub.unhandled}"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A local S3 server's endpoint URL (tests/s3_server.py) shared by one test module's tests."""
    from s3_server import s3_server

    with s3_server() as endpoint:
        yield endpoint
