"""S3Backend against moto's real S3 protocol server on localhost (no AWS, no mocks of our classes)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import example_bytes
from tests.s3_server import S3_ENV_UNSET, closed_port, cutting_proxy, s3_env, s3_server
from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES
from zeb_core.store import RetryPolicy, Store
from zeb_core.store.backend import NotFound, StoreError, StoreUnavailable
from zeb_core.store.s3 import S3Backend, parse_s3_url


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture()
def aws_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in S3_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_env(endpoint).items():
        monkeypatch.setenv(name, value)
    return endpoint


@pytest.fixture()
def backend(aws_env: str) -> S3Backend:
    # No endpoint argument: boto3 picks up AWS_ENDPOINT_URL_S3 from the environment.
    b = S3Backend(f"zeb-{uuid.uuid4().hex[:12]}", "runs/exp1")
    assert not b.exists()
    b.create()
    assert b.exists()
    b.create()  # idempotent
    return b


def test_url_and_parse() -> None:
    assert S3Backend("bkt", "/a/b/", client=object()).url == "s3://bkt/a/b"
    assert S3Backend("bkt", client=object()).url == "s3://bkt"
    assert parse_s3_url("s3://bkt/a/b/") == ("bkt", "a/b")
    assert parse_s3_url("s3://bkt") == ("bkt", "")
    with pytest.raises(StoreError):
        parse_s3_url("http://bkt/a")


def test_commit_and_read_back(backend: S3Backend) -> None:
    files = {"model.safetensors": b"\x00" * 1000, "meta/config.json": b'{"a": 1}', "state.json": b"{}"}
    rev = backend.commit(files, message="first")
    assert rev.message == "first"
    for path, data in files.items():
        assert backend.read(path) == data
    listed = backend.list()
    assert [f.path for f in listed] == ["meta/config.json", "model.safetensors", "state.json"]
    sizes = {f.path: f.size for f in listed}
    assert sizes["model.safetensors"] == 1000
    assert all(abs(f.modified - time.time()) < 300 for f in listed)
    assert [f.path for f in backend.list("meta")] == ["meta/config.json"]
    assert backend.list("nothing-here") == []
    assert backend.history() == []  # history=False records nothing
    # Objects sit at natural keys under the prefix.
    keys = {o["Key"] for o in backend.client.list_objects_v2(Bucket=backend.bucket)["Contents"]}
    assert keys == {f"runs/exp1/{p}" for p in files}


def test_list_paginates(backend: S3Backend) -> None:
    # More than one 1000-key page; seeded in parallel with the raw client to keep the test fast.
    def put(i: int) -> None:
        backend.client.put_object(Bucket=backend.bucket, Key=f"runs/exp1/games/{i:04d}.bin", Body=bytes([i % 256]))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(1005)))
    listed = backend.list("games")
    assert len(listed) == 1005
    assert listed[0].path == "games/0000.bin" and listed[-1].path == "games/1004.bin"


def test_history_and_read_at_revision(backend: S3Backend) -> None:
    r1 = backend.commit({"model.bin": b"v1", "state.json": b"s1"}, message="gen 1", history=True)
    r2 = backend.commit({"model.bin": b"v2", "state.json": b"s2"}, message="gen 2", history=True)
    backend.commit({"model.bin": b"v3"}, message="unrecorded")
    revs = backend.history()
    assert [r.id for r in revs] == [r2.id, r1.id]
    assert [r.message for r in revs] == ["gen 2", "gen 1"]
    assert backend.history(limit=1)[0].id == r2.id
    assert backend.read("model.bin") == b"v3"
    assert backend.read("model.bin", r1.id) == b"v1"
    assert backend.read("state.json", r2.id) == b"s2"
    with pytest.raises(NotFound, match="at revision"):
        backend.read("other.bin", r1.id)
    record = json.loads(
        backend.client.get_object(Bucket=backend.bucket, Key=f"runs/exp1/.history/{r1.id}/.commit.json")["Body"].read()
    )
    assert record["id"] == r1.id and record["files"] == ["model.bin", "state.json"]
    # list never shows the history copies or other dot paths
    backend.client.put_object(Bucket=backend.bucket, Key="runs/exp1/.zeb/lease", Body=b"x")
    backend.client.put_object(Bucket=backend.bucket, Key="runs/exp1/sub/.tmp-part", Body=b"x")
    assert [f.path for f in backend.list()] == ["model.bin", "state.json"]


def test_history_skips_push_without_record(backend: S3Backend) -> None:
    r1 = backend.commit({"a.bin": b"1"}, history=True)
    # a push that died before writing its .commit.json
    backend.client.put_object(
        Bucket=backend.bucket, Key="runs/exp1/.history/99999999999999999999-dead/a.bin", Body=b"x"
    )
    assert [r.id for r in backend.history()] == [r1.id]


def test_deletes(backend: S3Backend) -> None:
    backend.commit({"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"})
    backend.commit({"d.bin": b"d"}, deletes=["a.bin", "b.bin", "never-existed.bin"])
    assert [f.path for f in backend.list()] == ["c.bin", "d.bin"]
    with pytest.raises(NotFound):
        backend.read("a.bin")


def test_missing_key_is_not_found(backend: S3Backend) -> None:
    with pytest.raises(NotFound, match=r"missing\.bin"):
        backend.read("missing.bin")


def test_invalid_paths_rejected(backend: S3Backend) -> None:
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(StoreError):
            backend.read(bad)
    with pytest.raises(StoreError):
        backend.commit({"ok": b"1", "a/../b": b"2"})


def test_write_if_compare_and_swap(backend: S3Backend) -> None:
    data, token = backend.read_versioned("lease.json")
    assert data is None and token == "absent"
    assert backend.write_if("lease.json", b"A", token)
    # a second writer holding the same "absent" token loses the race
    assert not backend.write_if("lease.json", b"B", "absent")
    assert not backend.write_if("lease.json", b"B", None)
    assert backend.read("lease.json") == b"A"

    data, token_a = backend.read_versioned("lease.json")
    assert data == b"A" and token_a and token_a != "absent"
    # both writers read the same version; the first wins, the second's token is stale
    assert backend.write_if("lease.json", b"writer-1", token_a)
    assert not backend.write_if("lease.json", b"writer-2", token_a)
    assert backend.read("lease.json") == b"writer-1"

    data, token_1 = backend.read_versioned("lease.json")
    assert data == b"writer-1" and token_1 != token_a
    assert backend.write_if("lease.json", b"writer-1 renewed", token_1)
    assert backend.read("lease.json") == b"writer-1 renewed"

    # deleted since read: a stale token loses too
    _, token_r = backend.read_versioned("lease.json")
    backend.commit({}, deletes=["lease.json"])
    assert not backend.write_if("lease.json", b"late", token_r)


def test_missing_bucket_is_clear_store_error(aws_env: str) -> None:
    b = S3Backend("zeb-no-such-bucket-here", "p")
    assert not b.exists()
    with pytest.raises(StoreError, match="bucket zeb-no-such-bucket-here does not exist; create it") as info:
        b.read("x.bin")
    assert not isinstance(info.value, (StoreUnavailable, NotFound))
    with pytest.raises(StoreError, match="does not exist"):
        b.commit({"x.bin": b"1"})
    with pytest.raises(StoreError, match="does not exist"):
        b.list()


def test_explicit_endpoint_argument(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    b = S3Backend(f"zeb-{uuid.uuid4().hex[:12]}", endpoint_url=endpoint, region="us-east-1")
    b.create()
    b.commit({"x.bin": b"1"})
    assert b.read("x.bin") == b"1"
    assert [f.path for f in b.list()] == ["x.bin"]


def test_no_credentials_is_store_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup
    b = S3Backend("zeb-any", connect_timeout=1, read_timeout=1, max_attempts=1)
    with pytest.raises(StoreError, match="AWS credentials") as info:
        b.read("x.bin")
    assert not isinstance(info.value, StoreUnavailable)


def test_unreachable_endpoint_is_unavailable_quickly(aws_env: str) -> None:
    b = S3Backend(
        "zeb-any", endpoint_url=f"http://127.0.0.1:{closed_port()}", connect_timeout=1, read_timeout=1, max_attempts=1
    )
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"zeb-any/x\.bin"):
        b.read("x.bin")
    with pytest.raises(StoreUnavailable):
        b.exists()
    with pytest.raises(StoreUnavailable):
        b.commit({"x.bin": b"1"})
    assert time.monotonic() - start < 5


def test_stopped_server_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in S3_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    with s3_server() as url:
        for name, value in s3_env(url).items():
            monkeypatch.setenv(name, value)
        b = S3Backend(f"zeb-{uuid.uuid4().hex[:12]}", connect_timeout=1, read_timeout=1, max_attempts=1)
        b.create()
        b.commit({"x.bin": b"1"})
        assert b.read("x.bin") == b"1"
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        b.read("x.bin")
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("code", "status", "kind", "text"),
    [
        ("SlowDown", 503, StoreUnavailable, "SlowDown"),
        ("InternalError", 500, StoreUnavailable, "InternalError"),
        ("TooManyRequests", 429, StoreUnavailable, "429"),
        ("NoSuchKey", 404, NotFound, "not found"),
        ("AccessDenied", 403, StoreError, "credentials"),
        ("InvalidAccessKeyId", 403, StoreError, "credentials"),
        ("SignatureDoesNotMatch", 403, StoreError, "credentials"),
        ("NoSuchBucket", 404, StoreError, "bucket bkt does not exist"),
    ],
)
def test_error_code_translation(code: str, status: int, kind: type, text: str) -> None:
    err = S3Backend("bkt", "p", client=object())._client_error(
        "get_object", "p/x.bin", code, status, "secret-ish detail"
    )
    assert type(err) is kind
    assert text in str(err)
    if kind is StoreError and code != "NoSuchBucket":
        assert "secret-ish" not in str(err)  # credential errors never echo the server's message


def test_a_body_cut_mid_download_is_unavailable_and_retried(aws_env: str) -> None:
    """A connection dropped while an object downloads (here a proxy in front of the S3 server sends half the
    body) is a transient fault: StoreUnavailable, which the store retries, never a short file (an example file
    cut short was quarantined as corrupt) nor a StoreError that ends the learner's run."""
    with cutting_proxy(aws_env) as proxy:
        b = S3Backend(f"zeb-{uuid.uuid4().hex[:12]}", "runs", endpoint_url=proxy.endpoint, max_attempts=1)
        b.create()
        store = Store(b, b, RetryPolicy.fast())
        data, manifest = example_bytes(40, seed=5)
        path = store.upload_examples(data, manifest)
        for limit in (MAX_EXAMPLE_FILE_BYTES, None):  # the bounded read (examples, weights) and the plain one
            proxy.cut_next(match=path)
            with pytest.raises(StoreUnavailable, match=r"cut short|IncompleteRead"):
                b.read(path, max_bytes=limit)
        assert proxy.cuts == 2 and b.read(path, max_bytes=len(data)) == data

        proxy.cut_next(match=path)
        (ref,) = store.list_examples()
        got = store.read_examples(ref)
        assert proxy.cuts == 3 and got is not None and got.examples == 40, "read again, whole"
        assert store.list_quarantine() == [] and store.quarantined == 0
