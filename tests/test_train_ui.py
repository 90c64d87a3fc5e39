"""The run's Prefect UI in a real headless Chromium (from tests/browser_setup.sh, as for the play page): while a
short `zeb train` goes on, the UI shows the learner's flow run, the worker's, and the learner's evaluation
artifact; after the run, `zeb ui` shows the same flow run from the run's own database; nothing is left running.

The run gets a game budget it does not reach and is stopped by Ctrl-C once the browser has seen everything: a
budget that ends the run by itself would race the browser (batches take under a second once compiled).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.browser import headless_chromium
from tests.prefect_server import MARKER_VAR, processes_with_marker
from zeb_cli.prefect_server import healthy
from zeb_cli.train_presets import TINY_TRAIN_FLAGS

pytestmark = pytest.mark.usefixtures("no_orphans")  # zeb train children left by a timeout are killed
ZEB = str(Path(sys.executable).with_name("zeb"))
TINY = [*TINY_TRAIN_FLAGS, "--device", "cpu"]
WAIT_S = 300.0  # a loaded 2-core machine: server start, numba compilation, first batch
PAGE_S = 90.0
T = TypeVar("T")


class Lines:
    """A pipe read on a thread, so neither side blocks, with a wait for a line that matches."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)

    def wait_for(self, pattern: str, proc: subprocess.Popen, timeout_s: float = WAIT_S) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            assert proc.poll() is None, f"exited with {proc.returncode} before {pattern!r}:\n{''.join(self.lines)}"
            time.sleep(0.2)
        raise AssertionError(f"no line matched {pattern!r} in {timeout_s:.0f}s:\n{''.join(self.lines)}")


def _until(fn: Callable[[], T | None], proc: subprocess.Popen, what: str, timeout_s: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := fn()) is not None:
            return value
        assert proc.poll() is None, f"the command exited ({proc.returncode}) before {what}"
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def _env(marker: str) -> dict[str, str]:
    """No PREFECT_API_URL (zeb train starts the run's own server); a marker on every process it starts."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    return {**env, "COLUMNS": "200", MARKER_VAR: marker}


def _flow_run(api: str, flow: str) -> dict | None:
    body = {"flows": {"name": {"any_": [flow]}}, "limit": 5}
    found = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
    assert len(found) <= 1, f"one {flow} flow run per zeb train, got {[r['name'] for r in found]}"
    return found[0] if found else None


def _artifact(api: str, key: str, flow_run_id: str) -> dict | None:
    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}, "limit": 1}
    found = httpx.post(f"{api}/artifacts/filter", json=body, timeout=10).json()
    return found[0] if found else None


def _page(driver: Any, url: str, *texts: str) -> None:
    """Load `url` and wait until the rendered page (a JavaScript app) shows every one of `texts`."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    body = ""

    def shows(d: Any) -> bool:
        nonlocal body
        body = d.find_element("tag name", "body").text
        return all(t in body for t in texts)

    try:
        WebDriverWait(driver, PAGE_S, poll_frequency=0.5).until(shows)
    except Exception:  # noqa: BLE001 - say what was missing, with what the page showed
        missing = [t for t in texts if t not in body]
        raise AssertionError(f"{url} never showed {missing}; it showed:\n{body[:2000]}") from None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium("--window-size=1400,1200", timeout_s=PAGE_S) as driver:
        yield driver


def _stop(proc: subprocess.Popen, timeout_s: float = 400) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.long
def test_the_prefect_ui_shows_the_run_live_and_zeb_ui_reopens_it(tmp_path: Path, browser: Any) -> None:
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [ZEB, "train", "--name", "t", "--runs-dir", str(tmp_path), "--games", "100000", *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(marker),
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        ui = err.wait_for(r"Prefect UI:\s+(http://127\.0\.0\.1:\d+)/runs", proc).group(1)
        api = f"{ui}/api"
        learner = _until(lambda: _flow_run(api, "learner"), proc, "the learner's flow run")
        worker = _until(lambda: _flow_run(api, "selfplay-worker"), proc, "the worker's flow run")
        _page(browser, f"{ui}/runs/flow-run/{learner['id']}", learner["name"], "learner", "Running")
        evaluation = _until(lambda: _artifact(api, "model-evaluation", learner["id"]), proc, "an evaluation")
        _page(
            browser,
            f"{ui}/artifacts/artifact/{evaluation['id']}",
            "model-evaluation",
            learner["name"],
            "heuristic",
            "random",
            "95% CI",
        )
        _page(browser, f"{ui}/runs", learner["name"], worker["name"])  # the page the printed link opens
        assert proc.poll() is None, "all of it was seen while the run went on"
    finally:
        _stop(proc)
    report, log = out.text(), err.text()
    assert proc.returncode == 0, report + log
    assert f"zeb ui --name t --runs-dir {tmp_path}" in report and "wandb sync " in report
    assert not processes_with_marker(marker), "zeb train left processes behind"
    assert not healthy(api), "the run's Prefect server stopped"
    assert not (tmp_path / "t" / "prefect" / "server" / "server.json").exists()

    marker = uuid.uuid4().hex  # after the run: `zeb ui` on the same database
    viewer = subprocess.Popen(
        [ZEB, "ui", "--name", "t", "--runs-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(marker),
    )
    vout, verr = Lines(viewer.stdout), Lines(viewer.stderr)
    try:
        ui = vout.wait_for(r"Prefect UI of run 't': (http://127\.0\.0\.1:\d+)/runs", viewer).group(1)
        after = _flow_run(f"{ui}/api", "learner")
        assert after is not None and after["id"] == learner["id"] and after["state_type"] == "COMPLETED", after
        _page(browser, f"{ui}/runs/flow-run/{learner['id']}", learner["name"], "Completed")
        _page(browser, f"{ui}/artifacts/artifact/{evaluation['id']}", learner["name"], "heuristic")
    finally:
        _stop(viewer, 60)
    assert viewer.returncode == 0, vout.text() + verr.text()
    assert not processes_with_marker(marker), "zeb ui left its server behind"
    assert not healthy(f"{ui}/api")
