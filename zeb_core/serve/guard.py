"""The front door of `zeb serve`: an ASGI middleware that refuses, before any route runs, what must not reach one.

A web page the operator visits can send requests to a server on 127.0.0.1 (a `text/plain` POST needs no CORS
preflight) and, by DNS rebinding, read its answers; a body of gigabytes would be buffered whole; a public server
needs a password and a rate limit. `RequestGuard` checks, in this order: the client's rate (429), the `Host`
header against the names the server answers to (400), a browser's `Origin` against the server's own (403), the
token (401), that a body is JSON (415) and its size by `Content-Length` and then by counting what streams in (413),
never holding more than `max_body_bytes` of it. Every refusal is `{"error": "<why>"}` like the app's own errors.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("zeb.serve")

MAX_BODY = 64 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
PUBLIC_PATHS = frozenset({"/", "/healthz", "/favicon.ico", "/docs", "/redoc", "/openapi.json"})
"""Paths open without the token: the page's shell (it holds no data; its scripts send the token), the health
check and the API's description. `/static/...` is open too."""
MIN_TOKEN = 16
MAX_CLIENTS = 10_000


class GuardSettings(BaseModel):
    """What `RequestGuard` lets through. The defaults suit an app built in-process (tests, TestClient): no Host
    check, no token, no rate limit; `zeb serve` passes the names it binds (`allowed_hosts_for`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    max_body_bytes: int = Field(default=MAX_BODY, gt=0)
    """Largest request body in bytes (a move request is about 1 KB); larger ones are refused (413) unread."""
    allowed_hosts: tuple[str, ...] | None = None
    """Names (or addresses, IPv6 in brackets) a request's Host header may carry, without port; None accepts any
    Host (only behind a proxy that checks it: a Host check is what stops DNS rebinding)."""
    token: SecretStr | None = None
    """When set, the API (all but the page, /static and /healthz) wants `Authorization: Bearer TOKEN`."""
    rate_per_s: float = Field(default=0.0, ge=0)
    """Requests per second each client (IP address; an IPv6 /64) may make on average; 0 is no limit."""
    burst: int = Field(default=30, ge=1)
    """Requests a client may make at once before `rate_per_s` applies (its token bucket's size)."""

    @field_validator("allowed_hosts")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(dict.fromkeys(normal_host(h) for h in value if h.strip()))

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN:
            raise ValueError(
                f"the token must be at least {MIN_TOKEN} characters (a short one can be guessed); "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return value


def normal_host(name: str) -> str:
    """`name` as a Host header carries it, without port: lower case, no trailing dot, IPv6 in brackets."""
    name = name.strip().lower().rstrip(".")
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        return name
    return f"[{addr.compressed}]" if addr.version == 6 else addr.compressed


def _split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header (`name`, `name:port`, `[v6]:port`) as (normal name, port or None); None if malformed."""
    try:
        parts = urlsplit(f"//{value}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return normal_host(f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname), port


def _addresses(name: str) -> set[str]:
    """The addresses `name` resolves to here (none when it does not resolve)."""
    try:
        return {normal_host(str(info[4][0])) for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return set()


def _primary_address() -> set[str]:
    """This machine's address on its default route (a UDP socket's, connected without sending anything)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route; no packet leaves
            return {normal_host(sock.getsockname()[0])}
        except OSError:
            return set()


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The Host names a server bound to `bind_host` answers to: the loopback names, the bound name and its
    addresses, and for a wildcard bind (0.0.0.0, ::) this machine's name and addresses; plus `extra` (the
    operator's --allowed-host). `*` among `extra` turns the check off (None)."""
    extra = [e.strip() for e in extra if e.strip()]
    if "*" in extra:
        return None
    names = set(LOOPBACK_NAMES)
    if normal_host(bind_host) in {normal_host(w) for w in WILDCARD_HOSTS}:
        me = {socket.gethostname(), socket.getfqdn()}
        names |= {normal_host(n) for n in me} | {a for n in me for a in _addresses(n)} | _primary_address()
    else:
        names |= {normal_host(bind_host)} | _addresses(bind_host)
    names |= {normal_host(e) for e in extra}
    return tuple(sorted(names - {""}))


class RateLimiter:
    """A token bucket per client: `burst` requests at once, then `rate_per_s` on average. The least recently seen
    clients are forgotten past `max_clients`, so many addresses cannot fill memory."""

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.rate, self.burst, self.max_clients = rate_per_s, burst, max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)

    def wait(self, client: str, now: float) -> float:
        """Take one token for `client`: 0 when it may go on, else the seconds until it may."""
        tokens, then = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self.buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


def client_key(scope: Scope) -> str:
    """Whom a request counts against: its IP address (uvicorn puts a trusted proxy's X-Forwarded-For there), an
    IPv6 client by its /64, which one host usually holds whole."""
    host = (scope.get("client") or ("unknown", 0))[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class Refusal(Exception):
    """Why a request is refused: a status, one sentence, and any headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers or {}


class RequestGuard:
    """Pure ASGI middleware: the checks of this module on every HTTP request, then the app with the body read
    (at most `max_body_bytes`). `refusals` counts the refused requests by reason (host, origin, token, ...)."""

    def __init__(self, app: ASGIApp, settings: GuardSettings, refusals: Counter[str] | None = None) -> None:
        self.app, self.settings = app, settings
        self.refusals: Counter[str] = Counter() if refusals is None else refusals
        self.limiter = RateLimiter(settings.rate_per_s, settings.burst) if settings.rate_per_s > 0 else None
        self.token = settings.token.get_secret_value().encode() if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("0", "")
        try:
            self._check(scope, headers, has_body)
            body = await self._read_body(receive)
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal, close=has_body)
            return
        if body is None:  # the client left while sending
            return
        await self.app(scope, _replay(body, receive), send)

    def _check(self, scope: Scope, headers: dict[str, str], has_body: bool) -> None:
        """Every check that needs only the request line and headers, cheapest refusals first."""
        self._check_rate(scope)
        host = self._check_host(headers)
        self._check_origin(headers, host)
        self._check_token(scope, headers)
        _check_json(headers, has_body)
        self._check_length(headers)

    def _check_rate(self, scope: Scope) -> None:
        if self.limiter is None:
            return
        wait = self.limiter.wait(client_key(scope), time.monotonic())
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise Refusal(
                429,
                "rate",
                f"too many requests from your address (at most {self.settings.rate_per_s:g} per second, "
                f"{self.settings.burst} at once); retry after {retry} s",
                {"Retry-After": str(retry)},
            )

    def _check_host(self, headers: dict[str, str]) -> tuple[str, int | None] | None:
        """The request's Host as (name, port); refused unless it is one of `allowed_hosts` (DNS rebinding)."""
        value = headers.get("host")
        host = _split_host(value) if value else None
        allowed = self.settings.allowed_hosts
        if allowed is None:
            return host
        if host is None:
            raise Refusal(400, "host", f"the Host header is missing or malformed ({value!r}); send this server's name")
        if host[0] not in allowed:
            raise Refusal(
                400,
                "host",
                f"this server does not answer to the Host {host[0]!r} (it answers to {', '.join(allowed)}); "
                "its operator can add a name with --allowed-host",
            )
        return host

    def _check_origin(self, headers: dict[str, str], host: tuple[str, int | None] | None) -> None:
        """A browser names the page that sent a request in Origin; only this server's own pages may use it."""
        origin = headers.get("origin")
        if origin is None:
            return  # not from a browser's cross-origin or unsafe request: curl, scripts, same-origin GETs
        if host is None or not _same_origin(origin, host):
            raise Refusal(
                403,
                "origin",
                f"requests from the web page at {origin!r} are refused: only this server's own page may call it",
            )

    def _check_token(self, scope: Scope, headers: dict[str, str]) -> None:
        if self.token is None:
            return
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            return
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            raise Refusal(
                401,
                "token",
                "this server wants its token: send 'Authorization: Bearer TOKEN' (the page: open it as /#token=TOKEN)",
                {"WWW-Authenticate": 'Bearer realm="zeb"'},
            )

    def _check_length(self, headers: dict[str, str]) -> None:
        """Refuse by the announced Content-Length, before a byte of the body is read."""
        length = headers.get("content-length")
        if length is None:
            return
        if not length.strip().isdigit():
            raise Refusal(400, "length", f"the Content-Length {length!r} is not a number of bytes")
        if int(length) > self.settings.max_body_bytes:
            raise self._too_large()

    def _too_large(self) -> Refusal:
        return Refusal(413, "size", f"the request body is larger than {self.settings.max_body_bytes} bytes")

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, counted as it streams in (chunked bodies announce no length): refused as soon as it
        passes the limit, so no more than that is ever held. None when the client disconnects."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal, close: bool) -> None:
        """Answer `refusal`; a body left unread closes the connection (rather than reading it to keep it alive)."""
        self.refusals[refusal.reason] += 1
        log.info("refused %s %s from %s: %s", scope.get("method"), scope.get("path"), client_key(scope), refusal)
        headers = {**refusal.headers, **({"Connection": "close"} if close else {})}
        await JSONResponse({"error": str(refusal)}, refusal.status, headers)(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (a repeated one: its last value, as Starlette's own lookup)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _check_json(headers: dict[str, str], has_body: bool) -> None:
    """A body must be typed JSON: a browser sends text/plain, forms and multipart cross-site without a preflight.
    A request without a body (and without a Content-Type) has nothing to type; Origin covers it."""
    content_type = headers.get("content-type")
    if content_type is None and not has_body:
        return
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Refusal(
            415,
            "content-type",
            f"the request body must be JSON with 'Content-Type: application/json' (got {content_type!r})",
        )


def _same_origin(origin: str, host: tuple[str, int | None]) -> bool:
    """`origin` (scheme://name[:port]) names the server at `host`: same name and port, a port left out of Host
    being the origin scheme's default (a TLS proxy in front: https, 443)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if default is None or not parts.hostname or parts.path not in ("", "/"):
        return False
    name = normal_host(f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname)
    return name == host[0] and (port or default) == (host[1] or default)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then passes on what comes next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return replay
