"""What one learner ingest cycle costs when the examples store holds many files, most of them read already.

For each backend (a local folder; S3: moto's server on 127.0.0.1, in a process of its own; the Hub:
tests/hf_hub_server.py on 127.0.0.1) and each file count N, a fresh store is filled with N tiny valid example
files (the real encoder, one example each) through `Store.upload_example_files`: --per-hour files an hour, in
--threads commits as that many workers would, by the uploader's clock up to an hour ago (where that version of the
store takes the uploader's clock), so the store holds N files over N / per-hour hours, as a fleet uploading that
many files an hour leaves them. A learner (weights in a local folder, so only example calls are counted) then
holds a cursor that has read every one of them, and has run for over an hour since (its cursor's hour folders
settled). Measured: an idle cycle (`Learner.ingest()`, nothing new), a cycle after one upload of --new files, and
one prune (`Learner.prune()`: every read file beyond the newest --keep and those the buffer needs). HTTP calls are
counted at the Hub test server (its per-route counts) and at the S3 client (botocore's before-send event: each
request sent, retries included; moto counts nothing). Cursor: the bytes of its JSON in the learner's state, and
what `tracemalloc` counts for building it in memory from that JSON. Prune times are mostly the filesystem's (or
server's) deletes, and noisy.

Reading N files to mark them read would take minutes on the Hub server, so the cursor is marked through its own
API (`advance` with every listed name, then one listing an hour later, as `Store.new_examples(now=...)`); the
bench prints how it was prepared. Works on the store before hour folders too (flat files, the name-set cursor),
for the before/after figures in deployments/README.md.
Run: .venv/bin/python bench/ingest_cost.py [--backends local s3 hf] [--files 1000 10000] [--per-hour 250] [--new 10]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _common import setup
from helpers import example_bytes

from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.store import ExampleCursor, RetryPolicy, Store
from zeb_core.store.local import LocalBackend

HOURLY = "now" in inspect.signature(Store.upload_example_files).parameters  # this version stamps by hour folder
SETTLES = "closed" in {f.name for f in fields(ExampleCursor)}  # this version's cursor closes settled hours


def tiny_files(count: int, seed: int) -> list[tuple[bytes, dict[str, Any]]]:
    """`count` distinct valid example files of one example each (tests/helpers.example_bytes)."""
    return [example_bytes(1, seed * 1_000_003 + i, worker=f"w{i % 8}", games=1) for i in range(count)]


class Counter:
    """HTTP requests to the examples store: `count()` now (0 for a local folder)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count


@contextmanager
def make_store(kind: str, stack: ExitStack, tmp: Path) -> Iterator[tuple[Store, Counter]]:
    weights = LocalBackend(tmp / "weights")
    if kind == "local":
        yield Store(weights, LocalBackend(tmp / "examples"), RetryPolicy.fast()), Counter(lambda: 0)
        return
    if kind == "s3":
        from s3_server import s3_env

        from zeb_core.store.s3 import S3Backend

        endpoint = stack.enter_context(moto_process())
        os.environ.update(s3_env(endpoint))
        examples = S3Backend("bench", f"{uuid.uuid4().hex[:8]}/examples")
        sent = [0]

        def count(**_: Any) -> None:
            sent[0] += 1

        examples.client.meta.events.register("before-send.s3", count)
        yield Store(weights, examples, RetryPolicy.fast()), Counter(lambda: sent[0])
        return
    from hf_hub_server import hf_hub_server

    from zeb_core.store.hf import HfBackend

    hub = stack.enter_context(hf_hub_server())
    hf = HfBackend(f"tester/e{uuid.uuid4().hex[:8]}", repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    yield Store(weights, hf, RetryPolicy.fast()), Counter(lambda: sum(hub.count_calls().values()))


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's S3 server in a process of its own (on 127.0.0.1), so it does not share this one's interpreter lock
    with the uploads that fill it."""
    from s3_server import free_port

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def fill(store: Store, files: list[tuple[bytes, dict[str, Any]]], per_hour: int, threads: int) -> float:
    """Upload `files` in commits of `per_hour`, one an hour up to an hour ago, the oldest first (each hour's in
    `threads` uploads at once, as as many workers would); returns the seconds it took."""
    start = time.perf_counter()
    hours = -(-len(files) // per_hour)
    with ThreadPoolExecutor(threads) as pool:
        for i in range(hours):
            batch = [(data, manifest, "model") for data, manifest in files[i * per_hour : (i + 1) * per_hour]]
            kw: dict[str, Any] = {"now": time.time() - (hours - i) * 3600.0} if HOURLY else {}
            parts = [part for part in (batch[j::threads] for j in range(threads)) if part]
            list(pool.map(functools.partial(store.upload_example_files, **kw), parts))
    return time.perf_counter() - start


def read_everything(lrn: Learner, store: Store) -> str:
    """Make the learner's cursor one that has read every listed file and whose hours have settled since."""
    names = [r.name for r in store.list_examples()]
    if not SETTLES:
        lrn.cursor = ExampleCursor(set(names))
        return "every name in the cursor's set"
    store.new_examples(lrn.cursor)
    lrn.cursor.advance(names)
    store.new_examples(lrn.cursor, now=time.time() + 3601.0)  # type: ignore[call-arg]
    return f"every name advanced, then a listing 1 h later (closed up to {lrn.cursor.closed})"  # type: ignore[attr-defined]


def cursor_size(lrn: Learner) -> tuple[int, int]:
    """(bytes of the cursor's JSON in the state, bytes tracemalloc counts for building it from that JSON)."""
    text = json.dumps(lrn.state().to_json()["cursor"])
    data = json.loads(text)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = ExampleCursor.from_json(data)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del built
    return len(text), held


def measure(counter: Counter, work: Callable[[], Any]) -> tuple[int, float, Any]:
    calls, start = counter.count(), time.perf_counter()
    out = work()
    return counter.count() - calls, time.perf_counter() - start, out


def run(kind: str, n: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack, make_store(kind, stack, Path(tmp)) as got:
        store, counter = got
        store.ensure()
        fill_s = fill(store, tiny_files(n, seed=n), args.per_hour, args.threads)
        settings = LearnerSettings(
            store=f"file://{tmp}/weights",
            size="small",
            min_buffer_size=1,
            replay_buffer_size=args.new,
            keep_example_files=args.keep,
            device="cpu",
            promote=False,
            learner_id="bench",
        )
        lrn = Learner(settings, store=store, echo=lambda _: None)
        lrn.start()
        try:
            how = read_everything(lrn, store)
            idle = [measure(counter, lrn.ingest) for _ in range(3)]
            calls, _, out = idle[0]
            assert out["files"] == 0, out
            seconds = min(s for _, s, _ in idle)
            kb, traced = cursor_size(lrn)
            store.upload_example_files([(d, m, "model") for d, m in tiny_files(args.new, seed=-n)])
            new_calls, new_s, out = measure(counter, lrn.ingest)
            assert out["files"] == args.new, out
            assert lrn.push("bench"), "the prune spares what the last push has not read"
            prune_calls, prune_s, removed = measure(counter, lrn.prune)
        finally:
            lrn.close(push=False)
    label = f"{kind} {n} files"
    commits = -(-n // args.per_hour)
    print(f"{label}: setup {fill_s:.1f} s, {args.per_hour} files an hour for {commits} hours; cursor prepared: {how}")
    print(f"{label}: idle cycle {calls} http calls, {seconds:.3f} s")
    print(f"{label}: cycle with {args.new} new files {new_calls} http calls, {new_s:.3f} s")
    print(f"{label}: cursor {kb / 1024:.1f} KB in the state, {traced / 1024:.1f} KB in memory (tracemalloc)")
    print(f"{label}: prune of {removed} files {prune_calls} http calls, {prune_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["local", "s3", "hf"], choices=["local", "s3", "hf"])
    parser.add_argument("--files", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--new", type=int, default=10, help="files uploaded before the measured busy cycle")
    parser.add_argument("--per-hour", type=int, default=250, help="files per setup commit, one an hour")
    parser.add_argument("--threads", type=int, default=4, help="uploads at once while filling a store")
    parser.add_argument("--keep", type=int, default=15, help="the learner's --keep-example-files for the prune")
    args = parser.parse_args()
    setup(1)
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    for name in ("werkzeug", "zeb", "uvicorn", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"store version: {'hour folders, settling cursor' if HOURLY else 'flat files, name-set cursor'}")
    for kind in args.backends:
        for n in args.files:
            run(kind, n, args)


if __name__ == "__main__":
    main()
