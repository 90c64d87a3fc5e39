"""PID 1 of the Zeb worker image: runs the container's command, passes SIGTERM/SIGINT on to every process of the
container, and exits when the last of them has.

    ENTRYPOINT ["python", "/opt/zeb/deployments/container_init.py"]       (deployments/Dockerfile)

Why not tini or dumb-init: a flow run's container runs `prefect flow-run execute`, which starts the flow's engine
(the learner, a self-play worker) in a session of its own and installs no SIGTERM handler. As PID 1 it ignores the
SIGTERM that `docker stop` or a pod's deletion sends, and an init that signals its child's process group does not
reach the engine's session either: the learner never heard the signal and was killed at the end of the grace
period, without its final push. Here every descendant gets the signal, so the learner finishes its cycle, pushes
and releases its lease, and a self-play worker finishes and uploads its batch, within the grace period
(kubernetes-gpu-job-template.json's termination_grace_period_seconds; `docker stop --time`).

Descendants are found in /proc by parent id; orphans are re-parented to this process (PID 1 in a container, a
child subreaper elsewhere), so none is missed or left unreaped. The exit status is the command's (128 + N for a
signal N). When the command ends by itself, anything it left running gets SIGTERM, then SIGKILL after
LINGER_S. Standard library only, Linux only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LINGER_S = 10.0  # what a finished command left running gets to exit after SIGTERM
PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def descendants(root: int) -> list[int]:
    """Ids of the live processes below `root`, from /proc (a process that exits meanwhile is skipped)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie is dead already: reaped below
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def signal_all(sig: int) -> None:
    """`sig` to every descendant, ours to stop, whatever session or process group it is in."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def become_subreaper() -> None:
    """Orphaned descendants come to us (not to the host's init) so we see and reap them; PID 1 has this anyway."""
    if os.getpid() == 1:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap(block: bool) -> tuple[int, int] | None:
    """One exited child (pid, exit code), None when none has exited (block=False); ChildProcessError: no child."""
    pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    return pid, (128 - code if code < 0 else code)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: container_init.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    become_subreaper()
    signalled: list[int] = []

    def forward(signum: int, frame: object) -> None:
        signalled.append(signum)
        signal_all(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    try:
        command = subprocess.Popen(argv)  # reaped below, never by Popen itself
    except OSError as exc:
        print(f"container_init.py: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    code = 0
    # Until the command exits; after a signal, until every descendant has (the grace period is the limit).
    while True:
        try:
            pid, status = reap(block=True) or (0, 0)
        except ChildProcessError:
            return code
        if pid == command.pid:
            code = command.returncode = status
            if not signalled:
                break
    signal_all(signal.SIGTERM)  # the command ended by itself: what it left running is stopped
    deadline = time.monotonic() + LINGER_S
    while True:
        try:
            while reap(block=False):
                pass
        except ChildProcessError:
            return code
        if time.monotonic() >= deadline:
            signal_all(signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
