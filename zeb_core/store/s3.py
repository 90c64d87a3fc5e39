"""A store under an S3 prefix (`s3://BUCKET/PREFIX`), over boto3.

Same layout as the local folder: files sit at their natural keys (`PREFIX/model.safetensors`, ...); a push puts
objects in the order given (the caller's state file last); pushes kept for history are first written as
immutable copies under `PREFIX/.history/REV/` with `.commit.json` put last (the scheme of
`zeb_core.store.history`, shared with the local folder), and the live objects are then copied server-side.
Compare-and-swap uses S3 conditional writes (`If-Match: ETAG` / `If-None-Match: *`).

The endpoint comes from the argument, else from boto3's own environment handling (`AWS_ENDPOINT_URL_S3`,
`AWS_ENDPOINT_URL`), so MinIO, R2 or a local test server work too. Credentials come from the usual AWS places
(environment, profiles, instance roles) and never appear in messages. botocore's own retries are kept low: the
store retries `StoreUnavailable` above this layer with its own backoff.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from zeb_core.store.backend import (
    ABSENT,
    LISTING_PAGE,
    FileInfo,
    Listing,
    NotFound,
    StoreError,
    StoreUnavailable,
    check_path,
    check_read_size,
    is_internal,
    split_listing,
)
from zeb_core.store.history import COMMIT_FILE, HISTORY_DIR, CopyHistory, copy_path

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_ATTEMPTS = 2  # botocore's own tries per call (1 retry); the store retries above this

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "429",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "403",
    }
)
_CAS_LOST_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not url.startswith("s3://"):
        raise StoreError(f"not an S3 URL: {url!r} (expected s3://BUCKET/PREFIX)")
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StoreError(f"S3 URL {url!r} names no bucket (expected s3://BUCKET/PREFIX)")
    return bucket, prefix.strip("/")


class S3Backend(CopyHistory):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not bucket or "/" in bucket:
            raise StoreError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_path(self.prefix)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.region = region
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": max_attempts, "mode": "standard"},
            )
            # endpoint_url=None lets boto3 apply AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / profile settings itself.
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self.client = client
        self.listing_page = LISTING_PAGE  # keys per ListObjectsV2 call (S3's most; tests make it small)
        self._large: set[str] = set()  # key prefixes once listed at a page or more: `list_recent` lists less

    # ------------------------------------------------------------ keys
    def _key(self, path: str, revision: str | None = None) -> str:
        path = check_path(path) if revision is None else copy_path(revision, path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    # ------------------------------------------------------------ error translation
    def _call(self, what: str, key: str | None, fn: Callable[[], T]) -> T:
        """Run one S3 request (and any body read inside `fn`), translating boto errors into store errors."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )

        where = self._where(key)
        try:
            return fn()
        except ClientError as exc:
            code, status = self._code(exc)
            message = str((exc.response.get("Error", {}) or {}).get("Message", "") or "")
            raise self._client_error(what, key, code, status, message) from None
        except NoCredentialsError:
            raise StoreError(
                f"no AWS credentials found for {what} {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE / a credentials file)"
            ) from None
        except PartialCredentialsError as exc:
            raise StoreError(
                f"incomplete AWS credentials for {what} {where}: {exc.kwargs.get('cred_var', 'a value')} is missing"
            ) from None
        except NoRegionError:
            raise StoreError(f"no AWS region configured for {what} {where}: set AWS_DEFAULT_REGION") from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StoreUnavailable(f"S3 {what} {where} failed: {type(exc).__name__} ({exc})") from None
        except IncompleteReadError as exc:  # the connection cut mid-body: transient, retried like a dropped one
            raise StoreUnavailable(f"S3 {what} {where} was cut short: {exc}; try again") from None
        except BotoCoreError as exc:
            raise StoreError(f"S3 {what} {where} failed: {type(exc).__name__} ({exc})") from None
        except OSError as exc:  # a socket error surfacing while streaming a body
            raise StoreUnavailable(f"S3 {what} {where} failed: {type(exc).__name__} ({exc})") from None

    def _client_error(self, what: str, key: str | None, code: str, status: int, message: str = "") -> StoreError:
        where = self._where(key)
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self.bucket} does not exist; create it (zeb store create, or `aws s3 mb s3://{self.bucket}`) "
                f"or check the store URL {self.url}"
            )
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return StoreUnavailable(f"S3 {what} {where} failed: {code or 'HTTP'} (HTTP {status}); try again later")
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            return NotFound(f"{where} not found ({code or status})")
        if code in _CREDENTIAL_CODES or status == 403:
            return StoreError(
                f"S3 {what} {where} was refused: {code or 'HTTP 403'}; check the AWS credentials "
                "(AWS_ACCESS_KEY_ID / AWS_PROFILE) and that they may access this bucket"
            )
        message = message[:200]
        return StoreError(
            f"S3 {what} {where} failed: {code or 'HTTP'} (HTTP {status}){': ' + message if message else ''}"
        )

    @staticmethod
    def _code(exc: Any) -> tuple[str, int]:
        err = exc.response.get("Error", {}) or {}
        status = int((exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode", 0) or 0)
        return str(err.get("Code", "") or ""), status

    # ------------------------------------------------------------ repo
    def exists(self) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code, status = self._code(exc)
                if code in ("NoSuchBucket", "404", "NotFound") or status == 404:
                    return False
                raise
            return True

        return self._call("head_bucket", None, head)

    def create(self) -> None:
        if self.exists():
            return
        from botocore.exceptions import ClientError

        region = self.region or self.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region not in ("us-east-1", "aws-global"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}

        def make() -> None:
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc:
                if self._code(exc)[0] != "BucketAlreadyOwnedByYou":
                    raise

        self._call("create_bucket", None, make)

    # ------------------------------------------------------------ reads
    def _get(self, key: str, extra: dict[str, Any] | None = None, max_bytes: int | None = None) -> tuple[bytes, str]:
        """(bytes, ETag); with `max_bytes`, a larger object is refused by the reply's length before its body is
        read (the body is closed unread). A body shorter than the reply's length (the connection cut mid-body,
        which a read of `max_bytes + 1` bytes returns without a word) is an IncompleteReadError: retried."""
        from botocore.exceptions import IncompleteReadError

        def get() -> tuple[bytes, str]:
            resp = self.client.get_object(Bucket=self.bucket, Key=key, **(extra or {}))
            body = resp["Body"]
            try:
                length = resp.get("ContentLength")
                check_read_size(self._where(key), length, max_bytes)
                data = body.read() if max_bytes is None else body.read(max_bytes + 1)
                check_read_size(self._where(key), len(data), max_bytes)
                if length is not None and len(data) < int(length):
                    raise IncompleteReadError(actual_bytes=len(data), expected_bytes=int(length))
                return data, str(resp.get("ETag", ""))
            finally:
                body.close()

        return self._call("get_object", key, get)

    def read(self, path: str, revision: str | None = None, max_bytes: int | None = None) -> bytes:
        key = self._key(path, revision)
        try:
            return self._get(key, max_bytes=max_bytes)[0]
        except NotFound:
            at = f" at revision {revision}" if revision else ""
            raise NotFound(f"{path}{at} not found in {self.url}") from None

    def _list_keys(self, key_prefix: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=key_prefix, PaginationConfig=self._pages)
            for page in pages:
                out.extend(page.get("Contents", []) or [])
            return out

        return self._call("list_objects_v2", key_prefix or None, run)

    def _key_prefix(self, prefix: str) -> str:
        prefix = prefix.strip("/")
        if prefix:
            check_path(prefix)
        parts = [p for p in (self.prefix, prefix) if p]
        return "/".join(parts) + "/" if parts else ""

    @property
    def _pages(self) -> dict[str, int]:
        return {"PageSize": self.listing_page}

    def _infos(self, objects: list[dict[str, Any]]) -> list[FileInfo]:
        out: list[FileInfo] = []
        for obj in objects:
            key = str(obj["Key"])
            if key.endswith("/"):
                continue  # a "folder" marker some tools create
            rel = self._rel(key)
            if is_internal(rel) or any(part.startswith(".") for part in rel.split("/")):
                continue
            modified = obj.get("LastModified")
            out.append(FileInfo(rel, int(obj.get("Size", 0)), modified.timestamp() if modified else 0.0))
        out.sort(key=lambda f: f.path)
        return out

    def list(self, prefix: str = "") -> list[FileInfo]:
        return self._infos(self._list_keys(self._key_prefix(prefix)))

    def list_recent(self, prefix: str, want: Callable[[str], bool]) -> Listing:
        """One recursive listing while the folder fits in one page; once it did not, two calls whatever it holds:
        the folder's own level (Delimiter) and one ListObjectsV2 from the first wanted sub-folder on
        (`StartAfter`: keys come in order, so it stops past the last one)."""
        key_prefix = self._key_prefix(prefix)
        if key_prefix not in self._large:
            objects = self._list_keys(key_prefix)
            if len(objects) >= self.listing_page:
                self._large.add(key_prefix)
            return split_listing(prefix, self._infos(objects), want)

        def level() -> tuple[list[dict[str, Any]], list[str]]:
            objects: list[dict[str, Any]] = []
            folders: list[str] = []
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=key_prefix, Delimiter="/", PaginationConfig=self._pages
            )
            for page in pages:
                objects.extend(page.get("Contents", []) or [])
                folders += [str(p["Prefix"])[len(key_prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            return objects, folders

        objects, found = self._call("list_objects_v2", key_prefix or None, level)
        folders = sorted(f for f in found if f and not f.startswith("."))
        wanted = [f for f in folders if want(f)]
        if not wanted:
            return Listing(self._infos(objects), folders, [])
        picked, last = set(wanted), wanted[-1]

        def within() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            paginator = self.client.get_paginator("list_objects_v2")
            start = key_prefix + wanted[0]
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=key_prefix, StartAfter=start, PaginationConfig=self._pages
            )
            for page in pages:
                for obj in page.get("Contents", []) or []:
                    head = str(obj["Key"])[len(key_prefix) :].split("/", 1)[0]
                    if head > last:
                        return out
                    if head in picked:
                        out.append(obj)
            return out

        return Listing(self._infos(objects), folders, self._infos(self._call("list_objects_v2", key_prefix, within)))

    # ------------------------------------------------------------ writes
    def _put(self, key: str, data: bytes, **conditions: str) -> None:
        self._call(
            "put_object", key, lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)
        )

    def _copy(self, source_key: str, key: str) -> None:
        self._call(
            "copy_object",
            key,
            lambda: self.client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source_key}
            ),
        )

    def _delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = list(keys[start : start + 1000])

            def run(batch: list[str] = batch) -> Any:
                return self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )

            resp = self._call("delete_objects", batch[0], run)
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise self._client_error(
                    "delete_objects",
                    str(first.get("Key", "")),
                    str(first.get("Code", "")),
                    0,
                    str(first.get("Message", "")),
                )

    def move(self, src: str, dst: str) -> bool:
        """A server-side copy, then the delete of the original: the bytes never pass through this process."""
        source, target = self._key(src), self._key(dst)
        try:
            self._copy(source, target)
        except NotFound:  # moved by an earlier try of this call, or gone
            return self._has(target)
        self._delete([source])
        return True

    def _has(self, key: str) -> bool:
        try:
            self._call("head_object", key, lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------ history-as-copies primitives
    def _put_copy(self, revision: str, path: str, data: bytes) -> None:
        self._put(self._key(path, revision), data)

    def _put_live(self, path: str, data: bytes, revision: str | None) -> None:
        if revision is None:
            self._put(self._key(path), data)
        else:  # the immutable copy is already up there: copy server-side rather than upload the file twice
            self._copy(self._key(path, revision), self._key(path))

    def _delete_live(self, paths: Sequence[str]) -> None:
        self._delete([self._key(p) for p in paths])

    def _revision_ids(self) -> builtins.list[str]:  # `list` is also a method here
        base = f"{self.prefix}/{HISTORY_DIR}/" if self.prefix else f"{HISTORY_DIR}/"

        def list_revs() -> list[str]:
            revs: list[str] = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
                for cp in page.get("CommonPrefixes", []) or []:
                    revs.append(str(cp["Prefix"])[len(base) :].rstrip("/"))
            return revs

        return self._call("list_objects_v2", base, list_revs)

    def _delete_copy(self, revision: str, path: str) -> None:
        self._delete([self._key(path, revision)])

    def _remove_revision(self, revision: str) -> None:
        prefix = self._key(COMMIT_FILE, revision)[: -len(COMMIT_FILE)]
        keys = [obj["Key"] for obj in self._list_keys(prefix)]
        if keys:
            self._delete(keys)

    # ------------------------------------------------------------ compare-and-swap
    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        try:
            return self._get(self._key(path))
        except NotFound:
            return None, ABSENT

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        from botocore.exceptions import ClientError

        key = self._key(path)
        conditions = {"IfNoneMatch": "*"} if token in (None, ABSENT) else {"IfMatch": str(token)}

        def put() -> bool:
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)
            except ClientError as exc:
                code, status = self._code(exc)
                if code in _CAS_LOST_CODES or status in (409, 412):
                    return False
                if "IfMatch" in conditions and (code == "NoSuchKey" or status == 404):
                    return False  # deleted since it was read
                raise
            return True

        return self._call("put_object", key, put)


__all__ = ["S3Backend", "parse_s3_url"]
