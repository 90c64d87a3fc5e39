"""Store throughput for the local and S3 backends: push/pull of medium weights, example uploads, listing, and
ingest (download + full validation) in examples per second.

The baseline, run in the same process, is the raw backend read of the same files without validation, so the
cost of trusting nothing is visible. S3 is moto's S3 server on 127.0.0.1 (protocol and HTTP costs, no network).
Run: .venv/bin/python bench/store.py [--backends local s3] [--files 20] [--examples-per-file 4096]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import setup
from helpers import example_bytes

from zeb_core.formats.weights import default_state
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.store import ExampleCursor, RetryPolicy, Store


@contextmanager
def backends(kind: str) -> Iterator[Store]:
    if kind == "local":
        from zeb_core.store.local import LocalBackend

        with tempfile.TemporaryDirectory() as tmp:
            yield Store(LocalBackend(Path(tmp) / "w"), LocalBackend(Path(tmp) / "e"), RetryPolicy.fast())
        return
    import os

    from moto.server import ThreadedMotoServer

    from zeb_core.store.s3 import S3Backend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        yield Store(
            S3Backend("bench", "w", endpoint_url=endpoint),
            S3Backend("bench", "e", endpoint_url=endpoint),
            RetryPolicy.fast(),
        )
    finally:
        server.stop()


def example_file(n: int, seed: int) -> tuple[bytes, dict]:
    return example_bytes(n, seed, worker="bench", games=n // 20)


def run(kind: str, files: int, per_file: int) -> None:
    model = ZebNet(ModelConfig.preset("medium"))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 8, 8, dtype=torch.int8), torch.ones(1, 7, dtype=torch.bool))[1].sum().backward()
    opt.step()
    bundle = bundle_from_model(model, default_state(1), opt.state_dict())
    blobs = [example_file(per_file, seed) for seed in range(files)]
    with backends(kind) as store:
        store.ensure()
        t = time.perf_counter()
        for _ in range(5):
            store.push_weights(bundle)
        push = 5 / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(5):
            store.pull_weights()
        pull = 5 / (time.perf_counter() - t)
        t = time.perf_counter()
        for data, manifest in blobs:
            store.upload_examples(data, manifest)
        upload = files * per_file / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(10):
            refs = store.list_examples()
        list_rate = 10 / (time.perf_counter() - t)
        t = time.perf_counter()
        for ref in refs:
            store.examples.read(ref.path)
        raw = files * per_file / (time.perf_counter() - t)
        new, _ = store.new_examples(ExampleCursor())
        t = time.perf_counter()
        n = sum(store.read_examples(ref).examples for ref in new)
        ingest = n / (time.perf_counter() - t)
    print(f"{kind} push medium weights+optimizer/s: {push:.1f}")
    print(f"{kind} pull medium weights+optimizer/s: {pull:.1f}")
    print(f"{kind} upload examples/s: {upload:,.0f}")
    print(f"{kind} list {files} files/s: {list_rate:.1f}")
    print(f"{kind} raw download examples/s (baseline): {raw:,.0f}")
    print(f"{kind} ingest examples/s (download + validate): {ingest:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--examples-per-file", type=int, default=4096)
    args = parser.parse_args()
    setup()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for kind in args.backends:
        run(kind, args.files, args.examples_per_file)


if __name__ == "__main__":
    main()
