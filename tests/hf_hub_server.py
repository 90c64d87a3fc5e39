"""A small, test-only HuggingFace Hub: the subset of the Hub's HTTP API that huggingface_hub's `HfApi` calls to
create a repo, read its info, preupload and commit files, list its tree and commits, and download files.

    with hf_hub_server() as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)

It runs FastAPI under uvicorn on 127.0.0.1 (a free port) in a background thread and keeps everything in memory.
Paths, status codes, error headers (`X-Error-Code`, `X-Error-Message`) and commit semantics follow the real
Hub: each repo is a list of commits (full snapshots, 40-hex shas), `main` is the newest, a commit whose
`parentCommit` is not the head is refused with 412, deleting a missing file is a 404 EntryNotFound; any request
the server does not know is answered 404 and recorded in `unhandled`.

Large files take the Hub's LFS path, as on huggingface.co. The preupload call answers "lfs" for files the repo's
`.gitattributes` sends to LFS (`*.safetensors`, `*.bin`) or larger than 10 MiB, "regular" for the rest; such a
file committed inline is refused. huggingface_hub then asks the git-lfs batch endpoint
(`{repo}.git/info/lfs/objects/batch`, basic transfer only) where to put each object, PUTs it to the signed URL
it gets, on a second port that stands for the Hub's storage/CDN host, has the Hub verify it
(`.../objects/verify`) and commits an `lfsFile` entry naming its SHA-256. Reads of an LFS file are answered
with a 302 to a signed blob URL on that second host, carrying `X-Repo-Commit`, `ETag` (of the pointer file),
`X-Linked-Etag` (the SHA-256) and `X-Linked-Size`, as the Hub does; the second host refuses any request that
carries an `Authorization` header (the token must not leave the Hub) or a bad signature, and the tree listing
shows `lfs` entries. huggingface_hub 2.x would upload LFS files through Xet (`hf_xet`) whenever that package is
installed, whatever the server says (`_commit_api._upload_files` asks only `is_xet_available()`), so
`hf_hub_server()` sets `huggingface_hub.constants.HF_HUB_DISABLE_XET` while it runs; an Xet call would land in
`unhandled`.

`hub.calls` counts requests per route ("preupload", "commit", "lfs-batch", "cdn-upload", "lfs-verify", "tree",
"resolve", "cdn-download", "info", "commits", ...), so tests can hold clients to the Hub's rate limits.

Writes need `Authorization: Bearer <hub.token>`; `hub.read_token` may only read; any other token is refused
with 401 "Invalid credentials in Authorization header" everywhere. Public repos can be read anonymously.

Faults: `hub.fail_next(status, count, match=...)` answers the next `count` requests (whose "METHOD /path"
contains `match`, if given) with `status`; `hub.fail_rate = p` answers a random 429/500/503 with probability p;
`hub.delay = s` holds the reply to every request (or to those matching `hub.delay_match`) `s` seconds after
serving it, so a client that times out has lost the reply of a request that did happen. 429s carry
`Retry-After: hub.retry_after` (0 by default, to keep clients that honour it fast).

Commit rate limit, as the Hub's (about 128 commits an hour per repo): `hub.limit_commits(n, window_s)` refuses a
commit to a repo that already took `n` commits in the last `window_s` seconds (a sliding window) with 429 and
`Retry-After`: the whole seconds until the oldest of them leaves the window. Refused commits do not count;
`hub.commits_refused` counts them per repo id. `clear_faults()` lifts the limit.
Nothing here talks to huggingface.co.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

USER = "tester"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50
COMMITS_PAGE = 50
REGULAR_MAX = 10 * 1024 * 1024  # the Hub takes larger files through LFS only
CDN = "/cdn/"  # paths served on the second (storage/CDN) port, and only there
ROUTES = (  # label, pattern on "METHOD /path": what `hub.calls` counts
    ("cdn-upload", r"^PUT /cdn/upload/"),
    ("cdn-download", r"^(GET|HEAD) /cdn/blob/"),
    ("lfs-batch", r"^POST /.*\.git/info/lfs/objects/batch$"),
    ("lfs-verify", r"^POST /.*\.git/info/lfs/objects/verify$"),
    ("preupload", r"^POST /api/\w+/[^/]+/[^/]+/preupload/"),
    ("commit", r"^POST /api/\w+/[^/]+/[^/]+/commit/"),
    ("tree", r"^GET /api/\w+/[^/]+/[^/]+/tree/"),
    ("commits", r"^GET /api/\w+/[^/]+/[^/]+/commits/"),
    ("resolve", r"^(GET|HEAD) /.*/resolve/"),
    ("create", r"^POST /api/repos/create$"),
    ("delete", r"^DELETE /api/repos/delete$"),
    ("info", r"^GET /api/\w+/[^/]+/[^/]+(/revision/.*)?$"),
)


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer file git stores in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256_hex(data)}\nsize {len(data)}\n".encode()


def lfs_patterns(files: dict[str, bytes]) -> list[str]:
    """The patterns `.gitattributes` sends to LFS (`PATTERN filter=lfs ...`)."""
    text = files.get(".gitattributes", b"").decode("utf-8", "replace")
    return [
        parts[0]
        for parts in (line.split() for line in text.splitlines())
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]
    ]


def wants_lfs(path: str, size: int, patterns: list[str]) -> bool:
    """Whether the Hub takes `path` through LFS: large, or matched by `.gitattributes` (a pattern without a slash
    matches the file name at any depth, as in git)."""
    name = path.rsplit("/", 1)[-1]
    return size > REGULAR_MAX or any(fnmatch.fnmatchcase(path if "/" in pat else name, pat) for pat in patterns)


def route_of(line: str) -> str:
    for label, pattern in ROUTES:
        if re.search(pattern, line):
            return label
    return "other"


def iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class Commit:
    id: str
    title: str
    message: str
    time: float
    files: dict[str, bytes]
    lfs: frozenset[str] = frozenset()  # the paths stored as LFS objects (their git blob is a pointer file)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: float
    commits: list[Commit] = field(default_factory=list)  # oldest first; main is the last
    objects: dict[str, bytes] = field(default_factory=dict)  # LFS storage: SHA-256 -> bytes, uploaded or not committed

    @property
    def head(self) -> Commit:
        return self.commits[-1]


class HfHubServer:
    def __init__(self, seed: int = 0) -> None:
        self.token = "hf_test_" + secrets.token_hex(12)
        self.read_token = "hf_read_" + secrets.token_hex(12)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[str] = []
        self.calls: Counter[str] = Counter()  # requests per route (see ROUTES), faults included
        self.unhandled: list[str] = []
        self.fail_rate = 0.0
        self.delay = 0.0
        self.delay_match: str | None = None
        self.retry_after = 0
        self.tree_page_size = TREE_PAGE
        self.commits_page_size = COMMITS_PAGE
        self.endpoint = ""
        self.cdn_endpoint = ""  # the storage/CDN host: LFS uploads and downloads, by signed URL
        self.cdn_port = -1
        self._secret = secrets.token_bytes(16)
        self.commit_limit: tuple[int, float] | None = None  # (commits, window_s): see limit_commits
        self.commits_refused: Counter[str] = Counter()  # repo id -> commits refused by the limit
        self._commit_times: dict[tuple[str, str], list[float]] = {}  # (type, repo id) -> its commits' times
        self._faults: list[list[Any]] = []  # [status, remaining, match]
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._counter = 0
        self.app = self._build_app()

    # ------------------------------------------------------------ test controls
    def fail_next(self, status: int, count: int = 1, match: str | None = None) -> None:
        """Answer the next `count` requests (those whose "METHOD /path" contains `match`) with `status`."""
        with self._lock:
            self._faults.append([int(status), int(count), match])

    @contextmanager
    def failing(self, status: int, match: str) -> Iterator[None]:
        """`fail_next(status, match=match)` for the block, the faults cleared after it whatever it raised."""
        self.fail_next(status, match=match)
        try:
            yield
        finally:
            self.clear_faults()

    def limit_commits(self, count: int | None, window_s: float = 3600.0) -> None:
        """Refuse (429, Retry-After) a repo's commit past `count` commits in the last `window_s` seconds; None:
        no limit. Commits made before the call count too."""
        with self._lock:
            self.commit_limit = None if count is None else (int(count), float(window_s))

    def _take_commit_slot(self, repo: Repo) -> None:
        """Count a commit to `repo` against the limit, or raise its 429 (called under the lock)."""
        key = (repo.repo_type, repo.repo_id)
        now = time.monotonic()
        times = self._commit_times.setdefault(key, [])
        if self.commit_limit is not None:
            count, window = self.commit_limit
            times[:] = [t for t in times if now - t < window]
            if len(times) >= count:
                self.commits_refused[repo.repo_id] += 1
                retry = max(1, math.ceil(times[-count] + window - now))
                raise HubError(
                    429,
                    f"You have exceeded the rate limit for repository commits ({count} per {window:g} s)",
                    None,
                    {"Retry-After": str(retry)},
                )
        times.append(now)

    def clear_faults(self) -> None:
        with self._lock:
            self.commit_limit = None
            self._faults.clear()
            self.fail_rate = 0.0
            self.delay = 0.0
            self.delay_match = None

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            return dict(repo.commits[self._resolve(repo, revision)].files)

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        """Oldest first."""
        with self._lock:
            return list(self.repos[(repo_type, repo_id)].commits)

    def lfs_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> set[str]:
        """The paths stored as LFS objects at `revision`."""
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            return set(repo.commits[self._resolve(repo, revision)].lfs)

    def count_calls(self) -> Counter[str]:
        """A copy of the per-route request counts; subtract two of them to count the calls in between."""
        with self._lock:
            return Counter(self.calls)

    # ------------------------------------------------------------ state helpers
    def _access(self, request: Any) -> str | None:
        """'write', 'read' or None (anonymous); any other token is refused, as the Hub does."""
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value == self.token:
            return "write"
        if scheme.lower() == "bearer" and value == self.read_token:
            return "read"
        raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, rtype: str, repo_id: str, access: str | None) -> Repo:
        repo_type = TYPES.get(rtype)
        repo = self.repos.get((repo_type, repo_id)) if repo_type else None
        if repo is None or (repo.private and access is None):
            if access is None:  # the Hub answers 401 to anonymous callers for missing and private repos alike
                raise HubError(401, "Invalid username or password.", "RepoNotFound")
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, rtype: str, repo_id: str, access: str | None) -> Repo:
        repo = self._repo(rtype, repo_id, access)
        if access is None:
            raise HubError(401, "You must be authenticated to write to this repo")
        if access != "write":
            raise HubError(403, f"You don't have the rights to create a commit on {repo_id}: this token is read-only")
        return repo

    @staticmethod
    def _resolve(repo: Repo, revision: str) -> int:
        rev = unquote(revision)
        if rev in ("main", "refs/heads/main"):
            return len(repo.commits) - 1
        if 7 <= len(rev) <= 40 and all(c in "0123456789abcdef" for c in rev):
            for i in range(len(repo.commits) - 1, -1, -1):
                if repo.commits[i].id.startswith(rev):
                    return i
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _new_commit(
        self, repo: Repo, title: str, message: str, files: dict[str, bytes], lfs: frozenset[str] = frozenset()
    ) -> Commit:
        self._counter += 1
        digest = hashlib.sha1()
        parent = repo.commits[-1].id if repo.commits else ""
        digest.update(
            (
                f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n{message}\n{time.time_ns()}\n{self._counter}\n"
            ).encode()
        )
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha(files[path])}\n".encode())
        commit = Commit(digest.hexdigest(), title, message, time.time(), files, lfs)
        repo.commits.append(commit)
        return commit

    # ------------------------------------------------------------ LFS and the storage host
    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def _check_signature(self, request: Any, *parts: str) -> None:
        """Signed URLs on the storage host: a good `sig`, and no Authorization header (as on S3/CloudFront, one
        auth mechanism per request; a client that forwards the Hub token there leaks it)."""
        if request.headers.get("authorization"):
            raise HubError(400, "Only one auth mechanism allowed; a signed URL takes no Authorization header")
        if not hmac.compare_digest(request.query_params.get("sig", ""), self._sign(*parts)):
            raise HubError(403, "Request has expired or the signature does not match")

    def _blob_url(self, repo: Repo, oid: str) -> str:
        key = f"{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
        return f"{self.cdn_endpoint}{CDN}blob/{key}/{oid}?sig={self._sign('blob', repo.repo_type, repo.repo_id, oid)}"

    def _etag(self, commit: Commit, path: str) -> str:
        """The git blob id of a file as the Hub lists it: of the pointer file for LFS files."""
        data = commit.files[path]
        return git_blob_sha(lfs_pointer(data) if path in commit.lfs else data)

    def _repo_url(self, base: str, repo: Repo) -> str:
        return f"{base.rstrip('/')}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _last_commit(self, repo: Repo, upto: int, prefix: str, is_dir: bool) -> Commit:
        """The newest commit at or before `upto` that changed `prefix` (a file, or everything under a folder)."""

        def view(i: int) -> Any:
            files = repo.commits[i].files
            if not is_dir:
                return files.get(prefix)
            return sorted((p, git_blob_sha(d)) for p, d in files.items() if p.startswith(prefix + "/"))

        now = view(upto)
        for i in range(upto, 0, -1):
            if view(i - 1) != now:
                return repo.commits[i]
        return repo.commits[0]

    # ------------------------------------------------------------ the app
    def _build_app(self) -> Any:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        hub = self

        def error_response(err: HubError) -> Response:
            headers = {"X-Error-Message": err.message, "X-Request-Id": str(uuid.uuid4()), **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            return JSONResponse({"error": err.message}, status_code=err.status, headers=headers)

        @app.exception_handler(HubError)
        async def on_hub_error(request: Request, err: HubError) -> Response:
            return error_response(err)

        @app.middleware("http")
        async def faults(request: Request, call_next: Any) -> Response:
            line = f"{request.method} {request.url.path}"
            on_cdn = (request.scope.get("server") or ("", 0))[1] == hub.cdn_port
            with hub._lock:
                hub.requests.append(line)
                hub.calls[route_of(line)] += 1
                delay = hub.delay if hub.delay_match is None or hub.delay_match in line else 0.0
                if on_cdn != request.url.path.startswith(CDN):  # each host serves its own paths only
                    hub.unhandled.append(f"{line} (on the {'storage' if on_cdn else 'Hub'} host)")
                    return JSONResponse({"error": "Not found"}, status_code=404)
            status = None
            with hub._lock:
                for fault in hub._faults:
                    if fault[2] is None or fault[2] in line:
                        status = fault[0]
                        fault[1] -= 1
                        if fault[1] <= 0:
                            hub._faults.remove(fault)
                        break
                if status is None and hub.fail_rate > 0 and hub._rng.random() < hub.fail_rate:
                    status = hub._rng.choice((429, 500, 503))
            if status is not None:
                headers = {"Retry-After": str(hub.retry_after)} if status == 429 else {}
                text = {429: "Too Many Requests", 500: "Internal Error", 502: "Bad Gateway", 503: "Service Unavailable"}
                return error_response(HubError(status, text.get(status, f"Injected HTTP {status}"), None, headers))
            response = await call_next(request)
            response.headers.setdefault("X-Request-Id", str(uuid.uuid4()))
            if delay > 0:  # served, but the reply is late: a client that times out has lost it
                await asyncio.sleep(delay)
            return response

        # -------------------------------------------------------- repos
        @app.post("/api/repos/create")
        async def create_repo(request: Request) -> Response:
            access = hub._access(request)
            if access is None:
                raise HubError(401, "You must be authenticated to create a repo")
            if access != "write":
                raise HubError(403, "You don't have the rights to create a repo: this token is read-only")
            body = await request.json()
            name, org = body.get("name"), body.get("organization") or USER
            repo_type = body.get("type") or "model"
            if not name or repo_type not in URL_PREFIX:
                raise HubError(400, "Invalid repo name or type")
            repo_id = f"{org}/{name}"
            private = body.get("visibility") == "private" or bool(body.get("private"))
            base = str(request.base_url)
            with hub._lock:
                if (repo_type, repo_id) in hub.repos:
                    repo = hub.repos[(repo_type, repo_id)]
                    return JSONResponse(
                        {"error": f"You already created this {repo_type} repo", "url": hub._repo_url(base, repo)},
                        status_code=409,
                    )
                repo = Repo(repo_type, repo_id, private, time.time())
                hub.repos[(repo_type, repo_id)] = repo
                hub._new_commit(repo, "initial commit", "", {".gitattributes": GITATTRIBUTES})
            return JSONResponse({"url": hub._repo_url(base, repo), "name": repo_id, "id": uuid.uuid4().hex[:24]})

        @app.delete("/api/repos/delete")
        async def delete_repo(request: Request) -> Response:
            access = hub._access(request)
            body = await request.json()
            repo_id = f"{body.get('organization') or USER}/{body.get('name')}"
            rtype = (body.get("type") or "model") + "s"
            with hub._lock:
                hub._writable(rtype, repo_id, access)
                del hub.repos[(TYPES[rtype], repo_id)]
            return Response(status_code=200)

        def info(request: Request, rtype: str, repo_id: str, revision: str) -> Response:
            access = hub._access(request)
            with hub._lock:
                repo = hub._repo(rtype, repo_id, access)
                commit = repo.commits[hub._resolve(repo, revision)]
                body = {
                    "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                    "id": repo_id,
                    "author": repo_id.split("/")[0],
                    "sha": commit.id,
                    "lastModified": iso(commit.time),
                    "createdAt": iso(repo.created),
                    "private": repo.private,
                    "gated": False,
                    "disabled": False,
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                    "siblings": [{"rfilename": p} for p in sorted(commit.files)],
                }
            if repo.repo_type == "model":
                body["modelId"] = repo_id
            return JSONResponse(body)

        @app.get("/api/{rtype}/{ns}/{name}")
        async def repo_info(request: Request, rtype: str, ns: str, name: str) -> Response:
            return info(request, rtype, f"{ns}/{name}", "main")

        @app.get("/api/{rtype}/{ns}/{name}/revision/{revision}")
        async def repo_info_at(request: Request, rtype: str, ns: str, name: str, revision: str) -> Response:
            return info(request, rtype, f"{ns}/{name}", revision)

        @app.post("/api/validate-yaml")
        async def validate_yaml(request: Request) -> Response:
            await request.body()
            return JSONResponse({"errors": [], "warnings": []})

        # -------------------------------------------------------- uploads
        @app.post("/api/{rtype}/{ns}/{name}/preupload/{revision}")
        async def preupload(request: Request, rtype: str, ns: str, name: str, revision: str) -> Response:
            access = hub._access(request)
            body = await request.json()
            with hub._lock:
                repo = hub._writable(rtype, f"{ns}/{name}", access)
                commit = repo.commits[hub._resolve(repo, revision)]
                patterns = lfs_patterns(commit.files)
                out = []
                for item in body.get("files", []):
                    path, size = item["path"], int(item.get("size", 0))
                    mode = "lfs" if wants_lfs(path, size, patterns) else "regular"
                    entry: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
                    if path in commit.files:  # as the Hub: the SHA-256 for LFS files, the git blob id otherwise
                        data = commit.files[path]
                        entry["oid"] = sha256_hex(data) if path in commit.lfs else git_blob_sha(data)
                    out.append(entry)
            return JSONResponse({"files": out, "commitOid": commit.id})

        def lfs_batch(request: Request, rtype: str, repo_id: str, body: dict[str, Any]) -> Response:
            access = hub._access(request)
            if body.get("operation") != "upload":
                raise HubError(400, "Only the upload operation is served here")
            if "basic" not in (body.get("transfers") or ["basic"]):
                raise HubError(422, "The basic transfer adapter is the only one offered")
            if body.get("hash_algo", "sha256") != "sha256":
                raise HubError(422, "Only sha256 object ids are supported")
            with hub._lock:
                repo = hub._writable(rtype, repo_id, access)
                hub._resolve(repo, str((body.get("ref") or {}).get("name") or "main"))
                prefix = f"{hub.endpoint}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects"
                objects = []
                for obj in body.get("objects") or []:
                    oid, size = obj.get("oid"), obj.get("size")
                    if not (isinstance(oid, str) and re.fullmatch(r"[0-9a-f]{64}", oid) and isinstance(size, int)):
                        objects.append(
                            {
                                "oid": str(oid),
                                "size": int(size or 0),
                                "error": {"code": 422, "message": "Invalid object id or size"},
                            }
                        )
                        continue
                    stored = repo.objects.get(oid)
                    if stored is not None and len(stored) == size:  # stored already: nothing to upload
                        objects.append({"oid": oid, "size": size})
                        continue
                    sig = hub._sign("upload", repo.repo_type, repo.repo_id, oid, str(size))
                    href = (
                        f"{hub.cdn_endpoint}{CDN}upload/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/{oid}"
                        f"?size={size}&sig={sig}"
                    )
                    actions = {"upload": {"href": href, "expires_in": 900}, "verify": {"href": f"{prefix}/verify"}}
                    objects.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
            return JSONResponse(
                {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                media_type="application/vnd.git-lfs+json",
            )

        def lfs_verify(request: Request, rtype: str, repo_id: str, body: dict[str, Any]) -> Response:
            access = hub._access(request)
            with hub._lock:
                repo = hub._writable(rtype, repo_id, access)
                data = repo.objects.get(str(body.get("oid")))
            if data is None or len(data) != body.get("size"):
                raise HubError(404, f"LFS object {body.get('oid')} of size {body.get('size')} was not uploaded")
            return JSONResponse({"success": True}, media_type="application/vnd.git-lfs+json")

        for url_prefix, lfs_type in (("/datasets", "datasets"), ("/spaces", "spaces"), ("", "models")):

            async def batch(request: Request, ns: str, repo: str, rtype: str = lfs_type) -> Response:
                return lfs_batch(request, rtype, f"{ns}/{repo.removesuffix('.git')}", await request.json())

            async def verify(request: Request, ns: str, repo: str, rtype: str = lfs_type) -> Response:
                return lfs_verify(request, rtype, f"{ns}/{repo.removesuffix('.git')}", await request.json())

            app.add_api_route(f"{url_prefix}/{{ns}}/{{repo}}/info/lfs/objects/batch", batch, methods=["POST"])
            app.add_api_route(f"{url_prefix}/{{ns}}/{{repo}}/info/lfs/objects/verify", verify, methods=["POST"])

        @app.put("/cdn/upload/{key:path}")
        async def cdn_upload(request: Request, key: str) -> Response:
            """A signed PUT of one LFS object (S3 in real life); the bytes must hash to the object id."""
            head, _, oid = key.rpartition("/")
            rtype, repo_id = head.split("/", 1) if head.startswith(("datasets/", "spaces/")) else ("models", head)
            size = request.query_params.get("size", "")
            hub._check_signature(request, "upload", TYPES.get(rtype, ""), repo_id, oid, size)
            data = await request.body()
            if len(data) != int(size) or sha256_hex(data) != oid:
                raise HubError(400, f"Uploaded {len(data)} bytes do not match object {oid} of size {size}")
            with hub._lock:
                repo = hub.repos.get((TYPES.get(rtype, ""), repo_id))
                if repo is None:
                    raise HubError(404, "NoSuchBucket")
                repo.objects[oid] = data
            return Response(status_code=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

        @app.api_route("/cdn/blob/{key:path}", methods=["GET", "HEAD"])
        async def cdn_blob(request: Request, key: str) -> Response:
            """A signed read of one LFS object (the Hub's CDN in real life)."""
            head, _, oid = key.rpartition("/")
            rtype, repo_id = head.split("/", 1) if head.startswith(("datasets/", "spaces/")) else ("models", head)
            hub._check_signature(request, "blob", TYPES.get(rtype, ""), repo_id, oid)
            with hub._lock:
                repo = hub.repos.get((TYPES.get(rtype, ""), repo_id))
                data = None if repo is None else repo.objects.get(oid)
            if data is None:
                raise HubError(404, "NoSuchKey")
            return ranged(request, data, {"ETag": f'"{oid}"', "Accept-Ranges": "bytes"})

        @app.post("/api/{rtype}/{ns}/{name}/commit/{revision}")
        async def commit(request: Request, rtype: str, ns: str, name: str, revision: str) -> Response:
            access = hub._access(request)
            raw = await request.body()
            try:
                lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
            except ValueError:
                raise HubError(400, "Invalid ndjson body") from None
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "The first line must be the commit header")
            header = lines[0].get("value") or {}
            summary = str(header.get("summary") or "").strip()
            if not summary:
                raise HubError(400, "A commit summary is required")
            base = str(request.base_url)
            with hub._lock:
                repo = hub._writable(rtype, f"{ns}/{name}", access)
                if unquote(revision) not in ("main", "refs/heads/main"):
                    raise HubError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
                parent = header.get("parentCommit")
                if parent is not None and parent != repo.head.id:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
                files = dict(repo.head.files)
                lfs = set(repo.head.lfs)
                patterns = lfs_patterns(files)
                for line in lines[1:]:
                    key, value = line.get("key"), line.get("value") or {}
                    path = str(value.get("path", ""))
                    if not path or path.startswith("/") or ".." in path.split("/"):
                        raise HubError(400, f"Invalid path {path!r}")
                    if key == "file":
                        if value.get("encoding") != "base64":
                            raise HubError(400, "Only base64-encoded file contents are supported")
                        try:
                            files[path] = base64.b64decode(value.get("content", ""), validate=True)
                        except ValueError:
                            raise HubError(400, f"Invalid base64 content for {path}") from None
                        if wants_lfs(path, len(files[path]), patterns):
                            raise HubError(400, f"{path} must be uploaded through LFS (see .gitattributes)")
                        lfs.discard(path)
                    elif key == "deletedFile":
                        if path not in files:
                            raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                        del files[path]
                        lfs.discard(path)
                    elif key == "deletedFolder":
                        folder = path.rstrip("/") + "/"
                        gone = [p for p in files if p.startswith(folder)]
                        if not gone:
                            raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                        for p in gone:
                            del files[p]
                            lfs.discard(p)
                    elif key == "lfsFile":
                        data = repo.objects.get(str(value.get("oid")))
                        if value.get("algo", "sha256") != "sha256" or data is None:
                            raise HubError(422, f"LFS object {value.get('oid')} for {path} was never uploaded")
                        files[path] = data
                        lfs.add(path)
                    else:
                        raise HubError(400, f"Unknown commit operation {key!r}")
                hub._take_commit_slot(repo)
                new = hub._new_commit(repo, summary, str(header.get("description") or ""), files, frozenset(lfs))
                url = f"{hub._repo_url(base, repo)}/commit/{new.id}"
            return JSONResponse({"success": True, "commitOid": new.id, "commitUrl": url, "hookOutput": ""})

        # -------------------------------------------------------- listings
        def tree(request: Request, rtype: str, repo_id: str, revision: str, path: str) -> Response:
            access = hub._access(request)
            q = request.query_params
            recursive = q.get("recursive", "false").lower() in ("1", "true")
            expand = q.get("expand", "false").lower() in ("1", "true")
            start = int(base64.urlsafe_b64decode(q["cursor"]).decode()) if q.get("cursor") else 0
            base = path.strip("/")
            with hub._lock:
                repo = hub._repo(rtype, repo_id, access)
                index = hub._resolve(repo, revision)
                at = repo.commits[index]
                files = at.files
                under = {p: d for p, d in files.items() if not base or p.startswith(base + "/")}
                if base and not under:
                    raise HubError(404, f"Entry not found: {base}", "EntryNotFound")
                entries: dict[str, dict[str, Any]] = {}
                for p, data in under.items():
                    rest = p[len(base) + 1 :] if base else p
                    parts = rest.split("/")
                    prefix = base
                    for part in parts[:-1]:  # the folders on the way
                        prefix = f"{prefix}/{part}" if prefix else part
                        entries.setdefault(prefix, {"type": "directory", "path": prefix, "size": 0})
                        if not recursive:
                            break
                    if recursive or len(parts) == 1:
                        entries[p] = {"type": "file", "path": p, "size": len(data), "oid": hub._etag(at, p)}
                        if p in at.lfs:
                            pointer = lfs_pointer(data)
                            entries[p]["lfs"] = {
                                "oid": sha256_hex(data),
                                "size": len(data),
                                "pointerSize": len(pointer),
                            }
                ordered = [entries[k] for k in sorted(entries)]
                page = hub.tree_page_size if not expand else min(hub.tree_page_size, TREE_PAGE_EXPANDED)
                chunk = ordered[start : start + page]
                for entry in chunk:
                    if entry["type"] == "directory":
                        listing = sorted(
                            (p, git_blob_sha(d)) for p, d in files.items() if p.startswith(entry["path"] + "/")
                        )
                        entry["oid"] = hashlib.sha1(repr(listing).encode()).hexdigest()
                    if expand:
                        last = hub._last_commit(repo, index, entry["path"], entry["type"] == "directory")
                        entry["lastCommit"] = {"id": last.id, "title": last.title, "date": iso(last.time)}
            headers = {}
            if start + page < len(ordered):
                cursor = base64.urlsafe_b64encode(str(start + page).encode()).decode()
                headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'
            return JSONResponse(chunk, headers=headers)

        @app.get("/api/{rtype}/{ns}/{name}/tree/{revision}")
        async def tree_root(request: Request, rtype: str, ns: str, name: str, revision: str) -> Response:
            return tree(request, rtype, f"{ns}/{name}", revision, "")

        @app.get("/api/{rtype}/{ns}/{name}/tree/{revision}/{path:path}")
        async def tree_path(request: Request, rtype: str, ns: str, name: str, revision: str, path: str) -> Response:
            return tree(request, rtype, f"{ns}/{name}", revision, path)

        @app.get("/api/{rtype}/{ns}/{name}/commits/{revision}")
        async def list_commits(request: Request, rtype: str, ns: str, name: str, revision: str) -> Response:
            access = hub._access(request)
            page = int(request.query_params.get("p", "0") or 0)
            with hub._lock:
                repo = hub._repo(rtype, f"{ns}/{name}", access)
                index = hub._resolve(repo, revision)
                newest_first = repo.commits[: index + 1][::-1]
                size = hub.commits_page_size
                chunk = newest_first[page * size : (page + 1) * size]
                body = [
                    {
                        "id": c.id,
                        "title": c.title,
                        "message": c.message,
                        "date": iso(c.time),
                        "authors": [{"user": USER, "avatar": ""}],
                    }
                    for c in chunk
                ]
            headers = {}
            if (page + 1) * size < len(newest_first):
                headers["Link"] = f'<{request.url.include_query_params(p=page + 1)}>; rel="next"'
            return JSONResponse(body, headers=headers)

        # -------------------------------------------------------- downloads
        def resolve(request: Request, rtype: str, repo_id: str, revision: str, path: str) -> Response:
            access = hub._access(request)
            with hub._lock:
                repo = hub._repo(rtype, repo_id, access)
                commit = repo.commits[hub._resolve(repo, revision)]
                data = commit.files.get(path)
            if data is None:
                raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.id})
            headers = {
                "X-Repo-Commit": commit.id,
                "ETag": f'"{hub._etag(commit, path)}"',
                "Accept-Ranges": "bytes",
                "Content-Disposition": f"inline; filename*=UTF-8''{path.rsplit('/', 1)[-1]}",
                "Cache-Control": "private, max-age=0, must-revalidate"
                if repo.private
                else "public, max-age=0, must-revalidate",
            }
            if path in commit.lfs:  # the Hub answers with a redirect to its CDN, the file's facts in the headers
                location = hub._blob_url(repo, sha256_hex(data))
                headers.update(
                    {
                        "Location": location,
                        "X-Linked-Etag": f'"{sha256_hex(data)}"',
                        "X-Linked-Size": str(len(data)),
                        "Content-Type": "text/plain; charset=utf-8",
                    }
                )
                del headers["Accept-Ranges"]
                body = b"" if request.method == "HEAD" else f"Found. Redirecting to {location}".encode()
                return Response(body, status_code=302, headers=headers)
            return ranged(request, data, headers)

        def ranged(request: Request, data: bytes, headers: dict[str, str]) -> Response:
            """`data` whole, or the byte range the request asks for (206), or 416."""
            status = 200
            rng = request.headers.get("range", "")
            if rng.startswith("bytes=") and "," not in rng:
                first, _, last = rng[6:].partition("-")
                size = len(data)
                lo, hi = (size - int(last), size - 1) if not first else (int(first), int(last) if last else size - 1)
                if lo >= size or lo < 0 or hi < lo:
                    raise HubError(416, "Range Not Satisfiable", None, {"Content-Range": f"bytes */{size}"})
                hi = min(hi, size - 1)
                headers["Content-Range"] = f"bytes {lo}-{hi}/{size}"
                data, status = data[lo : hi + 1], 206
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(data))
                return Response(status_code=status, headers=headers, media_type="application/octet-stream")
            return Response(data, status_code=status, headers=headers, media_type="application/octet-stream")

        for prefix, rtype in (("/datasets", "datasets"), ("/spaces", "spaces"), ("", "models")):

            def handler(request: Request, ns: str, name: str, revision: str, path: str, rtype: str = rtype) -> Response:
                return resolve(request, rtype, f"{ns}/{name}", revision, path)

            app.add_api_route(
                f"{prefix}/{{ns}}/{{name}}/resolve/{{revision}}/{{path:path}}", handler, methods=["GET", "HEAD"]
            )

        @app.api_route("/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
        async def unknown(request: Request, rest: str) -> Response:
            with hub._lock:
                hub.unhandled.append(f"{request.method} {request.url.path}")
            return JSONResponse({"error": "Sorry, we can't find the page you are looking for."}, status_code=404)

        return app


def _free_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on sockets whose proto says TCP, and
    # without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def hf_hub_server(seed: int = 0) -> Iterator[HfHubServer]:
    """Start a fresh in-memory Hub on 127.0.0.1 (and its storage/CDN host on a second port), with huggingface_hub's
    Xet uploads off, and stop it (thread joined, ports closed, the Xet setting restored) on exit."""
    import huggingface_hub.constants
    import uvicorn

    hub = HfHubServer(seed=seed)
    sock, cdn_sock = _free_socket(), _free_socket()
    port = sock.getsockname()[1]
    hub.endpoint = f"http://127.0.0.1:{port}"
    hub.cdn_port = cdn_sock.getsockname()[1]
    hub.cdn_endpoint = f"http://127.0.0.1:{hub.cdn_port}"
    xet_before = huggingface_hub.constants.HF_HUB_DISABLE_XET
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    config = uvicorn.Config(
        hub.app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock, cdn_sock]}, name=f"hf-hub-server:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test Hub server did not start")
            time.sleep(0.01)
        yield hub
    finally:
        hub.clear_faults()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        cdn_sock.close()
        huggingface_hub.constants.HF_HUB_DISABLE_XET = xet_before
        try:  # drop huggingface_hub's pooled connections to this port
            from huggingface_hub.utils import close_session

            close_session()
        except ImportError:
            pass


__all__ = ["HfHubServer", "HubError", "hf_hub_server"]
