"""W&B beyond scalars (issue 37): evaluation tables, the training curve as an image, and promoted models as
artifacts that reference the store's files, read back from the offline run's own .wandb file and media files.

One offline W&B run for the module (its start costs about a second): a real learner on a local store evaluates
twice and promotes once; the same promotion pushed to the test Hub and to the moto S3 server is recorded too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from tests.helpers import example_bytes
from tests.hf_hub_server import HfHubServer, hf_hub_server
from tests.s3_server import S3_ENV_UNSET, s3_env, s3_server
from zeb_core.evaluation.strength import BASELINES
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.ops.wandb_log import ALL_EVALS_KEY, CURVE_KEY, EVAL_COLUMNS, EVAL_TABLE_KEY, WandbLogger
from zeb_core.store import Store, open_store
from zeb_core.store.hf import HfBackend
from zeb_core.store.s3 import S3Backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

EVAL_GAMES = 5  # asked for; a team-symmetric match plays 6, and the table must say what was played


# ------------------------------------------------------------------ reading an offline run back
def wandb_records(data: bytes) -> list[Any]:
    """The protobuf records of a .wandb run file: W&B's transaction log, in LevelDB's log format (32 KiB blocks of
    checksummed FULL/FIRST/MIDDLE/LAST chunks after a 7-byte ':W&B' header), each a wandb_internal_pb2.Record.
    A chunk cut off at the end of `data` (a file still being written) ends the records read."""
    from wandb.proto import wandb_internal_pb2

    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), "not a W&B transaction log"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's trailer too short for a chunk header is padding
            pos += block - pos % block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if (crc, length, kind) == (0, 0, 0):
            pos += block - pos % block
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        if len(chunk) < length:
            break
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, f"corrupt chunk at {pos}"
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def kinds(records: list[Any]) -> list[str]:
    return [r.WhichOneof("record_type") for r in records]


def finished_run_records(path: Path, timeout_s: float = 120.0) -> list[Any]:
    """The records of a finished run's file, once W&B has written them all. `run.finish()` returns before that: W&B's
    service process writes the file in a writer of its own and closes it when told the run ended, by a message
    finish does not wait on. Under load the file held 18 of the run's 29 records when finish returned (all of them
    some 60 ms later); read at once, the tests found no history rows and no hub-best artifact. The run is all on
    disk once its exit record, the last it writes, is there (records are written in order)."""
    deadline = time.monotonic() + timeout_s
    while "exit" not in kinds(records := wandb_records(path.read_bytes())):
        assert time.monotonic() < deadline, f"{path} has no exit record {timeout_s}s after finish: {kinds(records)}"
        time.sleep(0.05)  # polling the file: the service process offers no other signal of its write
    return records


def history_rows(records: list[Any]) -> list[dict[str, Any]]:
    """Each history row as a nested dict of its JSON values."""
    rows = []
    for r in records:
        if r.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in r.history.item:
            keys = list(item.nested_key) or [item.key]
            at = row
            for k in keys[:-1]:
                at = at.setdefault(k, {})
            at[keys[-1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


def model_artifacts(records: list[Any]) -> dict[str, Any]:
    """The logged artifacts of type model, by name."""
    arts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "model"]
    assert len({a.name for a in arts}) == len(arts), "one artifact per promoted namespace here"
    return {a.name: a for a in arts}


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 4), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ the module's one run
@dataclass
class Logged:
    run_dir: Path
    wandb_dirs: list[Path]
    records: list[Any]
    rows: list[dict[str, Any]]
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, the learner's last_eval)
    local: Store | None = None
    local_total_games: int = 0
    uris: dict[str, str | None] = field(default_factory=dict)
    hub: HfHubServer | None = None
    hub_store: Store | None = None
    s3_store: Store | None = None
    s3_client: Any = None
    curve: bytes = b""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    import wandb

    tmp = tmp_path_factory.mktemp("wandb")
    wandb_dirs = [tmp / d for d in ("run", "data", "cache", "config", "artifacts")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one_torch_thread (conftest.py), which a module's fixture runs before
    with pytest.MonkeyPatch.context() as mp, hf_hub_server() as hub, s3_server() as s3_endpoint:
        mp.setenv("WANDB_MODE", "offline")
        for var, d in zip(("DIR", "DATA_DIR", "CACHE_DIR", "CONFIG_DIR", "ARTIFACT_DIR"), wandb_dirs, strict=True):
            mp.setenv(f"WANDB_{var}", str(d))
        for var in S3_ENV_UNSET:
            mp.delenv(var, raising=False)
        for var, value in s3_env(s3_endpoint).items():
            mp.setenv(var, value)
        # W&B reads WANDB_* once per process (wandb.setup), and its service writes its own files where that says: a
        # session an earlier test started would write under that test's folders, out of the no-copy check's sight.
        wandb.teardown()

        url = f"file://{tmp / 'store'}"
        settings = LearnerSettings(
            store=url, name="local", size="small", min_buffer_size=50, training_steps_per_cycle=1, batch_size=16,
            replay_buffer_size=1000, eval_games=EVAL_GAMES, device="cpu", promote=True, learner_id="wandb-test",
        )  # fmt: skip
        lrn = Learner(settings)
        lrn.start()
        wb = WandbLogger("zeb-test", "wandb-log", settings.model_dump(), folder=wandb_dirs[0])
        assert wb.run is not None
        out = Logged(Path(wb.run.dir).parent, wandb_dirs, [], [], hub=hub)
        out.local = lrn.store

        # Evaluation and first promotion at step 0, then a trained step 1 whose evaluation promotes nothing.
        lrn.evaluate()
        assert lrn.maybe_promote() is not None
        out.local_total_games = lrn.total_games
        out.evaluations.append((0, dict(lrn.last_eval)))
        wb.log_evaluation(lrn.last_eval, EVAL_GAMES, 0, model="local@0")
        out.uris["local"] = wb.log_promotion(lrn.store, "local", 0)
        lrn.record({"step": 0, **lrn.last_eval})
        data, manifest = example_bytes(60, seed=1)
        lrn.store.upload_examples(data, manifest, "local")
        lrn.ingest()
        metrics = lrn.train()
        assert metrics is not None and lrn.step == 1
        lrn.evaluate()
        out.evaluations.append((1, dict(lrn.last_eval)))
        wb.log_evaluation(lrn.last_eval, EVAL_GAMES, 1, model="local@1")
        out.uris["local@1"] = wb.log_promotion(lrn.store, "local", 1)
        lrn.record({"step": 1, **metrics, **lrn.last_eval})
        wb.log({k: v for k, v in metrics.items() if isinstance(v, float)}, step=1)

        # The same promoted bundle pushed to a Hub store and an S3 store, each under its own namespace.
        best = lrn.store.pull_weights("local", "best")
        assert best is not None
        hub_backend = HfBackend(f"tester/w{uuid.uuid4().hex[:8]}", endpoint=hub.endpoint, token=hub.token)
        out.hub_store = Store(hub_backend, hub_backend)
        out.hub_store.ensure()
        out.hub_store.promote(best, "hub")
        out.uris["hub"] = wb.log_promotion(out.hub_store, "hub", 0)
        out.s3_store = open_store(f"s3://zeb-{uuid.uuid4().hex[:10]}/runs/x")
        out.s3_store.ensure()
        out.s3_store.promote(best, "bucket")
        out.uris["bucket"] = wb.log_promotion(out.s3_store, "bucket", 0)
        assert isinstance(out.s3_store.weights, S3Backend)
        out.s3_client = out.s3_store.weights.client

        out.curve = png_bytes()  # what zeb_core.ops.curves draws (matplotlib's import alone takes seconds here)
        wb.log_image(CURVE_KEY, out.curve, lrn.step, caption="training curve")
        lrn.close()
        wb.finish()
        (run_file,) = out.run_dir.glob("run-*.wandb")
        out.records = finished_run_records(run_file)
        wandb.teardown()  # and later tests get a session of their own environment, not of these folders
        out.rows = history_rows(out.records)
        torch.set_num_threads(threads)
        yield out


def table_rows(logged: Logged, key: str) -> list[tuple[int, list[list[Any]]]]:
    """(step, rows) of each table logged under `key`, read from the run's media file it names."""
    found = []
    for row in logged.rows:
        if key in row:
            ref = row[key]
            assert ref["_type"] == "table-file"
            table = json.loads((logged.run_dir / "files" / ref["path"]).read_text())
            assert table["columns"] == list(EVAL_COLUMNS)
            found.append((row["_step"], table["data"]))
    assert found, f"no {key} in the run's history rows {[sorted(r) for r in logged.rows]} ({kinds(logged.records)})"
    return found


def expected_rows(step: int, evaluation: dict[str, float]) -> list[list[Any]]:
    """The rows the learner's evaluation at `step` should give, straight from its eval/vs_* keys."""
    rates = {opp: [evaluation[f"eval/vs_{opp}_{w}"] for w in ("win_rate", "ci_low", "ci_high")] for opp in BASELINES}
    assert all(evaluation[f"eval/vs_{opp}_games"] == EVAL_GAMES + 1 for opp in BASELINES)
    return [[opp, EVAL_GAMES + 1, *rates[opp], step, f"local@{step}"] for opp in BASELINES]


# ------------------------------------------------------------------ tests
def test_each_evaluation_is_a_table_of_the_learners_results(logged: Logged) -> None:
    assert [step for step, _ in logged.evaluations] == [0, 1]
    expected = [(step, expected_rows(step, ev)) for step, ev in logged.evaluations]
    assert table_rows(logged, EVAL_TABLE_KEY) == expected
    assert expected[0][1] != expected[1][1]
    # The whole run's evaluations, once, at the end.
    assert table_rows(logged, ALL_EVALS_KEY) == [(1, expected[0][1] + expected[1][1])]


def test_the_training_curve_is_an_image_of_the_png_drawn(logged: Logged) -> None:
    images = [row[CURVE_KEY] for row in logged.rows if CURVE_KEY in row]
    assert len(images) == 1 and images[0]["_type"] == "image-file"
    assert (logged.run_dir / "files" / images[0]["path"]).read_bytes() == logged.curve
    assert logged.curve[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_local_promotion_is_an_artifact_referencing_the_store_file_without_a_copy(logged: Logged) -> None:
    arts = model_artifacts(logged.records)
    assert sorted(arts) == ["bucket-best", "hub-best", "local-best"]  # nothing for step 1, which promoted nothing
    assert logged.uris["local@1"] is None
    art = arts["local-best"]
    store = logged.local
    assert store is not None
    (push,) = store.history("local", "best")
    entries = {e.path: e for e in art.manifest.contents}
    assert sorted(entries) == ["local-best-config.json", "local-best-state.json", "local-best.safetensors"]
    root = Path(store.url.removeprefix("file://"))
    weights = store.weights.read("local-best.safetensors", push.revision)
    for path, entry in entries.items():
        copy = root / ".history" / push.revision / path  # the promotion's own copy: the live file changes later
        assert entry.ref == copy.as_uri() and copy.read_bytes() == store.weights.read(path, push.revision)
        assert entry.digest == base64.b64encode(hashlib.md5(copy.read_bytes()).digest()).decode()
        assert entry.size == copy.stat().st_size and not entry.local_path  # a reference: nothing staged to upload
    assert logged.uris["local"] == entries["local-best.safetensors"].ref
    metadata = json.loads(art.metadata)
    assert metadata["step"] == 0 and metadata["games"] == logged.local_total_games
    assert metadata["evaluation"] == logged.evaluations[0][1] and metadata["promotion"]["decision"] == "first"
    assert metadata["revision"] == push.revision and metadata["namespace"] == "local"
    assert "step-0" in art.aliases
    # No second copy of the weights anywhere W&B writes.
    for d in logged.wandb_dirs:
        for f in d.rglob("*"):
            assert not (f.is_file() and f.stat().st_size == len(weights) and f.read_bytes() == weights), f


def test_a_hub_promotion_references_the_file_at_its_commit(logged: Logged) -> None:
    store, hub = logged.hub_store, logged.hub
    assert store is not None and hub is not None
    backend = store.weights
    assert isinstance(backend, HfBackend)
    sha = hub.commits(backend.repo_id)[-1].id
    (push,) = store.history("hub", "best")
    assert push.revision == sha
    entries = {e.path: e for e in model_artifacts(logged.records)["hub-best"].manifest.contents}
    ref = entries["hub-best.safetensors"].ref
    assert ref == f"{hub.endpoint}/{backend.repo_id}/resolve/{sha}/hub-best.safetensors" == logged.uris["hub"]
    assert entries["hub-best.safetensors"].digest == ref and not entries["hub-best.safetensors"].local_path
    got = httpx.get(ref, headers={"Authorization": f"Bearer {hub.token}"}, follow_redirects=True)
    assert got.status_code == 200 and got.content == hub.files(backend.repo_id, revision=sha)["hub-best.safetensors"]
    assert json.loads(model_artifacts(logged.records)["hub-best"].metadata)["revision"] == sha


def test_an_s3_promotion_references_the_object_of_its_revision(logged: Logged) -> None:
    store = logged.s3_store
    assert store is not None and isinstance(store.weights, S3Backend)
    (push,) = store.history("bucket", "best")
    entries = {e.path: e for e in model_artifacts(logged.records)["bucket-best"].manifest.contents}
    bucket = store.weights.bucket
    ref = entries["bucket-best.safetensors"].ref
    assert ref == f"s3://{bucket}/{store.weights.prefix}/.history/{push.revision}/bucket-best.safetensors"
    assert ref == logged.uris["bucket"] and store.weights.prefix.startswith("runs/x")
    obj = logged.s3_client.get_object(Bucket=bucket, Key=ref.removeprefix(f"s3://{bucket}/"))
    assert obj["Body"].read() == store.weights.read("bucket-best.safetensors", push.revision)
    assert not entries["bucket-best.safetensors"].local_path


def test_a_wandb_failure_turns_logging_off_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("DIR", "DATA_DIR", "CACHE_DIR", "CONFIG_DIR", "ARTIFACT_DIR"):
        monkeypatch.setenv(f"WANDB_{var}", str(tmp_path / var.lower()))
    wb = WandbLogger("zeb-test", "failing", {}, folder=tmp_path / "dir")
    assert wb.run is not None
    wb.run.finish()  # behind the logger's back: every later call into the run raises
    evaluation = {"eval/vs_random_win_rate": 0.9, "eval/vs_random_ci_low": 0.8, "eval/vs_random_ci_high": 0.95}
    with caplog.at_level(logging.WARNING, logger="zeb.wandb"):
        wb.log_evaluation(evaluation, 10, 3, model="m@3")
    assert wb.run is None and "evaluation table failed, turning it off" in caplog.text
    assert wb.eval_rows == [["random", 10, 0.9, 0.8, 0.95, 3, "m@3"]]
    wb.log_image(CURVE_KEY, b"\x89PNG", 3)
    wb.log({"x": 1.0}, 3)
    assert wb.log_promotion(open_store(f"file://{tmp_path / 'store'}"), "model", 3) is None
    wb.finish()
