"""Issue 35 item 6: files are bounded before they are read, and configs before networks are built.

An outbox file another worker removes while this one lists the outbox is just not pending; an example file over
MAX_EXAMPLE_FILE_BYTES is quarantined unread with a reason naming its size and the limit, and the learner's
ingest goes on; a weights file over its limit is a clear error; a config of billions of parameters is refused;
and weights that do not fit their config are refused before any parameter of the network is allocated.

The oversized files are sparse (truncate), so they cost no disk; mmap gives bytes-like views of them that cost
no memory until touched.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import uuid
from pathlib import Path

import pytest
import torch
from hf_hub_server import HfHubServer
from torch.nn.modules.module import register_module_parameter_registration_hook

from tests.helpers import example_bytes
from tests.s3_server import S3_ENV_UNSET, s3_env
from zeb_core.formats.bid_examples import decode_bid_examples
from zeb_core.formats.examples import decode_examples, example_filename
from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES, FormatError
from zeb_core.formats.weights import (
    MAX_MODEL_PARAMETERS,
    MAX_WEIGHTS_FILE_BYTES,
    bundle_from_files,
    bundle_to_files,
    load_bundle_dir,
    weights_filenames,
)
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.model import PRESETS, ModelConfig, ZebNet, bundle_from_model, model_from_bundle
from zeb_core.selfplay.outbox import Outbox
from zeb_core.store import Store, open_store
from zeb_core.store.backend import StoreError, TooLarge
from zeb_core.store.hf import HfBackend
from zeb_core.store.s3 import S3Backend
from zeb_core.store.store import QUARANTINE

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def sparse(path: Path, size: int) -> Path:
    """A file of `size` zero bytes that takes no disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def mapped(path: Path) -> mmap.mmap:
    """A read-only bytes-like view of a (sparse) file: its length is the file's, its pages load only if touched."""
    with open(path, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def limit_words(limit: int) -> str:
    return f"over the limit of {limit:,} bytes"


# ------------------------------------------------------------------ outbox
def test_outbox_pending_survives_files_removed_while_it_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker on the host uploads and removes outbox files at any moment: one is gone before this worker
    first looks at it, another right after its first look (the old exists-then-stat crashed on that one)."""
    box = Outbox(tmp_path / "outbox")
    paths = {n: box.put(f"file {n}".encode(), f"{n:x}" * 64) for n in range(4)}
    for n, path in paths.items():
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    gone_first, gone_after = paths[1].name, paths[2].name
    looks: dict[str, int] = {}
    real_stat = Path.stat

    def racing_stat(self: Path, *, follow_symlinks: bool = True) -> os.stat_result:
        looks[self.name] = looks.get(self.name, 0) + 1
        if (self.name, looks[self.name]) in ((gone_first, 1), (gone_after, 2)):
            os.unlink(self)  # the other worker's `done()`, just now
        return real_stat(self, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(Path, "stat", racing_stat)
    pending = box.pending()
    monkeypatch.undo()
    assert gone_first not in {p.name for p in pending}
    assert [p for p in pending if p.name != gone_after] == [paths[0], paths[3]], "oldest first"
    assert not paths[1].exists()


def test_outbox_file_over_the_limit_is_set_aside_unread_with_its_reason(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox")
    big = sparse(box.folder / f"{'a' * 32}.examples.safetensors", MAX_EXAMPLE_FILE_BYTES + 1)
    assert box.pending() == [big]
    with box.claim(big) as mine:
        assert mine
        assert box.load(big) is None
    assert box.pending() == [] and big.with_suffix(".bad").stat().st_size == MAX_EXAMPLE_FILE_BYTES + 1
    reason = json.loads(big.with_suffix(".reason.json").read_text())["reason"]
    assert f"{MAX_EXAMPLE_FILE_BYTES + 1:,} bytes" in reason and limit_words(MAX_EXAMPLE_FILE_BYTES) in reason


# ------------------------------------------------------------------ example files
def test_decoders_refuse_example_bytes_over_the_limit_by_their_length(tmp_path: Path) -> None:
    """Bytes handed over directly (not through a store) are refused by their length before they are parsed."""
    view = mapped(sparse(tmp_path / "big.safetensors", MAX_EXAMPLE_FILE_BYTES + 1))
    try:
        for decode in (decode_examples, decode_bid_examples):
            with pytest.raises(FormatError, match=limit_words(MAX_EXAMPLE_FILE_BYTES)):
                decode(view)  # type: ignore[arg-type]  # bytes-like, as a store's bytes are
    finally:
        view.close()


def learner_settings(url: str) -> LearnerSettings:
    return LearnerSettings(
        store=url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=1,
        batch_size=32,
        replay_buffer_size=5_000,
        device="cpu",
        promote=False,
        learner_id="bounds-learner",
    )


def test_oversized_example_file_is_quarantined_unread_and_the_learner_ingests_on(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    learner = Learner(learner_settings(url))
    learner.start()
    try:
        data, manifest = example_bytes(40, seed=1)
        good = store.upload_examples(data, manifest)
        name = example_filename("w-huge", "0123456789abcdef")
        big = sparse(Path(store.examples.root) / name, MAX_EXAMPLE_FILE_BYTES + 1)  # type: ignore[attr-defined]
        assert {r.path for r in store.list_examples()} == {good, name}

        assert learner.ingest() == {"files": 1, "examples": 40}
        assert learner.files_quarantined == 1 and learner.examples_ingested == 40
        assert not big.exists()
        moved = Path(store.examples.root) / QUARANTINE / name  # type: ignore[attr-defined]
        assert moved.stat().st_size == MAX_EXAMPLE_FILE_BYTES + 1, "moved whole, not rewritten"
        assert [f.path for f in store.list_quarantine()] == [QUARANTINE + name]
        note = json.loads(moved.with_name(name + ".reason.json").read_text())
        assert note["path"] == name
        assert f"{MAX_EXAMPLE_FILE_BYTES + 1:,} bytes" in note["reason"]
        assert limit_words(MAX_EXAMPLE_FILE_BYTES) in note["reason"]
        assert learner.ingest() == {"files": 0, "examples": 0} and learner.files_quarantined == 1
    finally:
        learner.close(push=False)


def test_example_file_grown_after_the_listing_is_refused_by_the_read_itself(tmp_path: Path) -> None:
    """The listing's size is checked first; a file replaced by a larger one after it is caught by the backend."""
    store = open_store(f"file://{tmp_path / 'store'}")
    store.ensure()
    data, manifest = example_bytes(10, seed=2)
    path = store.upload_examples(data, manifest)
    (ref,) = store.list_examples()
    sparse(Path(store.examples.root) / path, MAX_EXAMPLE_FILE_BYTES + 7)  # type: ignore[attr-defined]
    assert store.read_examples(ref) is None and store.quarantined == 1
    note = store.examples.read(QUARANTINE + path + ".reason.json")
    assert limit_words(MAX_EXAMPLE_FILE_BYTES) in json.loads(note)["reason"]


# ------------------------------------------------------------------ S3 and the Hub: the reads' own bound
def test_s3_read_is_refused_by_its_length_and_quarantine_moves_server_side(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in S3_ENV_UNSET:
        monkeypatch.delenv(var, raising=False)
    for var, value in s3_env(s3_endpoint).items():
        monkeypatch.setenv(var, value)
    backend = S3Backend(f"zeb-{uuid.uuid4().hex[:12]}", "runs")
    backend.create()
    data, manifest = example_bytes(10, seed=3)
    store = Store(backend, backend)
    path = store.upload_examples(data, manifest)
    with pytest.raises(TooLarge, match=f"{len(data):,} bytes, {limit_words(len(data) - 1)}"):
        backend.read(path, max_bytes=len(data) - 1)
    assert backend.read(path, max_bytes=len(data)) == data

    store.quarantine(path, None, "too large (test)")  # what read_examples does with a file it will not read
    assert store.list_examples() == []
    assert backend.read(QUARANTINE + path) == data
    assert json.loads(backend.read(QUARANTINE + path + ".reason.json"))["reason"] == "too large (test)"
    assert backend.move(path, QUARANTINE + path), "a retried move finds it done"


def test_hub_read_is_refused_by_its_length(clean_hub: HfHubServer) -> None:
    hub = clean_hub
    backend = HfBackend(f"tester/r{uuid.uuid4().hex[:10]}", endpoint=hub.endpoint, token=hub.token)
    backend.create()
    lfs, small = b"\x07" * 5000, b'{"step": 1}'
    backend.commit({"w/model.safetensors": lfs, "w/state.json": small})
    for path, data in (("w/model.safetensors", lfs), ("w/state.json", small)):
        with pytest.raises(TooLarge, match=limit_words(len(data) - 1)):
            backend.read(path, max_bytes=len(data) - 1)
        assert backend.read(path, max_bytes=len(data)) == backend.read(path) == data


# ------------------------------------------------------------------ weights
def small_bundle() -> dict[str, bytes]:
    torch.manual_seed(0)
    return bundle_to_files(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 3}))


def test_oversized_weights_file_in_a_store_is_a_clear_store_error(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    store.ensure()
    torch.manual_seed(0)
    store.push_weights(bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 3}))
    assert store.pull_weights() is not None
    weights = Path(store.weights.root) / weights_filenames("model")["weights"]  # type: ignore[attr-defined]
    sparse(weights, MAX_WEIGHTS_FILE_BYTES + 1)
    with pytest.raises(StoreError, match=limit_words(MAX_WEIGHTS_FILE_BYTES)):
        store.pull_weights()


def test_oversized_weights_file_in_a_checkpoint_or_in_memory_is_a_format_error(tmp_path: Path) -> None:
    files = small_bundle()
    fn = weights_filenames("model")
    folder = tmp_path / "ckpt"
    for fname, data in files.items():
        (folder / fname).parent.mkdir(parents=True, exist_ok=True)
        (folder / fname).write_bytes(data)
    assert load_bundle_dir(folder).step == 3
    sparse(folder / fn["weights"], MAX_WEIGHTS_FILE_BYTES + 1)
    with pytest.raises(FormatError, match=limit_words(MAX_WEIGHTS_FILE_BYTES)):
        load_bundle_dir(folder)
    view = mapped(folder / fn["weights"])
    try:
        with pytest.raises(FormatError, match=limit_words(MAX_WEIGHTS_FILE_BYTES)):
            bundle_from_files({**files, fn["weights"]: view})  # type: ignore[dict-item]  # bytes-like
    finally:
        view.close()


def test_config_of_billions_of_parameters_is_refused() -> None:
    giant = {"size": "custom", "d_model": 4096, "n_layers": 64, "n_heads": 64, "d_ff": 16384}
    with pytest.raises(FormatError, match=r"12,905,431,042 parameters, over the limit of 50,000,000"):
        ModelConfig.from_json_dict(giant)
    with pytest.raises(ValueError, match=f"over the limit of {MAX_MODEL_PARAMETERS:,}"):
        ModelConfig(**giant)  # type: ignore[arg-type]
    assert ModelConfig.preset("large").num_parameters() < MAX_MODEL_PARAMETERS


@pytest.mark.parametrize("dims", [*PRESETS.values(), (96, 3, 6, 160)])
def test_config_tensor_shapes_are_the_networks(dims: tuple[int, int, int, int]) -> None:
    """The shapes a config names without building its network are exactly those of the network it builds."""
    d, n, h, f = dims
    config = ModelConfig(size="custom", d_model=d, n_layers=n, n_heads=h, d_ff=f)
    net = ZebNet(config)
    assert config.tensor_shapes() == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert config.num_parameters() == net.num_parameters()


def test_weights_that_do_not_fit_are_refused_before_the_network_is_built() -> None:
    """A config naming a 46.6M-parameter network over the tensors of a small one: refused, and not one parameter
    allocated (torch's own registration hook counts every parameter any module creates)."""
    files = small_bundle()
    config = {"size": "custom", "d_model": 1536, "n_layers": 2, "n_heads": 8, "d_ff": 4096}
    assert ModelConfig(**config).num_parameters() > 46_000_000  # type: ignore[arg-type]
    files[weights_filenames("model")["config"]] = json.dumps(config).encode()
    bundle, fitting = bundle_from_files(files), bundle_from_files(small_bundle())
    allocated: list[int] = []
    hook = register_module_parameter_registration_hook(lambda _m, _n, p: allocated.append(math.prod(p.shape)))
    try:
        with pytest.raises(FormatError, match=r"weights tensor 'embeds.0.weight' has shape \[\d+, 64\]"):
            model_from_bundle(bundle)
        assert sum(allocated) == 0, f"built a network of {sum(allocated):,} parameters before refusing it"
        ok = model_from_bundle(fitting)
        assert sum(allocated) == ok.num_parameters() == ModelConfig.preset("small").num_parameters()
    finally:
        hook.remove()


def test_the_monitor_refuses_an_example_file_over_the_limit_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`zeb monitor`'s lag check reads the manifests of the newest files: one over MAX_EXAMPLE_FILE_BYTES is
    refused by its size (a warning naming size and limit), not read whole into memory."""
    from zeb_core.ops.monitor import read_manifest

    store = open_store(f"file://{tmp_path / 'store'}")
    store.ensure()
    data, manifest = example_bytes(10, seed=4)
    good = store.upload_examples(data, manifest)
    big = example_filename("w-huge", "0123456789abcdef")
    sparse(Path(store.examples.root) / big, MAX_EXAMPLE_FILE_BYTES + 1)  # type: ignore[attr-defined]
    assert (read_manifest(store, good) or {}).get("sha256") == manifest["sha256"]
    with caplog.at_level("WARNING", logger="zeb.monitor"):
        assert read_manifest(store, big) is None
    assert f"{MAX_EXAMPLE_FILE_BYTES + 1:,} bytes, {limit_words(MAX_EXAMPLE_FILE_BYTES)}" in caplog.text


def test_a_history_record_over_its_limit_is_not_read(tmp_path: Path) -> None:
    """A push's record (`.history/REV/.commit.json`) names a few files: one over MAX_RECORD_BYTES is not read
    (here a valid record padded with JSON whitespace, which a whole read would list as a push)."""
    from zeb_core.store.history import COMMIT_FILE, MAX_RECORD_BYTES, copy_path
    from zeb_core.store.local import LocalBackend

    backend = LocalBackend(tmp_path / "store")
    backend.create()
    rev = backend.commit({"a.bin": b"1"}, message="push", history=True)
    assert [r.id for r in backend.history()] == [rev.id]
    record = tmp_path / "store" / copy_path(rev.id, COMMIT_FILE)
    record.write_bytes(record.read_bytes() + b" " * MAX_RECORD_BYTES)
    assert backend.history() == []
    assert backend.drop_incomplete(before=math.inf) == 0, "a record, if an unreadable one: its copy is kept"
    assert record.exists()
