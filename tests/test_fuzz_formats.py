"""Fuzzing the readers of files that come from a store (issue 12, item 2).

Valid example files and weights bundles are written with the project's own writers, then mutated by hypothesis:
truncations, flipped, inserted and deleted bytes, a wrong header length, and headers re-serialised with fields
of the wrong JSON type, huge or negative offsets and shapes, and manifests or state files with wrong fields.

For every mutation the reader must either reject it with FormatError, never through the catch-all net of
`safe_io.guard_format_errors` (so each rejection comes from a real check, with a real reason), or accept it only
where that is legitimate, in a few milliseconds either way. Precisely what "legitimate" means:

* example files: the SHA-256 in the manifest covers the tensors' names, dtypes, shapes and bytes, and the
  manifest's `format_version`, `examples`, `shapes` and `sha256` are checked against the tensors. An accepted
  file must therefore hold exactly the original tensors and those fields unchanged. The other manifest fields
  (`model_step`, `games`, `worker_id`, `created`, `settings`, `value_target`) are only type- and range-checked,
  not covered by the checksum, and fields the reader does not know are ignored: a mutation that turns one of
  those into another valid value (a flipped digit in `created`, a renamed `created`) loads, and the test
  allows exactly that. Header changes that keep the tensors (whitespace, padding, key order) load too.
* weights bundles: the state names the SHA-256 of the weights and optimizer files, so an accepted bundle must
  hold exactly the original weight and optimizer tensors; the state and config JSON carry no checksum and may
  load changed if they stay valid (the config is then checked against the model by `model_from_bundle`, which
  must also fail with FormatError only).

Then, end to end: a malformed example file in a local store is quarantined with its reason by the learner's
ingest, and the learner keeps training, pushes, and restarts cleanly.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import example_bytes
from zeb_core.formats.examples import (
    ExampleFile,
    decode_examples,
    example_filename,
)
from zeb_core.formats.safe_io import UNEXPECTED, FormatError, read_header
from zeb_core.formats.weights import (
    WeightsBundle,
    bundle_from_files,
    bundle_to_files,
    default_state,
)
from zeb_core.model.checkpoint import bundle_from_model, model_from_bundle
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet

SLOW_S = 1.0  # a generous bound for one read on a loaded 2-core machine; typical reads take about a millisecond
FUZZ = settings(
    max_examples=400,
    derandomize=True,  # the same cases on every run: a failure here is reproducible, never flaky
    database=None,
    deadline=None,  # timed by hand below, with a bound that tolerates a busy machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHECKED_MANIFEST = {"format_version", "examples", "shapes", "sha256"}  # the rest may change, or go, or come


# ------------------------------------------------------------------ valid files, from the project's own writers
def _example_file(n: int = 6, seed: int = 0) -> tuple[bytes, ExampleFile]:
    data, _ = example_bytes(n, seed, step=3, games=2)
    return data, decode_examples(data)


def _bundle_files() -> tuple[dict[str, bytes], WeightsBundle]:
    torch.manual_seed(0)
    model = ZebNet(ModelConfig.preset("small"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sum(p.sum() for p in model.parameters()).backward()
    opt.step()
    bundle = bundle_from_model(model, default_state(7, total_games=70), opt.state_dict())
    files = bundle_to_files(bundle)
    return files, bundle_from_files(files)


EXAMPLE, EXAMPLE_FILE = _example_file()
BUNDLE_FILES, BUNDLE = _bundle_files()


def _header_len(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


def _blob(header: Any, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


# ------------------------------------------------------------------ mutations
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 7, 8, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["F32", "I8", "BOOL", "U8", "F64", "", "f32", "zeb"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
BIG_INTS = st.one_of(st.integers(-(2**66), 2**66), st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64]))


def _byte_mutations(base: bytes, hot: int) -> st.SearchStrategy[bytes]:
    """Truncations, flips, insertions, deletions (half of them inside the first `hot` bytes: the header)."""
    n = len(base)
    pos = st.one_of(st.integers(0, min(hot, n) - 1), st.integers(0, n - 1))

    def flip(edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(base)
        for i, x in edits:
            out[i] ^= x
        return bytes(out)

    return st.one_of(
        st.integers(0, n - 1).map(lambda k: base[:k]),
        st.lists(st.tuples(pos, st.integers(1, 255)), min_size=1, max_size=4).map(flip),
        st.tuples(pos, st.binary(min_size=1, max_size=16)).map(lambda t: base[: t[0]] + t[1] + base[t[0] :]),
        st.tuples(pos, st.integers(1, 64)).map(lambda t: base[: t[0]] + base[t[0] + t[1] :]),
        st.one_of(BIG_INTS.filter(lambda v: 0 <= v < 2**64), st.integers(0, 2 * hot)).map(
            lambda v: struct.pack("<Q", v) + base[8:]
        ),
    )


@st.composite
def _header_mutation(draw: st.DrawFn, base: bytes, manifest_key: str | None) -> bytes:
    """The header re-serialised with one field changed (wrong types, huge or negative offsets and shapes, a
    missing or extra entry, a changed manifest field), the body kept, or cut short."""
    start = _header_len(base)
    header, body = json.loads(base[8:start]), base[start:]
    names = sorted(k for k in header if k != "__metadata__")
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["field", "offsets", "shape", "entry", "drop", "extra", "metadata", "manifest"]))
    entry = header[name]
    if kind == "field":
        entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(JSON_VALUES)
    elif kind == "offsets":
        entry["data_offsets"] = draw(st.one_of(st.lists(BIG_INTS, max_size=3), BIG_INTS))
    elif kind == "shape":
        entry["shape"] = draw(st.lists(BIG_INTS, max_size=10))
    elif kind == "entry":
        header[name] = draw(JSON_VALUES)
    elif kind == "drop":
        entry.pop(draw(st.sampled_from(["dtype", "shape", "data_offsets"])))
    elif kind == "extra":
        header[draw(st.text(min_size=1, max_size=8))] = {
            "dtype": draw(st.sampled_from(["F32", "I8", "BOOL"])),
            "shape": draw(st.lists(st.integers(0, 4), max_size=2)),
            "data_offsets": draw(st.lists(st.integers(0, len(body) + 8), min_size=2, max_size=2)),
        }
    elif kind == "metadata" or manifest_key is None:
        header["__metadata__"] = draw(JSON_VALUES)
    else:
        meta = header.setdefault("__metadata__", {})
        manifest = json.loads(meta[manifest_key])
        field = draw(st.sampled_from([*sorted(manifest), "new_field"]))
        if draw(st.booleans()):
            manifest[field] = draw(JSON_VALUES)
        else:
            manifest.pop(field, None)
        meta[manifest_key] = json.dumps(manifest)
    cut = draw(st.sampled_from([len(body), len(body), len(body), max(0, len(body) - 1), len(body) // 2]))
    return _blob(header, body[:cut])


def _timed(fn: Any, *args: Any) -> tuple[Any, FormatError | None]:
    """(result, None) or (None, the FormatError); anything else fails the test. Checks the time taken, in this
    thread's CPU time: a mutated header that makes the decoder work (or allocate and fill) shows there, while a
    busy machine's waits for a core do not (wall time failed a loaded CI run: 2.0 s)."""
    start = time.thread_time()
    try:
        result, error = fn(*args), None
    except FormatError as exc:
        result, error = None, exc
    took = time.thread_time() - start
    assert took < SLOW_S, f"{fn.__name__} took {took:.2f}s on a mutated file"
    if error is not None:
        assert not str(error).startswith(UNEXPECTED), f"no check caught it; the net did: {error}"
        assert str(error), "a rejection needs a reason"
    return result, error


# ------------------------------------------------------------------ example files
def _check_example(data: bytes) -> None:
    parsed, error = _timed(decode_examples, data)
    if error is not None:
        return
    for key in ("obs", "legal", "policy", "value"):
        mine, theirs = getattr(parsed, key), getattr(EXAMPLE_FILE, key)
        assert mine.dtype == theirs.dtype and torch.equal(mine, theirs), f"a changed {key} tensor was accepted"
    changed = {
        k
        for k in parsed.manifest.keys() | EXAMPLE_FILE.manifest.keys()
        if parsed.manifest.get(k, "absent") != EXAMPLE_FILE.manifest.get(k, "absent")
    }
    assert not changed & CHECKED_MANIFEST, f"accepted with checked manifest fields changed: {sorted(changed)}"


@settings(FUZZ, max_examples=1500)
@given(data=_byte_mutations(EXAMPLE, _header_len(EXAMPLE)))
def test_example_files_with_damaged_bytes(data: bytes) -> None:
    _check_example(data)


@settings(FUZZ, max_examples=1000)
@given(data=_header_mutation(EXAMPLE, "zeb"))
def test_example_files_with_hostile_headers(data: bytes) -> None:
    _check_example(data)


# ------------------------------------------------------------------ weights bundles
WEIGHTS, OPTIMIZER = "model.safetensors", "model-optimizer.safetensors"
STATE, CONFIG = "model-state.json", "model-config.json"


def _check_bundle(files: dict[str, bytes]) -> None:
    bundle, error = _timed(bundle_from_files, files)
    if error is not None:
        return
    assert bundle.tensors.keys() == BUNDLE.tensors.keys()
    for key, tensor in BUNDLE.tensors.items():
        assert bundle.tensors[key].dtype == tensor.dtype and torch.equal(bundle.tensors[key], tensor), key
    assert bundle.optimizer is not None and BUNDLE.optimizer is not None
    assert bundle.optimizer["state"].keys() == BUNDLE.optimizer["state"].keys()
    for pid, pstate in BUNDLE.optimizer["state"].items():
        for key, value in pstate.items():
            got = bundle.optimizer["state"][pid][key]
            assert torch.equal(got, value) if torch.is_tensor(value) else got == value, f"optimizer {pid}.{key}"
    assert bundle.optimizer["param_groups"] == BUNDLE.optimizer["param_groups"]
    _timed(model_from_bundle, bundle)  # the learner's next step: a bad config is a FormatError too


def _json_mutation(base: bytes) -> st.SearchStrategy[bytes]:
    doc = json.loads(base)

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        value = dict(doc)
        key = draw(st.sampled_from([*sorted(value), "extra"]))
        if draw(st.booleans()):
            value[key] = draw(JSON_VALUES)
        else:
            value.pop(key, None)
        return json.dumps(value).encode()

    return st.one_of(mutate(), _byte_mutations(base, len(base)), st.just(b"[" * 100_000), st.just(b"1" + b"0" * 5000))


@FUZZ
@given(which=st.sampled_from([WEIGHTS, OPTIMIZER]), data=st.data())
def test_weights_bundles_with_damaged_tensor_files(which: str, data: st.DataObject) -> None:
    base = BUNDLE_FILES[which]
    mutated = data.draw(st.one_of(_byte_mutations(base, _header_len(base)), _header_mutation(base, None)))
    _check_bundle({**BUNDLE_FILES, which: mutated})


@FUZZ
@given(which=st.sampled_from([STATE, CONFIG]), data=st.data())
def test_weights_bundles_with_damaged_json(which: str, data: st.DataObject) -> None:
    _check_bundle({**BUNDLE_FILES, which: data.draw(_json_mutation(BUNDLE_FILES[which]))})


@pytest.mark.parametrize(
    "offsets", [[0, 4, 8], 5, None, [-4, 0], [0, 2**64], [True, 4], [0.0, 4.0], [8, 4], "0-4", {"start": 0}]
)
def test_the_offsets_of_the_issue_are_format_errors(offsets: Any) -> None:
    """The cases of the report, one by one: every one a FormatError that says which tensor and why."""
    start = _header_len(EXAMPLE)
    header = json.loads(EXAMPLE[8:start])
    header["obs"]["data_offsets"] = offsets
    with pytest.raises(FormatError, match="tensor 'obs'"):
        read_header(_blob(header, EXAMPLE[start:]))
    with pytest.raises(FormatError, match="tensor 'obs'"):
        decode_examples(_blob(header, EXAMPLE[start:]))


def test_the_unmutated_files_load() -> None:
    """The oracle's baseline: what the writers wrote reads back (else every case above would pass vacuously)."""
    _check_example(EXAMPLE)
    _check_bundle(BUNDLE_FILES)
    assert decode_examples(EXAMPLE).examples == 6


# ------------------------------------------------------------------ end to end: the learner's ingest
def _learner_settings(url: str) -> Any:
    from zeb_core.learn.learner import LearnerSettings

    return LearnerSettings(
        store=url,
        size="small",
        min_buffer_size=50,
        training_steps_per_cycle=2,
        batch_size=16,
        replay_buffer_size=5_000,
        eval_games=10,
        device="cpu",
        promote=False,
        learner_id="fuzz",
    )


def _malformed(offsets: Any) -> bytes:
    data, _ = _example_file(20, seed=5)
    start = _header_len(data)
    header = json.loads(data[8:start])
    header["value"]["data_offsets"] = offsets
    return _blob(header, data[start:])


def test_the_learner_quarantines_a_malformed_file_and_keeps_going(tmp_path: Path) -> None:
    from zeb_core.learn.learner import Learner
    from zeb_core.store import open_store
    from zeb_core.store.store import QUARANTINE

    torch.set_num_threads(1)
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    lrn = Learner(_learner_settings(url))
    lrn.start()
    good, parsed = _example_file(80, seed=1)
    store.upload_examples(good, parsed.manifest)
    bad = {
        example_filename("evil", "ab" * 32): _malformed([0, 4, 8]),
        example_filename("evil", "cd" * 32): _malformed(5),
    }
    for path, data in bad.items():
        store.examples.commit({path: data}, message="a malformed upload")

    out = lrn.ingest()  # before the fix: ValueError / TypeError, at this ingest and at every restart
    assert out == {"files": 1, "examples": 80}
    assert lrn.files_quarantined == 2
    assert {q.path for q in store.list_quarantine()} == {QUARANTINE + p for p in bad}
    for path, data in bad.items():
        reason = json.loads(store.examples.read(QUARANTINE + path + ".reason.json"))
        assert reason["path"] == path and "tensor 'value': data offsets" in reason["reason"], reason
        assert store.examples.read(QUARANTINE + path) == data  # kept as it was, for a look
    assert lrn.train() is not None  # it trains on the good file
    assert lrn.push()
    step = lrn.step
    lrn.close()

    # The store's copy of an ingested file goes bad while the learner is down: the restart quarantines it too.
    ingested = store.list_examples()[0]
    store.examples.commit({ingested.path: _malformed("0-4")}, message="bit rot")
    again = Learner(_learner_settings(url))
    again.start()
    assert again.step == step and again.files_quarantined == 2
    assert QUARANTINE + ingested.path in {q.path for q in store.list_quarantine()}
    assert again.ingest() == {"files": 0, "examples": 0}
    assert store.list_examples() == []
    again.close(push=False)
