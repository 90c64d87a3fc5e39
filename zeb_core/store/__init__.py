"""Stores: where weights and examples travel between the learner and the workers.

`open_store(url)` picks the backend from the URL:

    file://DIR  or a plain path     DIR/weights and DIR/examples on this machine (the embedded default)
    hf://OWNER/REPO                 the Hub model repo OWNER/REPO, examples in the dataset repo OWNER/REPO-examples
    s3://BUCKET/PREFIX              PREFIX/weights and PREFIX/examples in BUCKET

`examples_url` overrides where examples go. Credentials come from the usual places (HF_TOKEN or the Hub's token
file, AWS environment or profiles) and never appear in URLs or messages. A query `?faults=P` wraps both backends
in `FaultyBackend` (reliability runs). Hub repos that do not exist yet are created private; `?private=false` on
an hf:// URL creates them public. `?shards=K` on an hf:// URL spreads the examples over K dataset repos
(OWNER/REPO-examples, OWNER/REPO-examples-1 .. -(K-1)), each with its own commit limit, for a fleet too large for
one repo's (`zeb_core.store.shards`; deployments/README.md says when).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from zeb_core.store.backend import Backend, FileInfo, LeaseHeld, NotFound, Revision, StoreError, StoreUnavailable
from zeb_core.store.cursor import ExampleCursor
from zeb_core.store.faults import FaultyBackend
from zeb_core.store.retry import RetryPolicy
from zeb_core.store.store import ExampleRef, Lease, PruneReport, PushRecord, Store

SCHEMES = ("file", "hf", "s3")


def _split(url: str) -> tuple[str, str, dict[str, list[str]]]:
    if "://" not in url:
        return "file", url, {}
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreError(
            f"store URL {url!r}: unknown scheme {scheme!r}; use file://DIR, hf://OWNER/REPO or s3://BUCKET/PREFIX"
        )
    return scheme, parts.netloc + parts.path, parse_qs(parts.query)


def open_backend(url: str, role: str = "weights") -> Backend:
    """One repo. `role` picks the sub-location when the URL names a whole store (file and s3)."""
    scheme, location, _ = _split(url)
    if scheme == "file":
        from zeb_core.store.local import LocalBackend

        if not location:
            raise StoreError(f"store URL {url!r} names no folder")
        return LocalBackend(Path(location) / role)
    if scheme == "hf":
        repo = location.strip("/")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise StoreError(f"store URL {url!r}: expected hf://OWNER/REPO")
        from zeb_core.store.hf import HfBackend

        if role == "examples":
            return _hub_examples(url, f"{repo}-examples")
        return HfBackend(repo, private=_private(url))
    from zeb_core.store.s3 import S3Backend

    bucket, _, prefix = location.partition("/")
    if not bucket:
        raise StoreError(f"store URL {url!r}: expected s3://BUCKET/PREFIX")
    prefix = prefix.strip("/")
    return S3Backend(bucket, f"{prefix}/{role}" if prefix else role)


def open_examples_backend(url: str) -> Backend:
    """An explicit examples location: a Hub URL here is the examples repo itself (a dataset repo)."""
    scheme, location, _ = _split(url)
    if scheme == "hf":
        return _hub_examples(url, location.strip("/"))
    return open_backend(url, "examples")


def _hub_examples(url: str, repo: str) -> Backend:
    """The examples dataset repo `repo`, or with `?shards=K` it and K - 1 more (`repo`-1 ..), read as one."""
    from zeb_core.store.hf import HfBackend
    from zeb_core.store.shards import ShardedBackend, check_shards

    value = _split(url)[2].get("shards", ["1"])[-1]
    try:
        count = check_shards(int(value))
    except ValueError:
        raise StoreError(f"store URL {url!r}: shards must be a whole number, not {value!r}") from None
    repos = [repo, *(f"{repo}-{i}" for i in range(1, count))]
    parts: list[Backend] = [HfBackend(r, repo_type="dataset", private=_private(url)) for r in repos]
    return parts[0] if count == 1 else ShardedBackend(parts)


def _private(url: str) -> bool:
    """Whether missing Hub repos are created private: yes unless the URL says `?private=false` (or 0, no)."""
    value = _split(url)[2].get("private", ["true"])[-1].lower()
    if value not in ("true", "1", "yes", "false", "0", "no"):
        raise StoreError(f"store URL {url!r}: private must be true or false, not {value!r}")
    return value in ("true", "1", "yes")


def _with_faults(url: str, backend: Backend, seed_offset: int) -> Backend:
    """`backend` wrapped in `FaultyBackend` when the URL asks for it (`?faults=P[&fault_seed=S]`)."""
    _, _, query = _split(url)
    unknown = set(query) - {"faults", "fault_seed", "private", "shards"}
    if unknown:
        raise StoreError(
            f"store URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}; only faults, fault_seed, private "
            "and shards"
        )
    if "shards" in query and not url.startswith("hf://"):
        raise StoreError(f"store URL {url!r}: shards is for hf:// stores (the Hub limits commits per repo)")
    if "faults" not in query:
        return backend
    try:
        rate = float(query["faults"][0])
        seed = int(query.get("fault_seed", ["0"])[0])
    except ValueError:
        raise StoreError(f"store URL {url!r}: faults must be a number in [0, 1) and fault_seed an integer") from None
    if not 0 <= rate < 1:
        raise StoreError(f"store URL {url!r}: faults must be a number in [0, 1)")
    return FaultyBackend(backend, rate, seed + seed_offset)


def open_store(url: str | Path, examples_url: str | None = None, retry: RetryPolicy | None = None) -> Store:
    """The store at `url`; a `?faults=` query on either URL injects failures into the backends it names."""
    url = str(url)
    weights = _with_faults(url, open_backend(url, "weights"), 0)
    if examples_url:
        examples = _with_faults(examples_url, open_examples_backend(examples_url), 1)
    else:
        examples = _with_faults(url, open_backend(url, "examples"), 1)
    return Store(weights, examples, retry)


__all__ = [
    "Backend",
    "ExampleCursor",
    "ExampleRef",
    "FaultyBackend",
    "FileInfo",
    "Lease",
    "LeaseHeld",
    "NotFound",
    "PruneReport",
    "PushRecord",
    "RetryPolicy",
    "Revision",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_backend",
    "open_store",
]
