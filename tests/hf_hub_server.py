"""A small, test-only HuggingFace Hub: the subset of the Hub's HTTP API that huggingface_hub's `HfApi` calls to
create a repo, read its info, preupload and commit files, list its tree and commits, and download files.

    with hf_hub_server() as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)

It runs FastAPI under uvicorn on 127.0.0.1 (a free port) in a background thread and keeps everything in memory.
Paths, status codes, error headers (`X-Error-Code`, `X-Error-Message`) and commit semantics follow the real
Hub: each repo is a list of commits (full snapshots, 40-hex shas), `main` is the newest, a commit whose
`parentCommit` is not the head is refused with 412, deleting a missing file is a 404 EntryNotFound. The
preupload call answers "regular" for every file, so contents travel inline in the commit and no LFS/Xet
endpoint is ever needed; any request the server does not know is answered 404 and recorded in `unhandled`.

Writes need `Authorization: Bearer <hub.token>`; `hub.read_token` may only read; any other token is refused
with 401 "Invalid credentials in Authorization header" everywhere. Public repos can be read anonymously.

Faults: `hub.fail_next(status, count, match=...)` answers the next `count` requests (whose "METHOD /path"
contains `match`, if given) with `status`; `hub.fail_rate = p` answers a random 429/500/503 with probability p;
`hub.delay = s` holds the reply to every request (or to those matching `hub.delay_match`) `s` seconds after
serving it, so a client that times out has lost the reply of a request that did happen. 429s carry
`Retry-After: hub.retry_after` (0 by default, to keep clients that honour it fast).
Nothing here talks to huggingface.co.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
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


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
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


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: float
    commits: list[Commit] = field(default_factory=list)  # oldest first; main is the last

    @property
    def head(self) -> Commit:
        return self.commits[-1]


class HfHubServer:
    def __init__(self, seed: int = 0) -> None:
        self.token = "hf_test_" + secrets.token_hex(12)
        self.read_token = "hf_read_" + secrets.token_hex(12)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[str] = []
        self.unhandled: list[str] = []
        self.fail_rate = 0.0
        self.delay = 0.0
        self.delay_match: str | None = None
        self.retry_after = 0
        self.tree_page_size = TREE_PAGE
        self.commits_page_size = COMMITS_PAGE
        self.endpoint = ""
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

    def clear_faults(self) -> None:
        with self._lock:
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

    def _new_commit(self, repo: Repo, title: str, message: str, files: dict[str, bytes]) -> Commit:
        self._counter += 1
        digest = hashlib.sha1()
        parent = repo.commits[-1].id if repo.commits else ""
        digest.update(f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n{message}\n{time.time_ns()}\n{self._counter}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha(files[path])}\n".encode())
        commit = Commit(digest.hexdigest(), title, message, time.time(), files)
        repo.commits.append(commit)
        return commit

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
            with hub._lock:
                hub.requests.append(line)
                delay = hub.delay if hub.delay_match is None or hub.delay_match in line else 0.0
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
                out = []
                for item in body.get("files", []):
                    entry: dict[str, Any] = {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False}
                    if item["path"] in commit.files:
                        entry["oid"] = git_blob_sha(commit.files[item["path"]])
                    out.append(entry)
            return JSONResponse({"files": out, "commitOid": commit.id})

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
                    elif key == "deletedFile":
                        if path not in files:
                            raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                        del files[path]
                    elif key == "deletedFolder":
                        folder = path.rstrip("/") + "/"
                        gone = [p for p in files if p.startswith(folder)]
                        if not gone:
                            raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                        for p in gone:
                            del files[p]
                    elif key == "lfsFile":
                        raise HubError(422, f"LFS object {value.get('oid')} for {path} was never uploaded")
                    else:
                        raise HubError(400, f"Unknown commit operation {key!r}")
                new = hub._new_commit(repo, summary, str(header.get("description") or ""), files)
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
                files = repo.commits[index].files
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
                        entries[p] = {"type": "file", "path": p, "size": len(data), "oid": git_blob_sha(data)}
                ordered = [entries[k] for k in sorted(entries)]
                page = hub.tree_page_size if not expand else min(hub.tree_page_size, TREE_PAGE_EXPANDED)
                chunk = ordered[start : start + page]
                for entry in chunk:
                    if entry["type"] == "directory":
                        listing = sorted((p, git_blob_sha(d)) for p, d in files.items() if p.startswith(entry["path"] + "/"))
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
                "ETag": f'"{git_blob_sha(data)}"',
                "Accept-Ranges": "bytes",
                "Content-Disposition": f"inline; filename*=UTF-8''{path.rsplit('/', 1)[-1]}",
                "Cache-Control": "private, max-age=0, must-revalidate" if repo.private else "public, max-age=0, must-revalidate",
            }
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

            app.add_api_route(f"{prefix}/{{ns}}/{{name}}/resolve/{{revision}}/{{path:path}}", handler, methods=["GET", "HEAD"])

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
    """Start a fresh in-memory Hub on 127.0.0.1 and stop it (thread joined, port closed) on exit."""
    import uvicorn

    hub = HfHubServer(seed=seed)
    sock = _free_socket()
    port = sock.getsockname()[1]
    hub.endpoint = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        hub.app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"hf-hub-server:{port}", daemon=True)
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
        try:  # drop huggingface_hub's pooled connections to this port
            from huggingface_hub.utils import close_session

            close_session()
        except ImportError:
            pass


__all__ = ["HfHubServer", "HubError", "hf_hub_server"]
