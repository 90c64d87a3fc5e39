"""One command for whoever has a GPU: every CUDA path once, one figure a line.

Sections: the golden hands replayed on the device; the engine (bench/engine.py); self-play at setting (b), 256
games x 200 simulations x 512 nodes (bench/selfplay.py); learner steps and ingest (bench/learner.py); a short
`zeb train --games N` on the device; the trained weights against random (`zeb eval`). The benchmark scripts are
run as they are (one process each, so one section's failure or memory does not spill into the next).
Without CUDA it stops at once with a message; `--device cpu` is a quick dry run of the same sections at toy sizes.
Run: .venv/bin/python bench/gpu_check.py [--device cuda|cuda:N|cpu] [--train-games 512]
     (in the worker image: docker run --gpus all IMAGE python bench/gpu_check.py)
Exit status: 0 when every section passed, 1 when one failed, 2 when the device is not there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zeb_cli.train_presets import TINY_TRAIN_FLAGS

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ZEB = str(Path(sys.executable).with_name("zeb"))
GOLDEN = Path(os.environ.get("ZEB_SHARED", REPO.parent / "shared")) / "golden" / "play_phase.jsonl"

# (full size on a GPU, toy size for the CPU dry run): extra arguments of each benchmark script
SIZES = {
    "engine": (["--batches", "1024", "4096", "16384"], ["--batches", "64"]),
    "selfplay": (
        ["--setting", "b"],
        ["--setting", "b", "--parallel-games", "2", "--sims", "4", "--max-nodes", "16", "--size", "small"],
    ),
    "learner": ([], ["--size", "small", "--steps", "2", "--games", "32", "--batch-size", "32", "--ingest-files", "2"]),
}
TRAIN = {  # zeb train flags besides --games and --device
    "gpu": ["--workers", "1", "--eval-games", "200", "--final-eval-games", "1000", "--minutes", "8"],
    "cpu": [*TINY_TRAIN_FLAGS, "--minutes", "2"],
}


def check_device(device: str) -> str:
    """A one-line description of the device; exits 2 with the reason when it is not usable."""
    import torch

    if device == "cpu":
        return f"cpu (dry run, toy sizes; torch {torch.__version__})"
    if not device.startswith("cuda"):
        sys.exit(f"gpu check: --device must be cuda, cuda:N or cpu, not {device!r}")
    if not torch.cuda.is_available():
        why = "this torch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        print(
            f"gpu check: CUDA is not available ({why}; torch {torch.__version__}). Nothing was run. "
            "Run it on a GPU machine, or `--device cpu` for a quick dry run.",
            file=sys.stderr,
        )
        sys.exit(2)
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        print(
            f"gpu check: {device} asked for, but only {torch.cuda.device_count()} GPU(s) are visible", file=sys.stderr
        )
        sys.exit(2)
    props = torch.cuda.get_device_properties(index)
    return (
        f"{props.name}, {props.total_memory / 2**30:.0f} GiB "
        f"({device}; torch {torch.__version__}, CUDA {torch.version.cuda})"
    )


def run(section: str, cmd: list[str], timeout: float, prefix: bool = True) -> list[str] | None:
    """Run one section; print its stdout lines prefixed with the section; None (and the reason) when it fails."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd,
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )
    except subprocess.TimeoutExpired:
        print(f"{section}: FAILED (still running after {timeout:.0f} s)", flush=True)
        return None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        print(f"{section}: FAILED (exit {done.returncode}): {tail}", flush=True)
        return None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if prefix:
        for line in lines:
            print(f"{section} {line}", flush=True)
    print(f"{section} seconds: {time.perf_counter() - start:.1f}", flush=True)
    return lines


def golden(device: str) -> bool:
    from zeb_core.engine.replay import check_file

    if not GOLDEN.is_file():  # e.g. in the worker image, which has no shared/
        print(f"golden hands: skipped ({GOLDEN} not found; set ZEB_SHARED to check them)", flush=True)
        return True
    result = check_file(GOLDEN, device)
    print(f"golden hands on {device}: {result.summary()}", flush=True)
    return result.failed == 0 and result.total > 0


def train(device: str, games: int, runs: Path, timeout: float) -> Path | None:
    """A short `zeb train` on the device; prints games, learner steps and games/s; the weights, or None."""
    flags = TRAIN["cpu" if device == "cpu" else "gpu"]
    cmd = [
        ZEB,
        "train",
        "--name",
        "gpu-check",
        "--runs-dir",
        str(runs),
        "--games",
        str(games),
        "--device",
        device,
        *flags,
    ]
    start = time.perf_counter()
    if run("train", cmd, timeout, prefix=False) is None:
        return None
    seconds = time.perf_counter() - start
    state = json.loads((runs / "gpu-check" / "weights" / "model-state.json").read_text())
    print(f"train games: {state['total_games']}", flush=True)
    print(f"train learner steps: {state['step']}", flush=True)
    print(f"train games/s (whole run, start to report): {state['total_games'] / seconds:.1f}", flush=True)
    return runs / "gpu-check" / "weights" / "model.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    parser.add_argument("--train-games", type=int, default=None, help="games of the short zeb train (512; 64 on cpu)")
    args = parser.parse_args()
    print(f"device: {check_device(args.device)}", flush=True)
    cpu = args.device == "cpu"
    timeout = 300.0 if cpu else 900.0
    start = time.perf_counter()
    results = {"golden": golden(args.device)}
    for name, (full, toy) in SIZES.items():
        cmd = [sys.executable, str(BENCH / f"{name}.py"), "--device", args.device, *(toy if cpu else full)]
        results[name] = run(name, cmd, timeout) is not None
    with tempfile.TemporaryDirectory(prefix="zeb-gpu-check-") as tmp:
        weights = train(args.device, args.train_games or (32 if cpu else 512), Path(tmp), timeout)
        results["train"] = weights is not None
        if weights is not None:
            games = "100" if cpu else "2000"
            cmd = [
                ZEB,
                "eval",
                f"policy:path={weights}",
                "vs",
                "random",
                "--games",
                games,
                "--device",
                args.device,
                "--json",
            ]
            out = run("eval", cmd, timeout, prefix=False)
            results["eval"] = out is not None
            if out is not None:
                r = json.loads("\n".join(out))
                print(
                    f"eval trained vs random win rate: {r['win_rate']:.1%} "
                    f"({r['ci_low']:.1%}..{r['ci_high']:.1%}, {r['games']} games)",
                    flush=True,
                )
                print(f"eval games/s: {r['games_per_s']:,.0f}", flush=True)
    failed = [name for name, ok in results.items() if not ok]
    took = time.perf_counter() - start
    if failed:
        print(
            f"gpu check: FAILED {', '.join(failed)} "
            f"({len(results) - len(failed)} of {len(results)} passed, {took:.0f} s)"
        )
        sys.exit(1)
    print(f"gpu check: all {len(results)} sections passed in {took:.0f} s")


if __name__ == "__main__":
    main()
