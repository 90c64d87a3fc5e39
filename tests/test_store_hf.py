"""HfBackend against the test-only Hub server (tests/hf_hub_server.py), spoken to by huggingface_hub itself.

Nothing here reaches huggingface.co: every backend is pointed at the server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hf_hub_server import HfHubServer, hf_hub_server

from zeb_core.store import Store
from zeb_core.store.backend import NotFound, StoreError, StoreUnavailable
from zeb_core.store.hf import HfBackend

pytestmark = pytest.mark.usefixtures("clean_hub")  # conftest.py: no fault left over, no route unserved


def make(hub: HfHubServer, repo_type: str = "model", **kwargs: object) -> HfBackend:
    backend = HfBackend(
        f"tester/r{uuid.uuid4().hex[:10]}", repo_type=repo_type, endpoint=hub.endpoint, token=hub.token, **kwargs
    )
    assert not backend.exists()
    backend.create()
    assert backend.exists()
    backend.create()  # exist_ok
    return backend


# ------------------------------------------------------------------ commits and reads
@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_commit_is_one_atomic_hub_commit(hub: HfHubServer, repo_type: str) -> None:
    b = make(hub, repo_type)
    before = len(hub.commits(b.repo_id, repo_type))
    puts = {"w/model.safetensors": b"\x00\x01" * 300, "w/config.json": b'{"a": 1}', "w/state.json": b'{"step": 1}'}
    rev = b.commit(puts, message="zeb push name=w step=1")
    commits = hub.commits(b.repo_id, repo_type)
    assert len(commits) == before + 1 and commits[-1].id == rev.id and len(rev.id) == 40
    assert commits[-1].title == "zeb push name=w step=1" and rev.message == commits[-1].title
    for path, data in puts.items():
        assert b.read(path) == data
    assert hub.files(b.repo_id, repo_type) == {**hub.files(b.repo_id, repo_type, commits[0].id), **puts}


def test_read_at_an_older_revision_and_history_newest_first(hub: HfHubServer) -> None:
    b = make(hub)
    r1 = b.commit({"state.json": b"one"}, message="first")
    r2 = b.commit({"state.json": b"two", "extra.bin": b"x"}, message="second\nwith a longer description")
    assert b.read("state.json") == b"two"
    assert b.read("state.json", r1.id) == b"one" and b.read("state.json", r2.id) == b"two"
    with pytest.raises(NotFound, match=r"extra\.bin at revision"):
        b.read("extra.bin", r1.id)
    with pytest.raises(NotFound):
        b.read("state.json", "0" * 40)
    hist = b.history()
    assert [h.id for h in hist[:2]] == [r2.id, r1.id] and [h.message for h in hist[:2]] == ["second", "first"]
    assert hist[-1].message == "initial commit" and hist[0].time >= hist[1].time > 0
    assert [h.id for h in b.history(limit=1)] == [r2.id]


def test_history_pages_through_many_commits(hub: HfHubServer) -> None:
    b = make(hub)
    hub.commits_page_size = 3
    try:
        revs = [b.commit({"n": str(i).encode()}, message=f"c{i}") for i in range(7)]
        assert [h.id for h in b.history()][:7] == [r.id for r in reversed(revs)]
        assert len(b.history()) == 8  # and the initial commit
    finally:
        hub.commits_page_size = 50


def test_recommitting_the_same_bytes_is_harmless(hub: HfHubServer) -> None:
    b = make(hub)
    r1 = b.commit({"a.txt": b"same"}, message="one")
    r2 = b.commit({"a.txt": b"same"}, message="again")  # a retry after a lost reply
    assert r2.id == r1.id and b.read("a.txt") == b"same"


def test_list_recurses_and_hides_internal_paths(hub: HfHubServer) -> None:
    b = make(hub, "dataset")
    b.commit(
        {
            "exp/a/1.bin": b"1",
            "exp/b/2.bin": b"22",
            "top.bin": b"333",
            ".zeb/lock": b"internal",
            ".history/r/x": b"internal",
        }
    )
    files = b.list()
    assert [f.path for f in files] == ["exp/a/1.bin", "exp/b/2.bin", "top.bin"]  # no .gitattributes either
    assert [f.size for f in files] == [1, 2, 3]  # LFS files (*.bin) list their real size, not the pointer's
    assert all(f.modified == 0.0 for f in files)  # unexpanded listings carry no dates: "the backend does not say"
    assert [f.path for f in b.list("exp")] == ["exp/a/1.bin", "exp/b/2.bin"]
    assert [f.path for f in b.list("exp/b/")] == ["exp/b/2.bin"]
    assert b.list("nothing-here") == []


def test_list_follows_pagination(hub: HfHubServer) -> None:
    b = make(hub)
    b.commit({f"d/{i:02d}.bin": bytes([i]) for i in range(12)})
    hub.tree_page_size = 5
    try:
        assert [f.path for f in b.list("d")] == [f"d/{i:02d}.bin" for i in range(12)]
    finally:
        hub.tree_page_size = 1000


def test_deletes(hub: HfHubServer) -> None:
    b = make(hub)
    b.commit({"keep.bin": b"k", "old/1.bin": b"1", "old/2.bin": b"2"})
    b.commit({"new.bin": b"n"}, deletes=["old/1.bin", "old/2.bin"], message="prune")
    assert [f.path for f in b.list()] == ["keep.bin", "new.bin"]
    with pytest.raises(NotFound):
        b.read("old/1.bin")
    b.commit({}, deletes=["old/1.bin", "keep.bin"])  # deleting what is gone already is harmless
    assert [f.path for f in b.list()] == ["new.bin"]
    b.commit({}, deletes=["never-was.bin"])
    assert [f.path for f in b.list()] == ["new.bin"]


def test_missing_path_and_missing_repo_are_not_found(hub: HfHubServer) -> None:
    b = make(hub)
    with pytest.raises(NotFound, match=r"nope\.bin"):
        b.read("nope.bin")
    ghost = HfBackend("tester/does-not-exist", endpoint=hub.endpoint, token=hub.token)
    assert not ghost.exists()
    with pytest.raises(NotFound, match="tester/does-not-exist"):
        ghost.read("x.bin")
    with pytest.raises(StoreError, match="invalid store path"):
        b.read("../escape")


# ------------------------------------------------------------------ compare-and-swap
def test_write_if_follows_the_head_commit(hub: HfHubServer) -> None:
    b = make(hub)
    data, token = b.read_versioned("lease.json")
    assert data is None and token == hub.commits(b.repo_id)[-1].id
    assert b.write_if("lease.json", b"A", token)
    assert not b.write_if("lease.json", b"B", token)  # stale: someone (we) committed since
    data, token2 = b.read_versioned("lease.json")
    assert data == b"A" and token2 != token
    other = HfBackend(b.repo_id, endpoint=hub.endpoint, token=hub.token)
    assert other.write_if("lease.json", b"C", token2)
    assert not b.write_if("lease.json", b"D", token2)
    assert b.read("lease.json") == b"C"
    _, token3 = b.read_versioned("lease.json")
    assert b.write_if("lease.json", b"C", token3)  # same bytes at the right token: true (no commit needed)
    assert not b.write_if("lease.json", b"C", token2)  # same bytes at a stale token: still false
    assert not b.write_if("lease.json", b"E", "absent")  # not a commit sha of this repo
    assert not b.write_if("lease.json", b"E", None)  # None means "only if missing"
    assert b.write_if("other.json", b"F", None)


def test_write_if_lets_only_one_of_many_racers_win(hub: HfHubServer) -> None:
    b = make(hub)
    _, token = b.read_versioned("lease.json")
    wins: list[int] = []

    def racer(i: int) -> None:
        mine = HfBackend(b.repo_id, endpoint=hub.endpoint, token=hub.token)
        if mine.write_if("lease.json", f"holder {i}".encode(), token):
            wins.append(i)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and b.read("lease.json") == f"holder {wins[0]}".encode()


# ------------------------------------------------------------------ failures
@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_http_errors_are_store_unavailable(hub: HfHubServer, status: int) -> None:
    b = make(hub)
    b.commit({"a.bin": b"a"})
    hub.fail_next(status, match="/resolve/")
    with pytest.raises(StoreUnavailable, match=rf"{b.repo_id}.*HTTP {status}"):
        b.read("a.bin")
    hub.fail_next(status, match="/commit/")
    with pytest.raises(StoreUnavailable, match=rf"HTTP {status}"):
        b.commit({"b.bin": b"b"})
    hub.fail_next(status, match="GET /api/models/")
    with pytest.raises(StoreUnavailable, match=rf"HTTP {status}"):
        b.exists()
    assert b.read("a.bin") == b"a" and [f.path for f in b.list()] == ["a.bin"]  # nothing half-done


def test_huggingface_hub_retries_a_listing_itself(hub: HfHubServer) -> None:
    b = make(hub)
    b.commit({"a.bin": b"a"})
    hub.fail_next(503, match="/tree/")
    assert [f.path for f in b.list()] == ["a.bin"]  # huggingface_hub's own backoff absorbed it (about 1 s)


def test_timeouts_and_refused_connections_are_store_unavailable(hub: HfHubServer) -> None:
    b = make(hub)
    b.commit({"a.bin": b"a"})
    slow = HfBackend(b.repo_id, endpoint=hub.endpoint, token=hub.token, timeout=0.2)
    hub.delay = 1.0
    try:
        with pytest.raises(StoreUnavailable, match="timed out"):
            slow.read("a.bin")
        with pytest.raises(StoreUnavailable, match="timed out"):
            slow.exists()
    finally:
        hub.delay = 0.0
    from hf_hub_server import _free_socket

    sock = _free_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    dead = HfBackend("tester/x", endpoint=f"http://127.0.0.1:{port}", token=hub.token)
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        dead.read("a.bin")


def test_a_commit_whose_reply_is_lost_times_out_and_its_retry_is_harmless(hub: HfHubServer) -> None:
    b = make(hub)
    slow = HfBackend(b.repo_id, endpoint=hub.endpoint, token=hub.token, timeout=0.2)
    hub.delay, hub.delay_match = 0.6, "/commit/"  # create_commit takes no timeout: this is the backend's own
    with pytest.raises(StoreUnavailable, match="timed out"):
        slow.commit({"a.bin": b"a", "b.bin": b"b"}, message="lost reply")
    time.sleep(0.7)  # the Hub finished the commit after the client gave up
    hub.clear_faults()
    assert hub.commits(b.repo_id)[-1].title == "lost reply"
    before = len(hub.commits(b.repo_id))
    slow.commit({"a.bin": b"a", "b.bin": b"b"}, message="lost reply")  # the caller's retry
    assert len(hub.commits(b.repo_id)) == before and b.read("b.bin") == b"b"


def test_random_faults_are_retryable(hub: HfHubServer) -> None:
    from zeb_core.store.retry import RetryPolicy, call_with_retry

    b = make(hub)
    b.commit({"a.bin": b"a"})
    hub.fail_rate = 0.5
    seen = 0
    for _ in range(20):
        try:
            assert b.read("a.bin") == b"a"
        except StoreUnavailable as exc:
            assert "HTTP 429" in str(exc) or "HTTP 500" in str(exc) or "HTTP 503" in str(exc)
            seen += 1
    assert 0 < seen < 20
    assert all(call_with_retry(RetryPolicy.fast(), "read", b.read, "a.bin") == b"a" for _ in range(5))


def test_wrong_token_is_a_clear_error_without_the_token(hub: HfHubServer) -> None:
    b = make(hub)
    b.commit({"a.bin": b"a"})
    secret = "hf_wrong_" + uuid.uuid4().hex
    bad = HfBackend(b.repo_id, endpoint=hub.endpoint, token=secret)
    for call in (lambda: bad.read("a.bin"), lambda: bad.commit({"b.bin": b"b"}), bad.exists, bad.list):
        with pytest.raises(StoreError) as info:
            call()
        assert not isinstance(info.value, (StoreUnavailable, NotFound))
        assert "token" in str(info.value) and "HTTP 401" in str(info.value)
        assert secret not in str(info.value) and secret not in repr(info.value)
    reader = HfBackend(b.repo_id, endpoint=hub.endpoint, token=hub.read_token)
    assert reader.read("a.bin") == b"a"
    with pytest.raises(StoreError, match=r"HTTP 403.*token.*write to") as info:
        reader.commit({"b.bin": b"b"})
    assert hub.read_token not in str(info.value)


def test_url_and_repr_hide_the_token(hub: HfHubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    b = HfBackend("tester/shown", endpoint=hub.endpoint, token=hub.token)
    assert b.url == "hf://tester/shown"
    assert hub.token not in b.url and hub.token not in repr(b)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    from_env = HfBackend("tester/from-env")
    assert from_env.endpoint == hub.endpoint and from_env.min_commit_interval == 0.0
    from_env.create()  # HF_TOKEN picked up by huggingface_hub's own lookup
    from_env.commit({"a.bin": b"a"})
    assert from_env.read("a.bin") == b"a"
    monkeypatch.delenv("HF_ENDPOINT")
    real = HfBackend("tester/shown")
    assert real.endpoint == "https://huggingface.co" and real.min_commit_interval == 1.0  # nothing contacted


def test_commits_from_one_backend_are_spaced(hub: HfHubServer) -> None:
    b = make(hub, min_commit_interval=0.3)
    start = time.monotonic()
    b.commit({"a": b"1"})
    b.commit({"a": b"2"})
    b.commit({"a": b"3"})
    assert time.monotonic() - start >= 0.55


def test_the_server_speaks_to_plain_huggingface_hub(hub: HfHubServer, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url

    b = make(hub, "dataset")
    payload = os.urandom(5000)
    rev = b.commit({"d/x.txt": b"hello", "d/w.safetensors": payload})
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    assert api.file_exists(b.repo_id, "d/x.txt", repo_type="dataset")
    assert not api.file_exists(b.repo_id, "d/y.txt", repo_type="dataset")
    for name, data in (("d/x.txt", b"hello"), ("d/w.safetensors", payload)):
        path = hf_hub_download(
            b.repo_id,
            name,
            repo_type="dataset",
            revision=rev.id,
            cache_dir=tmp_path,
            endpoint=hub.endpoint,
            token=hub.token,
        )
        assert Path(path).read_bytes() == data
    # The LFS file's facts come from the Hub's redirect (its CDN knows nothing of commits), as huggingface_hub reads
    # them: commit, SHA-256 as the etag, size, and the CDN location it then downloads from without the token.
    url = hf_hub_url(b.repo_id, "d/w.safetensors", repo_type="dataset", endpoint=hub.endpoint)
    meta = get_hf_file_metadata(url, token=hub.token, endpoint=hub.endpoint)
    assert (meta.commit_hash, meta.etag, meta.size) == (rev.id, hashlib.sha256(payload).hexdigest(), 5000)
    assert meta.location.startswith(hub.cdn_endpoint + "/cdn/blob/")


def test_server_stops_cleanly() -> None:
    import socket

    before = {t.name for t in threading.enumerate()}
    with hf_hub_server() as other:
        port = int(other.endpoint.rsplit(":", 1)[1])
        assert HfBackend("tester/gone", endpoint=other.endpoint, token=other.token).exists() is False
    assert {t.name for t in threading.enumerate()} <= before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_private_repos_need_a_token_to_read(hub: HfHubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    b = make(hub, private=True)
    b.commit({"a.bin": b"a"})
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)  # and no token saved on this machine is sent either:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    anonymous = HfBackend(b.repo_id, endpoint=hub.endpoint)
    assert not anonymous.exists()
    with pytest.raises(NotFound):
        anonymous.read("a.bin")


# ------------------------------------------------------------------ LFS, redirects, and how many calls things take
def test_safetensors_go_through_lfs_and_come_back_through_a_redirect(hub: HfHubServer) -> None:
    from huggingface_hub import HfApi

    b = make(hub)
    weights = os.urandom(40_000)
    before = hub.count_calls()
    rev = b.commit({"m.safetensors": weights, "m-state.json": b'{"step": 1}'}, message="push")
    assert hub.count_calls() - before == Counter(
        preupload=1, **{"lfs-batch": 1, "cdn-upload": 1, "lfs-verify": 1}, commit=1
    )
    assert hub.lfs_files(b.repo_id) == {"m.safetensors"}  # the small JSON went inline
    before = hub.count_calls()
    assert b.read("m.safetensors") == weights and b.read("m.safetensors", rev.id) == weights
    assert hub.count_calls() - before == Counter(resolve=2, **{"cdn-download": 2})
    assert b.read_versioned("m.safetensors") == (weights, rev.id)  # the commit is on the Hub's hop, not the CDN's
    entries = {e.path: e for e in HfApi(endpoint=hub.endpoint, token=hub.token).list_repo_tree(b.repo_id)}
    lfs = entries["m.safetensors"].lfs
    assert lfs is not None and (lfs.sha256, lfs.size) == (hashlib.sha256(weights).hexdigest(), len(weights))
    assert entries["m-state.json"].lfs is None
    commits = len(hub.commits(b.repo_id))
    before = hub.count_calls()
    assert b.commit({"m.safetensors": weights}).id == rev.id  # a retry: the object is there, nothing is sent
    calls = hub.count_calls() - before
    assert calls["cdn-upload"] == calls["commit"] == 0 and len(hub.commits(b.repo_id)) == commits
    b.commit({"m.safetensors": b"{}"})  # now a different, tiny file of the same name: still LFS
    assert hub.lfs_files(b.repo_id) == {"m.safetensors"} and b.read("m.safetensors") == b"{}"


def test_the_storage_host_wants_a_signature_and_never_the_token(hub: HfHubServer) -> None:
    import httpx

    b = make(hub)  # private: the Hub wants the token, the signed CDN URL must not get it
    b.commit({"w.safetensors": b"x" * 100})
    auth = {"Authorization": f"Bearer {hub.token}"}
    hop = httpx.get(f"{hub.endpoint}/{b.repo_id}/resolve/main/w.safetensors", headers=auth)
    assert hop.status_code == 302 and hop.headers["X-Linked-Size"] == "100"
    assert hop.headers["X-Repo-Commit"] == hub.commits(b.repo_id)[-1].id
    location = hop.headers["Location"]
    assert location.startswith(hub.cdn_endpoint) and httpx.get(location).content == b"x" * 100
    assert httpx.get(location, headers={"Range": "bytes=10-19"}).content == b"x" * 10
    assert httpx.get(location, headers=auth).status_code == 400  # a client that forwards the token is caught
    assert httpx.get(location.replace("sig=", "sig=0")).status_code == 403
    assert httpx.get(f"{hub.endpoint}/{b.repo_id}/resolve/main/w.safetensors").status_code == 401
    assert httpx.get(hub.cdn_endpoint + f"/{b.repo_id}/resolve/main/w.safetensors").status_code == 404
    hub.unhandled.clear()  # that last one was ours


def test_a_safetensors_file_committed_inline_is_refused(hub: HfHubServer) -> None:
    import httpx

    b = make(hub)
    header = {"key": "header", "value": {"summary": "inline"}}
    line = {"key": "file", "value": {"path": "m.safetensors", "content": "eA==", "encoding": "base64"}}
    body = "\n".join(json.dumps(x) for x in (header, line))
    reply = httpx.post(
        f"{hub.endpoint}/api/models/{b.repo_id}/commit/main",
        content=body,
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/x-ndjson"},
    )
    assert reply.status_code == 400 and "LFS" in reply.json()["error"]


def test_xet_is_off_while_the_test_hub_runs(hub: HfHubServer) -> None:
    """huggingface_hub 2.x picks Xet on the client side alone; the test Hub speaks the git-lfs basic transfer."""
    from huggingface_hub.utils._runtime import is_xet_available  # what _commit_api asks

    assert not is_xet_available()


def _examples(n: int, seed: int) -> tuple[bytes, dict]:
    import torch

    from zeb_core.formats.examples import encode_examples

    g = torch.Generator().manual_seed(seed)
    legal = torch.ones(n, 7, dtype=torch.bool)
    policy = torch.full((n, 7), 1 / 7)
    obs = torch.randint(0, 2, (n, 36, 8), generator=g).to(torch.int8)
    return encode_examples(obs, legal, policy, torch.zeros(n), model_step=0, worker_id="w1", games=1)


def _store(hub: HfHubServer) -> Store:
    from zeb_core.store import RetryPolicy

    unique = uuid.uuid4().hex[:8]
    weights = HfBackend(f"tester/w{unique}", endpoint=hub.endpoint, token=hub.token)
    examples = HfBackend(f"tester/w{unique}-examples", repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    store = Store(weights, examples, RetryPolicy.fast())
    store.ensure()
    return store


def test_an_upload_and_an_ingest_take_a_few_calls_however_many_files(hub: HfHubServer) -> None:
    """The Hub's rate limits count requests (and commits: about 128 an hour). A worker's upload is six calls and
    one commit, and a learner's ingest one listing plus two calls per new file, with more example files in the
    repo than an expanded listing returns per page (50)."""
    import torch

    from zeb_core.formats.examples import example_filename
    from zeb_core.learn.learner import Learner, LearnerSettings

    store = _store(hub)
    old = {}
    for i in range(60):
        data, manifest = _examples(4, seed=i)
        old[example_filename("old", manifest["sha256"], now=time.time() - 600)] = data
    store.examples.commit(old, message="60 files in one commit")
    settings = LearnerSettings(
        store="hf://unused/by-this-test",
        size="small",
        min_buffer_size=10_000,
        replay_buffer_size=20_000,
        device="cpu",
        promote=False,
        learner_id="counted",
    )
    torch.set_num_threads(1)
    learner = Learner(settings, store=store)
    learner.start()
    try:
        assert learner.ingest()["files"] == 60
        before = hub.count_calls()
        assert learner.ingest()["files"] == 0
        assert hub.count_calls() - before == Counter(tree=1)
        for seed in (100, 101):
            before = hub.count_calls()
            store.upload_examples(*_examples(4, seed))
            assert hub.count_calls() - before == Counter(
                tree=1, preupload=1, commit=1, **{"lfs-batch": 1, "cdn-upload": 1, "lfs-verify": 1}
            )
        before = hub.count_calls()
        assert learner.ingest()["files"] == 2
        assert hub.count_calls() - before == Counter(tree=1, resolve=2, **{"cdn-download": 2})
    finally:
        learner.close(push=False)


def test_quarantine_and_its_pruning_work_without_listed_dates(hub: HfHubServer) -> None:
    from zeb_core.formats.examples import example_filename

    store = _store(hub)
    data, manifest = _examples(4, seed=7)
    name = example_filename("w1", manifest["sha256"])
    store.examples.commit({name: data[:-3]}, message="a truncated upload")
    (ref,) = store.list_examples()
    assert store.read_examples(ref) is None
    assert [q.path for q in store.list_quarantine()] == [f"quarantine/{name}"]
    assert store.prune_quarantine(3600) == []  # fresh
    assert store.prune_quarantine(3600, now=time.time() + 7200) == [
        f"quarantine/{name}",
        f"quarantine/{name}.reason.json",
    ]
    assert store.list_quarantine() == []


def test_repos_are_created_private_unless_asked(hub: HfHubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from zeb_core.store import open_store

    assert hub.repos[("model", make(hub).repo_id)].private
    assert not hub.repos[("dataset", make(hub, "dataset", private=False).repo_id)].private
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    unique = uuid.uuid4().hex[:8]
    open_store(f"hf://tester/a{unique}").ensure()
    open_store(f"hf://tester/b{unique}?private=false").ensure()
    open_store(f"hf://tester/c{unique}", examples_url=f"hf://tester/d{unique}?private=0").ensure()
    visibility = {rid: repo.private for (_, rid), repo in hub.repos.items() if unique in rid}
    assert visibility == {
        f"tester/a{unique}": True,
        f"tester/a{unique}-examples": True,
        f"tester/b{unique}": False,
        f"tester/b{unique}-examples": False,
        f"tester/c{unique}": True,
        f"tester/d{unique}": False,
    }
    with pytest.raises(StoreError, match="private must be true or false"):
        open_store(f"hf://tester/e{unique}?private=maybe")
