"""CPU seconds of a `zeb train` run's processes by role (learner, worker, Prefect API servers), sampled from /proc.

    .venv/bin/python bench/process_cpu.py RUN_CWD [--every 20] [--until-idle]

Every `--every` seconds it reads the cumulative CPU time of each process whose working directory is under RUN_CWD
(where `zeb train` was started) and remembers the last value of processes that have ended; on Ctrl-C (or, with
--until-idle, when no such process is left) it prints one figure a line: `ROLE cpu_s: X`. The one-server
vs two-servers table (docs/training.md) was measured this way. Linux only.
"""

from __future__ import annotations

import argparse
import os
import time

ROLES = ("learner", "worker", "prefect-server", "train", "other")


def role_of(cmd: str) -> str:
    if "uvicorn" in cmd or ("prefect" in cmd and " server start" in cmd):
        return "prefect-server"
    for role in ("learner", "worker", "train"):
        if f" {role} " in f" {cmd} ":
            return role
    return "other"


def sample(root: str, seen: dict[str, tuple[str, float]]) -> int:
    """Update `seen` (pid -> (role, cpu seconds)); returns how many processes are alive under `root`."""
    tick = os.sysconf("SC_CLK_TCK")
    alive = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not os.readlink(f"/proc/{pid}/cwd").startswith(root) or int(pid) == os.getpid():
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        alive += 1
        seen[pid] = (role_of(cmd), (int(fields[11]) + int(fields[12])) / tick)
    return alive


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="the folder zeb train runs in")
    ap.add_argument("--every", type=float, default=20.0)
    ap.add_argument("--until-idle", action="store_true")
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    seen: dict[str, tuple[str, float]] = {}
    try:
        while sample(root, seen) or not args.until_idle:
            time.sleep(args.every)
    except KeyboardInterrupt:
        pass
    for role in ROLES:
        print(f"{role} cpu_s: {sum(c for r, c in seen.values() if r == role):.1f}")


if __name__ == "__main__":
    main()
