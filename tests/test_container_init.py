"""deployments/container_init.py, the worker image's PID 1 (issue 35, item 13): a container's stop signal reaches
the flow's engine, which Prefect runs in a session of its own under `prefect flow-run execute` (no SIGTERM handler
there), and the container lasts until the engine has finished (the learner's final push).

Real processes shaped like Prefect's: a "supervisor" that starts an "engine" with start_new_session and dies of
SIGTERM, and an engine that handles SIGTERM by "pushing" for a while before it exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from tests.prefect_server import MARKER_VAR, kill_marked

REPO = Path(__file__).resolve().parents[1]
INIT = REPO / "deployments" / "container_init.py"

ENGINE = textwrap.dedent(
    """
    import signal, sys, time
    out = sys.argv[1]
    def stop(signum, frame):
        open(out + ".got", "w").write(str(signum))
        time.sleep(1.5)  # the final push
        open(out + ".pushed", "w").write("ok")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    open(out + ".ready", "w").close()
    while True:
        time.sleep(0.1)
    """
)
# like `prefect flow-run execute`: no handler of its own, the engine in a new session
SUPERVISOR = "import subprocess, sys; sys.exit(subprocess.Popen(sys.argv[1:], start_new_session=True).wait())"


def _wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _tree(out: Path) -> list[str]:
    return [sys.executable, "-c", SUPERVISOR, sys.executable, "-c", ENGINE, str(out)]


def test_sigterm_reaches_an_engine_in_its_own_session_and_the_init_waits_for_its_push(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER_VAR: marker}
    try:
        # Without the init: a signal to the supervisor's process group (what tini or dumb-init send) misses the
        # engine, which runs on (in a container the supervisor, as PID 1, would not even die of it).
        bare_out = tmp_path / "bare"
        bare = subprocess.Popen(_tree(bare_out), env=env, start_new_session=True)
        _wait_for(bare_out.with_suffix(".ready"))
        os.killpg(bare.pid, signal.SIGTERM)
        assert bare.wait(timeout=30) == -signal.SIGTERM
        time.sleep(0.5)
        assert not bare_out.with_suffix(".got").exists(), "the engine heard nothing"

        out = tmp_path / "engine"
        init = subprocess.Popen([sys.executable, str(INIT), *_tree(out)], env=env, start_new_session=True)
        _wait_for(out.with_suffix(".ready"))
        os.kill(init.pid, signal.SIGTERM)  # what `docker stop` / a pod's deletion sends PID 1
        code = init.wait(timeout=60)
        assert out.with_suffix(".got").read_text() == str(int(signal.SIGTERM)), "the engine got SIGTERM"
        assert out.with_suffix(".pushed").exists(), "the init waited for the engine to finish"
        assert code == 128 + signal.SIGTERM, "the command's status: the supervisor died of the signal"
    finally:
        left = kill_marked(marker, wait_s=2.0)
    assert len(left) == 1, f"only the engine of the run without the init was left running: {left}"


def test_what_a_finished_command_leaves_running_is_stopped_and_its_status_kept(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    leave = (
        "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
        "start_new_session=True); sys.exit(3)"
    )
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(INIT), sys.executable, "-c", leave],
            env={**os.environ, MARKER_VAR: marker},
            timeout=60,
        )
        assert done.returncode == 3 and time.monotonic() - started < 30
    finally:
        left = kill_marked(marker)
    assert not left, "the orphan was stopped by the init"
    assert subprocess.run([sys.executable, str(INIT)], capture_output=True, timeout=60).returncode == 2
    missing = subprocess.run([sys.executable, str(INIT), str(tmp_path / "nothing")], capture_output=True, timeout=60)
    assert missing.returncode == 127 and b"cannot run" in missing.stderr
