"""One contract, three backends: a local folder, S3 (moto's real S3 server on 127.0.0.1) and the Hub (our
test-only Hub server on 127.0.0.1, spoken to by huggingface_hub itself). Every test here runs on all three."""

from __future__ import annotations

import logging
import pickle
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from tests import helpers
from zeb_core.formats.examples import example_filename
from zeb_core.formats.weights import default_state
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.store import ExampleCursor, FaultyBackend, LeaseHeld, RetryPolicy, Store, StoreError, open_store
from zeb_core.store.backend import Backend

BACKENDS = ("local", "s3", "hf")


def make_backends(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Backend, Backend]:
    unique = uuid.uuid4().hex[:8]
    if kind == "local":
        from zeb_core.store.local import LocalBackend

        return LocalBackend(tmp_path / "weights"), LocalBackend(tmp_path / "examples")
    if kind == "s3":
        from s3_server import s3_env

        from zeb_core.store.s3 import S3Backend

        endpoint = request.getfixturevalue("s3_endpoint")
        mp = request.getfixturevalue("monkeypatch")
        for key, value in s3_env(endpoint).items():
            mp.setenv(key, value)
        return S3Backend("zeb-test", f"{unique}/weights"), S3Backend("zeb-test", f"{unique}/examples")
    from zeb_core.store.hf import HfBackend

    hub = request.getfixturevalue("hub")
    weights = HfBackend(f"tester/w{unique}", endpoint=hub.endpoint, token=hub.token)
    examples = HfBackend(f"tester/w{unique}-examples", repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    return weights, examples


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    weights, examples = make_backends(request.param, request, tmp_path)
    s = Store(weights, examples, RetryPolicy.fast())
    s.ensure()
    return s


def small_bundle(step: int, seed: int = 0, with_optimizer: bool = True):
    torch.manual_seed(seed)
    model = ZebNet(ModelConfig.preset("small"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if with_optimizer:
        loss = sum(p.sum() for p in model.parameters())
        loss.backward()
        opt.step()
    return bundle_from_model(
        model, default_state(step, total_games=10 * step), opt.state_dict() if with_optimizer else None
    )


def example_bytes(n: int = 12, seed: int = 0, worker: str = "w1", step: int = 0) -> tuple[bytes, dict]:
    return helpers.example_bytes(n, seed, worker, step, games=n // 6 + 1)


# ------------------------------------------------------------------ weights
def test_push_pull_roundtrip(store: Store) -> None:
    assert store.pull_weights() is None and store.latest_step() is None
    bundle = small_bundle(5)
    store.push_weights(bundle, message="first")
    pulled = store.pull_weights()
    assert pulled is not None and pulled.step == 5 and store.latest_step() == 5
    for key, tensor in bundle.tensors.items():
        assert torch.equal(pulled.tensors[key], tensor)
    assert pulled.optimizer is not None
    assert set(pulled.optimizer["state"]) == set(bundle.optimizer["state"])
    assert store.pull_weights(unless_sha=pulled.state["weights_sha256"]) is None  # only when newer


def test_best_is_separate_from_latest(store: Store) -> None:
    store.push_weights(small_bundle(3))
    store.promote(small_bundle(2, seed=1))
    assert store.latest_step() == 3 and store.latest_step(which="best") == 2
    latest, best = store.pull_weights().tensors, store.pull_weights(which="best").tensors
    assert any(not torch.equal(latest[k], best[k]) for k in latest)


def test_namespaces_do_not_mix(store: Store) -> None:
    store.push_weights(small_bundle(1), name="alpha")
    store.push_weights(small_bundle(9), name="beta")
    assert store.latest_step("alpha") == 1 and store.latest_step("beta") == 9 and store.latest_step() is None
    with pytest.raises(StoreError, match="namespace"):
        store.push_weights(small_bundle(1), name="../escape")


def test_history_and_revert(store: Store) -> None:
    first = small_bundle(1, seed=1)
    store.push_weights(first)
    store.push_weights(small_bundle(2, seed=2))
    store.push_weights(small_bundle(3, seed=3))
    assert [p.step for p in store.history()] == [3, 2, 1]
    target, _ = store.revert("model", "step:1", reason="loss blew up")
    assert target.step == 1
    now = store.pull_weights()
    assert (
        now.step == 1 and now.state["reverted_from"] == target.revision and now.state["revert_reason"] == "loss blew up"
    )
    for key, tensor in first.tensors.items():
        assert torch.equal(now.tensors[key], tensor)
    assert [p.step for p in store.history()][:2] == [1, 3]
    with pytest.raises(StoreError, match="no push"):
        store.revert("model", "step:42")


def test_reader_never_sees_a_torn_push(store: Store) -> None:
    """Pushes race with pulls; every bundle a pull returns is self-consistent (state checksums match)."""
    bundles = [small_bundle(s, seed=s) for s in range(1, 4)]
    store.push_weights(bundles[0])
    errors: list[Exception] = []

    def pusher() -> None:
        try:
            for b in bundles[1:] * 2:
                store.push_weights(b)
        except Exception as exc:  # noqa: BLE001 - any error in the pusher fails the test below
            errors.append(exc)

    t = threading.Thread(target=pusher)
    t.start()
    seen = set()
    while t.is_alive():
        pulled = store.pull_weights()
        expected = bundles[pulled.step - 1]
        assert all(torch.equal(pulled.tensors[k], v) for k, v in expected.tensors.items())
        seen.add(pulled.step)
    t.join()
    assert not errors and seen


# ------------------------------------------------------------------ examples
def test_examples_roundtrip_dedup_and_cursor(store: Store) -> None:
    data, manifest = example_bytes(seed=1)
    path = store.upload_examples(data, manifest)
    assert store.upload_examples(data, manifest) == path  # same content stored once
    assert len(store.list_examples()) == 1
    cursor = ExampleCursor()
    new, late = store.new_examples(cursor)
    assert [r.path for r in new] == [path] and late == []
    parsed = store.read_examples(new[0])
    assert parsed is not None and parsed.examples == 12 and parsed.manifest["worker_id"] == "w1"
    cursor.advance([r.name for r in new])
    cursor = ExampleCursor.from_json(cursor.to_json())  # survives the learner's state file
    assert store.new_examples(cursor) == ([], [])
    data2, manifest2 = example_bytes(seed=2, worker="w2")
    path2 = store.upload_examples(data2, manifest2)
    assert [r.path for r in store.new_examples(cursor)[0]] == [path2]


def test_a_fast_clock_hides_no_other_workers_files(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 item 3: one file stamped two hours ahead must not make every honest file "late"."""
    data, manifest = example_bytes(seed=30, worker="fast-w")
    fast = example_filename("fast-w", manifest["sha256"], now=time.time() + 7200)
    store.examples.commit({fast: data}, message="a worker whose clock runs two hours fast")
    cursor = ExampleCursor()
    with caplog.at_level(logging.WARNING, logger="zeb.store"):
        new, late = store.new_examples(cursor)
    assert [r.name for r in new] == [fast] and late == []
    skew = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert len(skew) == 1 and "'fast-w'" in skew[0] and "ahead" in skew[0]
    cursor.advance([r.name for r in new])
    cursor = ExampleCursor.from_json(cursor.to_json())  # through the learner's state file
    honest = store.upload_examples(*example_bytes(seed=31, worker="w1")).rsplit("/", 1)[-1]  # in an hour folder
    slow_data, slow_manifest = example_bytes(seed=32, worker="slow-w")
    slow = example_filename("slow-w", slow_manifest["sha256"], now=time.time() - 7200)
    store.examples.commit({slow: slow_data}, message="a worker whose clock runs two hours slow")
    assert sorted(r.name for r in store.new_examples(cursor)[0]) == sorted([honest, slow])


def test_example_namespaces(store: Store) -> None:
    data, manifest = example_bytes(seed=3)
    path = store.upload_examples(data, manifest, name="exp1")
    assert path.startswith("exp1/")
    assert store.list_examples() == [] and len(store.list_examples("exp1")) == 1


def read_by_learner(store: Store, names: list[str], step: int = 1) -> None:
    """Push a state whose cursor says the namespace's learner has read `names`."""
    bundle = small_bundle(step, with_optimizer=False)
    bundle.state = {**bundle.state, "cursor": ExampleCursor(set(names)).to_json()}
    store.push_weights(bundle)


def test_prune_keeps_newest(store: Store) -> None:
    paths = []
    for i in range(5):
        data, manifest = example_bytes(seed=10 + i)
        paths.append(store.upload_examples(data, manifest))
    read_by_learner(store, [r.name for r in store.list_examples()])
    report = store.prune_examples(keep=2)
    assert sorted(report.removed) == sorted(paths[:3]) and report.kept_unread == 0
    assert [r.path for r in store.list_examples()] == paths[3:]


def test_prune_never_removes_a_file_the_learner_has_not_read(store: Store) -> None:
    paths = []
    for i in range(4):
        data, manifest = example_bytes(seed=20 + i)
        paths.append(store.upload_examples(data, manifest))
    report = store.prune_examples(keep=0, max_age_s=0.0)  # no push yet: nobody has read anything
    assert report.removed == [] and (report.kept_unread, report.unread, report.before) == (4, 4, 4)
    refs = store.list_examples()
    read_by_learner(store, [r.name for r in refs[:2]])
    report = store.prune_examples(keep=0, max_age_s=0.0)
    assert sorted(report.removed) == sorted(r.path for r in refs[:2])
    assert (report.kept_unread, report.unread) == (2, 2)
    assert [r.path for r in store.list_examples()] == [r.path for r in refs[2:]]
    forced = store.prune_examples(keep=0, spare_unread=False)  # the operator's explicit override
    assert sorted(forced.removed) == sorted(r.path for r in refs[2:]) and store.list_examples() == []


def test_status(store: Store) -> None:
    store.push_weights(small_bundle(4))
    data, manifest = example_bytes(seed=5)
    store.upload_examples(data, manifest)
    status = store.status()
    assert status["step"] == 4 and status["example_files"] == 1 and status["example_bytes"] == len(data)
    assert status["quarantined"] == 0 and status["lease"] is None


# ------------------------------------------------------------------ lease
def test_one_learner_per_namespace(store: Store) -> None:
    first = store.acquire_lease(holder="learner-A", ttl_s=60)
    with pytest.raises(LeaseHeld, match="learner-A"):
        store.acquire_lease(holder="learner-B", ttl_s=60)
    other = store.acquire_lease(name="other", holder="learner-B", ttl_s=60)  # another namespace is free
    first.renew()
    first.release()
    second = store.acquire_lease(holder="learner-B", ttl_s=60)
    assert store.status()["lease"]["holder"] == "learner-B"
    second.release()
    other.release()


def test_a_restarted_learner_with_the_same_id_takes_its_lease_back_at_once(store: Store) -> None:
    store.acquire_lease(holder="host-train-run", ttl_s=600)  # killed -9: never renewed or released
    again = store.acquire_lease(holder="host-train-run", ttl_s=600)
    assert again.held and store.status()["lease"]["holder"] == "host-train-run"
    with pytest.raises(LeaseHeld, match="host-train-run"):
        store.acquire_lease(holder="someone-else", ttl_s=600)
    again.release()


def test_dead_learners_lease_expires(store: Store) -> None:
    store.acquire_lease(holder="dead-learner", ttl_s=0.01)  # never renewed or released
    import time

    time.sleep(0.05)
    lease = store.acquire_lease(holder="new-learner", ttl_s=60)
    assert lease.held


# ------------------------------------------------------------------ bad input
def _pickle_bomb(tmp: Path) -> bytes:
    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp / "pwned",))

    return pickle.dumps(Boom())


def bad_files(tmp: Path) -> dict[str, bytes]:
    good, manifest = example_bytes(seed=7)
    huge = struct.pack("<Q", 1 << 40) + b"{}"
    nan_obs = torch.zeros(2, 36, 8, dtype=torch.int8)
    import json

    from zeb_core.formats.safe_io import dump_safetensors

    legal = torch.ones(2, 7, dtype=torch.bool)
    tensors = {
        "obs": nan_obs,
        "legal": legal,
        "policy": torch.full((2, 7), 1 / 7),
        "value": torch.tensor([0.5, float("nan")]),
    }
    nan_manifest = {**manifest, "examples": 2}
    wrong_dtype = {**tensors, "value": torch.tensor([0.5, 0.1], dtype=torch.float64)}
    wrong_sum = {**tensors, "value": torch.tensor([0.5, 0.1]), "policy": torch.full((2, 7), 0.5)}
    from zeb_core.formats.examples import content_sha256

    def pack(t: dict) -> bytes:
        m = {
            **nan_manifest,
            "sha256": content_sha256({k: v for k, v in t.items()}) if t["value"].dtype == torch.float32 else "x",
        }
        return dump_safetensors(t, {"zeb": json.dumps(m)})

    wrong_checksum = dump_safetensors(
        {**tensors, "value": torch.tensor([0.5, 0.1])}, {"zeb": json.dumps({**nan_manifest, "sha256": "0" * 64})}
    )
    return {
        "truncated": good[: len(good) // 2],
        "wrong_dtype": pack(wrong_dtype),
        "nan": pack(tensors),
        "policy_not_normalised": pack(wrong_sum),
        "pickle": _pickle_bomb(tmp),
        "huge_header": huge,
        "wrong_checksum": wrong_checksum,
    }


@pytest.mark.parametrize(
    "kind", ["truncated", "wrong_dtype", "nan", "policy_not_normalised", "pickle", "huge_header", "wrong_checksum"]
)
def test_bad_example_files_are_quarantined(store: Store, kind: str, tmp_path: Path) -> None:
    data = bad_files(tmp_path)[kind]
    path = example_filename("evil", "deadbeef" * 8)
    store.examples.commit({path: data}, message="planted")
    good, manifest = example_bytes(seed=8)
    good_path = store.upload_examples(good, manifest)
    cursor = ExampleCursor()
    new, _ = store.new_examples(cursor)
    results = {r.path: store.read_examples(r) for r in new}
    assert results[path] is None and results[good_path] is not None
    assert not (tmp_path / "pwned").exists()  # nothing executed
    assert [r.path for r in store.list_examples()] == [good_path]
    assert any(f.path == f"quarantine/{path}" for f in store.list_quarantine())
    assert store.quarantined == 1


def test_corrupt_weights_are_refused_not_loaded(store: Store) -> None:
    store.push_weights(small_bundle(1))
    store.weights.commit({"model.safetensors": b"\x00" * 64}, message="vandal")
    with pytest.raises(StoreError, match="not valid"):
        store.pull_weights()


# ------------------------------------------------------------------ faults
def test_operations_survive_injected_faults(store: Store) -> None:
    faulty = Store(
        FaultyBackend(store.weights, 0.3, seed=1), FaultyBackend(store.examples, 0.3, seed=2), RetryPolicy.fast()
    )
    uploaded = set()
    for step in range(1, 4):
        faulty.push_weights(small_bundle(step, seed=step))
        data, manifest = example_bytes(seed=100 + step)
        uploaded.add(faulty.upload_examples(data, manifest))
    lease = faulty.acquire_lease(holder="flaky", ttl_s=60)
    lease.renew()
    assert faulty.latest_step() == 3 and faulty.pull_weights().step == 3
    assert {r.path for r in faulty.list_examples()} == uploaded and len(uploaded) == 3
    new, _ = faulty.new_examples(ExampleCursor())
    assert all(faulty.read_examples(r) is not None for r in new)
    assert faulty.quarantined == 0
    assert faulty.weights.injected > 0 and faulty.examples.injected > 0
    lease.release()


def test_outage_fails_with_a_clear_error(tmp_path: Path) -> None:
    from zeb_core.store.local import LocalBackend

    dead = FaultyBackend(LocalBackend(tmp_path / "w"), 0.999999, kinds=("500",))
    s = Store(dead, dead, RetryPolicy(attempts=3, initial_s=0.001, max_wait_s=0.002, deadline_s=1))
    with pytest.raises(StoreError, match="HTTP 500"):
        s.push_weights(small_bundle(1))


def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store(f"file://{tmp_path}/run")
    assert s.url == f"file://{tmp_path}/run/weights" and s.examples.url.endswith("/run/examples")
    assert open_store(tmp_path / "plain").url.endswith("/plain/weights")
    with pytest.raises(StoreError, match="unknown scheme"):
        open_store("ftp://x/y")
    with pytest.raises(StoreError, match="OWNER/REPO"):
        open_store("hf://just-a-name")
    faulty = open_store(f"file://{tmp_path}/f?faults=0.2")
    assert isinstance(faulty.weights, FaultyBackend) and faulty.weights.rate == 0.2
    assert isinstance(faulty.examples, FaultyBackend)
    split = open_store(f"file://{tmp_path}/w", examples_url=f"file://{tmp_path}/e?faults=0.3")
    assert not isinstance(split.weights, FaultyBackend)
    assert isinstance(split.examples, FaultyBackend) and split.examples.rate == 0.3
    for bad, message in (
        ("?faults=x", "faults must be"),
        ("?faults=1.5", "faults must be"),
        ("?fault=0.1", "unknown option"),
    ):
        with pytest.raises(StoreError, match=message):
            open_store(f"file://{tmp_path}/g{bad}")


def test_prune_history_keeps_newest_pushes(store: Store) -> None:
    for step in range(1, 6):
        store.push_weights(small_bundle(step, seed=step))
    store.promote(small_bundle(9, seed=9))
    dropped = store.prune_history(keep=2)
    if store.weights.url.startswith("hf://"):
        assert dropped == 0  # the Hub's git history is not rewritten
        return
    assert dropped == 3 and [p.step for p in store.history()] == [5, 4]
    assert [p.step for p in store.history(which="best")] == [9]
    assert store.pull_weights().step == 5 and store.revert("model", "step:4")[0].step == 4


# ------------------------------------------------------------------ pruning under wrong worker clocks (issue 35)
def upload_with_clock(store: Store, seed: int, worker: str, offset_s: float) -> str:
    """An example file as a worker whose clock is `offset_s` off uploads it (its name carries that clock)."""
    data, manifest = example_bytes(seed=seed, worker=worker)
    name = example_filename(worker, manifest["sha256"], now=time.time() + offset_s)
    store.examples.commit({name: data}, message=f"{worker}, clock {offset_s:+.0f}s")
    return name


def test_a_fast_clock_read_first_does_not_make_later_honest_files_read(store: Store) -> None:
    """A file stamped two hours ahead is read; every file uploaded after it (an honest worker's, a slow one's) is
    older by its stamp than the newest file read, and still unread: `unread_examples` lists it, no prune removes
    it, by count or by age, until the learner's cursor names it."""
    fast = upload_with_clock(store, 40, "fast-w", 2 * 3600)
    read_by_learner(store, [fast])
    honest = upload_with_clock(store, 41, "honest-w", 0.0)
    slow = upload_with_clock(store, 42, "slow-w", -2 * 3600)
    assert sorted(r.name for r in store.unread_examples()) == sorted([honest, slow])
    report = store.prune_examples(keep=0, max_age_s=0.0)
    assert report.removed == [fast] and (report.kept_unread, report.unread, report.before) == (2, 2, 3)
    assert sorted(r.name for r in store.list_examples()) == sorted([honest, slow])
    read_by_learner(store, [fast, honest, slow], step=2)  # now the learner has read them
    assert store.unread_examples() == []
    assert sorted(store.prune_examples(keep=0, max_age_s=0.0).removed) == sorted([honest, slow])


def test_a_slow_clock_file_arriving_after_newer_reads_is_kept_by_age_and_count(store: Store) -> None:
    """Files stamped in upload order are read; a worker whose clock runs two hours slow uploads after that: its
    file is the oldest by stamp, older than `max_age_s` and outside the newest `keep`, and unread, so it stays."""
    read = [upload_with_clock(store, 50 + i, "honest-w", i - 2.0) for i in range(2)]
    read_by_learner(store, read)
    slow = upload_with_clock(store, 52, "slow-w", -2 * 3600)
    fast = upload_with_clock(store, 53, "fast-w", 2 * 3600)
    assert sorted(r.name for r in store.unread_examples()) == sorted([slow, fast])
    report = store.prune_examples(keep=1, max_age_s=3600.0)
    assert sorted(report.removed) == sorted(read) and report.kept_unread == 1  # the slow file: old and not newest
    assert sorted(r.name for r in store.list_examples()) == sorted([slow, fast])


# ------------------------------------------------------------------ history pruning: promoted models, unrecorded copies
def test_prune_history_bounds_promoted_models_and_forgets_copies_a_kill_left_without_a_record(store: Store) -> None:
    """Issue 35: every promoted model was kept forever, and so was the copy of a push killed before its record."""
    store.push_weights(small_bundle(1))
    for step in range(2, 6):
        store.promote(small_bundle(step, seed=step, with_optimizer=False))
    dropped = store.prune_history(keep=5, keep_best=2)
    if not store.weights.history_copies:
        assert dropped == 0 and len(store.history(which="best")) == 4  # the Hub's git history is not rewritten
        return
    assert dropped == 2 and [p.step for p in store.history(which="best")] == [5, 4]
    assert store.pull_weights(which="best").step == 5 and [p.step for p in store.history()] == [1]
    # Copies a push wrote before a kill, with no record: forgotten once too old to be a push still writing.
    from zeb_core.store.history import CopyHistory, new_revision_id

    copies = store.weights
    assert isinstance(copies, CopyHistory)  # local or S3
    old, fresh = f"{time.time_ns() - 2 * 3600 * 10**9:020d}-0000dead", new_revision_id()
    for rev in (old, fresh):
        copies._put_copy(rev, "model.safetensors", b"half a push")
    assert store.prune_history() == 1
    assert fresh in copies._revision_ids() and old not in copies._revision_ids()
    assert store.prune_history(now=time.time() + 2 * 3600) == 1 and fresh not in copies._revision_ids()
    assert [p.step for p in store.history()] == [1] and store.pull_weights().step == 1


def test_a_push_cut_short_between_its_live_files_is_read_from_its_copy_and_finished_by_heal(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 35: what a kill after a push's live weights leaves (the state is the push before's) is read from the
    push's history copy where history is copies, and `heal` writes it whole again."""
    store.push_weights(small_bundle(1))
    store.push_weights(small_bundle(2, seed=2))
    newest, older = store.history(limit=2)
    store.weights.commit({"model-state.json": store.weights.read("model-state.json", older.revision)})
    if not store.weights.history_copies:  # the Hub commits a push whole: a set like this is a bad push, refused
        with pytest.raises(StoreError, match="not valid"):
            store.pull_weights()
        assert store.heal("model") == []
        return
    with caplog.at_level(logging.WARNING, logger="zeb.store"):
        assert store.pull_weights().step == 2 and "cut short" in caplog.text
        assert [p.revision for p in store.heal("model")] == [newest.revision]
    assert store.peek_state()["step"] == 2 and store.pull_weights().step == 2 and store.heal("model") == []
