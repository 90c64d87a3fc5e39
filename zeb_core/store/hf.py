"""A store in one HuggingFace Hub repo (`hf://OWNER/REPO`), over huggingface_hub's own `HfApi`.

Every push is one real Hub commit (`create_commit` with several adds and deletes), so readers see all of a push
or none of it, and every commit is history: `history()` lists the repo's commits (newest first) and
`read(path, revision)` reads a file as of a commit sha. `history=True` therefore changes nothing here.

Compare-and-swap (the lease) uses the Hub's own optimistic locking: `read_versioned` returns the head commit sha
of `main` together with the bytes read *at that sha*, and `write_if` commits with `parent_commit=sha`, which the
Hub refuses with HTTP 412 once anything else has been committed since. The token is thus stricter than "this
file is unchanged": any commit to the repo invalidates it, and the caller simply reads again.

Reads are one plain `GET {endpoint}/{repo}/resolve/{rev}/{path}` (following the Hub's redirects to its CDN for
LFS/Xet files; httpx drops the token when a redirect leaves the Hub) into memory: nothing lands in the global
huggingface_hub cache.

Listings are one unexpanded tree call per 1,000 files. `expand=True` would add each file's last commit (its
date) but costs the Hub more, and it pages 50 entries at a time: a listing of 1,000 example files would be 20
calls instead of 1, for every upload (which lists the examples first) and every ingest. So `FileInfo.modified`
is 0 here ("the backend does not say"); Zeb's example files carry their upload time in their names.

The endpoint comes from the argument, else `HF_ENDPOINT`, else https://huggingface.co. The token comes from the
argument, else huggingface_hub's usual lookup (`HF_TOKEN`, then the token saved by `hf auth login`); it never
appears in `url`, in `repr()` or in an error message.

huggingface_hub's shared HTTP client has no timeout and most `HfApi` methods take none, so each call made from a
backend runs with a context variable that a request hook (added once to that shared client) turns into the
request's timeout; requests made by anyone else are left alone. huggingface_hub itself still retries some calls
(preupload, paginated listings) on 429/5xx with its own backoff before we see the error.

Small regular files go inline in the commit (the Hub answers "regular" to the preupload call). Files the Hub
wants in LFS (larger files, or names matched by the repo's `.gitattributes`: every `*.safetensors`) are uploaded
by huggingface_hub before the commit: through Xet (`hf_xet`) when that package is installed (it is a default
dependency of huggingface_hub 2.x on x86-64 and arm64) and `HF_HUB_DISABLE_XET` is unset, else through the
git-lfs batch API and a signed PUT. The commit then names them by SHA-256.

HTTP calls: an upload of one example file is a listing, a preupload, an LFS batch call, the upload itself, its
verification and the commit; reading one file is the resolve call and its CDN redirect (tests/test_store_hf.py
counts them). Commits are rate limited on the Hub (about 128 an hour per repo), so one backend waits
`min_commit_interval` seconds (1 s; 0 against a local test endpoint) between its commits, and says
`commit_limited`: workers then put many outbox files in one commit and pace their commits by a fleet-wide budget
(`zeb_core.selfplay.outbox.CommitPacer`). A 429 is `RateLimited`, carrying the seconds its `Retry-After` (or exhausted
`RateLimit` header) asks for.

Repos are created private unless `private=False` (`hf://OWNER/REPO?private=false`): weights and self-play data
are not for everyone by default. The setting only matters when the repo is created; an existing repo keeps its
visibility.
"""

from __future__ import annotations

import builtins
import contextvars
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlparse

from zeb_core.store.backend import (
    LISTING_PAGE,
    Backend,
    FileInfo,
    Listing,
    NotFound,
    RateLimited,
    Revision,
    StoreError,
    StoreUnavailable,
    check_path,
    check_read_size,
    is_internal,
    split_listing,
)

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT = 30.0
HUB_COMMIT_INTERVAL = 1.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
REPO_TYPES = ("model", "dataset", "space")
CONFLICT_STATUSES = (409, 412)
DEFAULT_MESSAGE = "zeb push"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")

# ------------------------------------------------------------------ per-call timeouts on the shared client
_CALL_TIMEOUT: contextvars.ContextVar[float | None] = contextvars.ContextVar("zeb_hf_timeout", default=None)


def _timeout_hook(request: Any) -> None:
    """httpx request hook: give requests made inside a backend call that backend's timeout, when they have none."""
    timeout = _CALL_TIMEOUT.get()
    if timeout is None:
        return
    current = request.extensions.get("timeout") or {}
    if all(value is None for value in current.values()):
        request.extensions["timeout"] = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}


@contextmanager
def _call_timeout(timeout: float) -> Iterator[None]:
    from huggingface_hub.utils import get_session

    hooks = get_session().event_hooks["request"]  # the live list: the client is shared and may be recreated
    if _timeout_hook not in hooks:
        hooks.append(_timeout_hook)
    reset = _CALL_TIMEOUT.set(timeout)
    try:
        yield
    finally:
        _CALL_TIMEOUT.reset(reset)


class HfBackend(Backend):  # history is the repo's git history: no `drop_history`
    commit_limited = True  # the Hub takes about 128 commits an hour per repo: workers pace their uploads

    def __init__(
        self,
        repo_id: str,
        repo_type: str = "model",
        endpoint: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        private: bool = True,
        min_commit_interval: float | None = None,
    ) -> None:
        repo_id = repo_id.strip("/")
        if not _REPO_ID.match(repo_id) or ".." in repo_id:
            raise StoreError(f"invalid Hub repo id {repo_id!r} (expected OWNER/REPO)")
        if repo_type not in REPO_TYPES:
            raise StoreError(f"invalid Hub repo type {repo_type!r} (expected one of {', '.join(REPO_TYPES)})")
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.timeout = float(timeout)
        self.private = bool(private)
        self.url = f"hf://{repo_id}"
        if min_commit_interval is None:
            host = (urlparse(self.endpoint).hostname or "").lower()
            min_commit_interval = 0.0 if host in LOCAL_HOSTS else HUB_COMMIT_INTERVAL
        self.min_commit_interval = float(min_commit_interval)
        self._token = token  # None: huggingface_hub looks it up (HF_TOKEN, saved login) on each request
        self._commit_lock = threading.Lock()
        self._last_commit = 0.0
        self.listing_page = LISTING_PAGE  # entries per tree call (the Hub's; tests make their server's smaller)
        self._large: set[str] = set()  # folders once listed at a page or more: `list_recent` lists less

        from huggingface_hub import HfApi

        self._api = HfApi(endpoint=self.endpoint, token=token, library_name="zeb")

    def __repr__(self) -> str:
        return f"HfBackend({self.url!r}, endpoint={self.endpoint!r})"

    # ------------------------------------------------------------ error translation
    def _call(self, what: str, target: str | None, fn: Callable[[], T]) -> T:
        """Run one Hub call with this backend's timeout, translating huggingface_hub / httpx errors."""
        try:
            with _call_timeout(self.timeout):
                return fn()
        except (StoreError, _Unwrapped):
            raise
        except Exception as exc:
            translated = self._translate(what, target, exc)
            if translated is None:
                raise
            raise translated from None

    def _where(self, target: str | None) -> str:
        return f"{self.url} ({target})" if target else self.url

    def _translate(self, what: str, target: str | None, exc: Exception) -> StoreError | None:
        import httpx2
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            HFValidationError,
            LocalTokenNotFoundError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        where = self._where(target)
        if isinstance(exc, OfflineModeIsEnabled):
            return StoreError(f"cannot {what} {where}: huggingface_hub offline mode is on (unset HF_HUB_OFFLINE)")
        if isinstance(exc, LocalTokenNotFoundError):
            return StoreError(f"cannot {what} {where}: no Hub token found; set HF_TOKEN or run `hf auth login`")
        if isinstance(exc, GatedRepoError):
            return StoreError(
                f"cannot {what} {where}: the repo is gated and the Hub token has not been granted access to it"
            )
        if isinstance(exc, RepositoryNotFoundError):
            return NotFound(
                f"Hub {self.repo_type} repo {self.repo_id} not found at {self.endpoint} (or the Hub token may not "
                f"access it; set HF_TOKEN); cannot {what} it"
            )
        if isinstance(exc, RevisionNotFoundError):
            return NotFound(f"revision not found in {self.url}: cannot {what} {where}")
        if isinstance(exc, RemoteEntryNotFoundError):
            return NotFound(f"{target or 'entry'} not found in {self.url}")
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                after = _retry_after(exc.response.headers if exc.response is not None else {})
                said = f" (it asks for {after:g}s)" if after is not None else ""
                return RateLimited(f"Hub {what} {where} was rate limited: HTTP 429{said}; try again later", after)
            if status == 408 or status >= 500:
                return StoreUnavailable(f"Hub {what} {where} failed: HTTP {status}; try again later")
            if status in (401, 403):
                return StoreError(
                    f"Hub {what} {where} was refused (HTTP {status}): check the Hub token (HF_TOKEN or "
                    f"`hf auth login`) and that it may {'write to' if _is_write(what) else 'read'} "
                    f"{self.repo_type} repo {self.repo_id}"
                )
            if status == 404:
                return NotFound(f"{where} not found (HTTP 404)")
            detail = (exc.server_message or "").strip().replace("\n", " ")[:200]
            return StoreError(f"Hub {what} {where} failed: HTTP {status}{': ' + detail if detail else ''}")
        if isinstance(exc, httpx2.TimeoutException):
            return StoreUnavailable(f"Hub {what} {where} timed out after {self.timeout:g}s ({type(exc).__name__})")
        if isinstance(exc, (httpx2.NetworkError, httpx2.RemoteProtocolError)):
            return StoreUnavailable(f"Hub {what} {where} failed: cannot reach {self.endpoint} ({type(exc).__name__})")
        if isinstance(exc, httpx2.HTTPError):
            return StoreError(f"Hub {what} {where} failed: {type(exc).__name__} (endpoint {self.endpoint})")
        if isinstance(exc, HFValidationError):
            return StoreError(f"Hub {what} {where} failed: {exc}")
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return StoreUnavailable(f"Hub {what} {where} failed: {type(exc).__name__}")
        return None

    # ------------------------------------------------------------ repo
    def exists(self) -> bool:
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        def info() -> bool:
            try:
                self._api.repo_info(self.repo_id, repo_type=self.repo_type, timeout=self.timeout)
            except GatedRepoError:
                return True
            except RepositoryNotFoundError:
                return False
            return True

        return self._call("check", None, info)

    def create(self) -> None:
        self._call(
            "create",
            None,
            lambda: self._api.create_repo(self.repo_id, repo_type=self.repo_type, exist_ok=True, private=self.private),
        )

    def head(self) -> str:
        """The commit sha `main` points at now."""
        info = self._call(
            "read head of",
            None,
            lambda: self._api.repo_info(self.repo_id, repo_type=self.repo_type, timeout=self.timeout),
        )
        if not info.sha:
            raise StoreError(f"the Hub did not say which commit {self.url} is at")
        return str(info.sha)

    # ------------------------------------------------------------ reads
    def _get(self, path: str, revision: str, max_bytes: int | None = None) -> tuple[bytes, str | None]:
        """(bytes, the commit sha the Hub served them from, when it says). Streamed, so that with `max_bytes` a
        larger file is refused by the reply's length before its body is read, or as soon as the body passes it."""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(self.repo_id, path, repo_type=self.repo_type, revision=revision, endpoint=self.endpoint)
        where = f"{path} in {self.url}"

        def get() -> tuple[bytes, str | None]:
            headers = build_hf_headers(token=self._token, library_name="zeb")
            with get_session().stream(
                "GET", url, headers=headers, timeout=self.timeout, follow_redirects=True
            ) as response:
                if response.is_error:
                    response.read()  # the error's body, for hf_raise_for_status
                hf_raise_for_status(response)
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and "Content-Encoding" not in response.headers:  # else it counts encoded bytes
                    check_read_size(where, int(length), max_bytes)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    check_read_size(where, size, max_bytes)
                    chunks.append(chunk)
                commit = None
                for hop in [*response.history, response]:  # the Hub's own reply carries it, not the CDN's
                    commit = hop.headers.get("X-Repo-Commit") or commit
                return b"".join(chunks), commit

        return self._call("read", path, get)

    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        check_path(path)
        try:
            return self._get(path, revision or "main", max_bytes)[0]
        except NotFound:
            at = f" at revision {revision}" if revision else ""
            raise NotFound(f"{path}{at} not found in {self.url}") from None

    def list(self, prefix: str = "") -> list[FileInfo]:
        prefix = prefix.strip("/")
        if prefix:
            check_path(prefix)
        return _file_infos(self._tree(prefix, recursive=True))

    def _tree(self, prefix: str, recursive: bool) -> builtins.list[Any]:
        from huggingface_hub.errors import RemoteEntryNotFoundError

        def tree() -> builtins.list[Any]:
            try:
                return list(
                    self._api.list_repo_tree(
                        self.repo_id, path_in_repo=prefix or None, recursive=recursive, repo_type=self.repo_type
                    )
                )
            except RemoteEntryNotFoundError:
                return []  # no such folder

        return self._call("list", prefix or None, tree)  # type: ignore[no-any-return]

    def list_recent(self, prefix: str, want: Callable[[str], bool]) -> Listing:
        """One recursive tree call while the folder fits in one page; once it did not, the folder's own level
        (one call) and each wanted sub-folder (one call each, per 1,000 files): the tree has no start-after."""
        from huggingface_hub.hf_api import RepoFolder

        prefix = prefix.strip("/")
        if prefix:
            check_path(prefix)
        if prefix not in self._large:
            entries = self._tree(prefix, recursive=True)
            if len(entries) >= self.listing_page:
                self._large.add(prefix)
            return split_listing(prefix, _file_infos(entries), want)
        entries = self._tree(prefix, recursive=False)
        folders = sorted(
            name
            for e in entries
            if isinstance(e, RepoFolder) and not (name := e.path.rsplit("/", 1)[-1]).startswith(".")
        )
        wanted = [f for f in folders if want(f)]
        within = [info for f in wanted for info in self.list(f"{prefix}/{f}" if prefix else f)]
        return Listing(_file_infos(entries), folders, within)

    # ------------------------------------------------------------ writes
    @contextmanager
    def _commit_slot(self) -> Iterator[None]:
        """One commit at a time per backend, at most one per `min_commit_interval` (the Hub's rate limit)."""
        with self._commit_lock:
            wait = self._last_commit + self.min_commit_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                yield
            finally:
                self._last_commit = time.monotonic()

    def _existing(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` are files at the head of main now."""
        wanted = set(paths)
        found: set[str] = set()

        def tree() -> None:
            for entry in self._api.list_repo_tree(self.repo_id, recursive=True, repo_type=self.repo_type):
                if entry.path in wanted:
                    found.add(entry.path)

        self._call("list", None, tree)
        return found

    def commit(
        self, puts: dict[str, bytes], deletes: Sequence[str] = (), message: str = "", history: bool = False
    ) -> Revision:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete
        from huggingface_hub.errors import RemoteEntryNotFoundError

        for path in [*puts, *deletes]:
            check_path(path)
        title, _, description = (message.strip() or DEFAULT_MESSAGE).partition("\n")
        deletes = list(dict.fromkeys(deletes))
        puts = {p: d for p, d in puts.items() if p not in set(deletes)}  # as elsewhere: a delete wins
        for attempt in range(3):

            def push() -> str:
                ops: list[Any] = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=bytes(d)) for p, d in puts.items()]
                ops += [CommitOperationDelete(path_in_repo=p, is_folder=False) for p in deletes]  # noqa: B023 - run now
                info = self._api.create_commit(
                    self.repo_id,
                    ops,
                    commit_message=title.strip() or DEFAULT_MESSAGE,
                    commit_description=description.strip() or None,
                    repo_type=self.repo_type,
                    revision="main",
                )
                return str(info.oid)

            try:
                with self._commit_slot():
                    oid = self._call("commit to", None, lambda: _unwrap(push, RemoteEntryNotFoundError))
                return Revision(oid, time.time(), title.strip() or DEFAULT_MESSAGE)
            except _Unwrapped:
                # The Hub refuses to delete a file that is not there; deleting it twice must be harmless.
                if not deletes or attempt == 2:
                    raise NotFound(f"a file to delete is not in {self.url}") from None
                deletes = sorted(self._existing(deletes))
        raise AssertionError("unreachable")

    def history(self, limit: int = 100) -> builtins.list[Revision]:  # `list` is also a method here
        commits = self._call(
            "read history of", None, lambda: self._api.list_repo_commits(self.repo_id, repo_type=self.repo_type)
        )
        return [Revision(c.commit_id, c.created_at.timestamp(), c.title) for c in commits[: max(0, limit)]]

    # ------------------------------------------------------------ compare-and-swap
    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        check_path(path)
        try:
            data, commit = self._get(path, "main")
            if commit and _SHA.match(commit):
                return data, commit
        except NotFound:
            pass
        # Missing (or served without its commit): pin the head first, then read at it, so bytes and token agree.
        head = self.head()
        try:
            return self._get(path, head)[0], head
        except NotFound:
            return None, head

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        from huggingface_hub import CommitOperationAdd
        from huggingface_hub.errors import HfHubHTTPError

        check_path(path)
        if token is None:  # "only if it does not exist"
            current, token = self.read_versioned(path)
            if current is not None:
                return False
        if not token or not _SHA.match(token):
            return False  # not a commit of this repo: the caller reads again
        op = CommitOperationAdd(path_in_repo=path, path_or_fileobj=bytes(data))

        def push() -> bool:
            try:
                info = self._api.create_commit(
                    self.repo_id,
                    [op],
                    commit_message=f"zeb update {path}",
                    repo_type=self.repo_type,
                    revision="main",
                    parent_commit=token,
                )
            except HfHubHTTPError as exc:
                if exc.response is not None and exc.response.status_code in CONFLICT_STATUSES:
                    return False  # a commit has happened since `token`
                raise
            remote, local = getattr(op, "_remote_oid", None), getattr(op, "_local_oid", None)
            if remote is not None and remote == local:
                # The Hub already held these bytes, so huggingface_hub sent no commit (and no parent check).
                return str(info.oid) == token
            return True

        with self._commit_slot():
            return self._call("commit to", path, push)


def _file_infos(entries: Sequence[Any]) -> builtins.list[FileInfo]:
    """The files of tree entries, internal paths and the Hub's own .gitattributes left out, sorted by path."""
    from huggingface_hub.hf_api import RepoFile

    out: builtins.list[FileInfo] = []
    for entry in entries:
        if not isinstance(entry, RepoFile):
            continue
        rel = entry.path
        if is_internal(rel) or any(part.startswith(".") for part in rel.split("/")):
            continue  # our bookkeeping, and the Hub's own .gitattributes
        commit = entry.last_commit  # only in expanded listings, which we do not ask for (see the module's doc)
        modified = commit.date.timestamp() if commit is not None and commit.date is not None else 0.0
        out.append(FileInfo(rel, int(entry.size), modified))
    out.sort(key=lambda f: f.path)
    return out


def _retry_after(headers: Any) -> float | None:
    """Seconds a 429 asks the caller to wait: its `Retry-After` (seconds or an HTTP date), else the reset time of
    an exhausted `RateLimit` header (the IETF draft the Hub follows); None when it says neither. At most a day."""
    from email.utils import parsedate_to_datetime

    from huggingface_hub.utils import parse_ratelimit_headers

    value = str(headers.get("Retry-After") or "").strip()
    seconds: float | None = None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            seconds = None
    if seconds is None:
        info = parse_ratelimit_headers(headers)
        seconds = float(info.reset_in_seconds) if info is not None and info.remaining == 0 else None
    return None if seconds is None or seconds != seconds else min(max(seconds, 0.0), 86400.0)


class _Unwrapped(Exception):
    pass


def _unwrap(fn: Callable[[], T], kind: type[Exception]) -> T:
    """Turn one huggingface_hub error into a private marker, so `_call` does not translate it."""
    try:
        return fn()
    except kind:
        raise _Unwrapped() from None


def _is_write(what: str) -> bool:
    return what in ("commit to", "create")


__all__ = ["HfBackend"]
