"""The store contract, written once over any backend: weights pushes and pulls, example files, the learner's
lease, quarantine, history and revert, pruning and status.

Layout. The *weights repo* holds per namespace NAME the files of `zeb_core.formats.weights` (NAME.safetensors,
NAME-config.json, NAME-optimizer.safetensors, NAME-state.json), the promoted model as NAME-best.*, and the lease
NAME-lease.json. The *examples repo* holds example files under NAME/ (at the root for the default namespace), in
hour folders NAME/YYYYMMDD_HH/ (an upload goes into its own hour's folder, or the newest folder when that is
newer: `cursor.py` says why), and bad files under quarantine/. Files directly under NAME/ (the flat layout of
stores before hour folders, and of workers not upgraded yet) are read as well. NAME-bid is NAME's BidNet (the full
game), written under NAME's lease; `check_name` refuses the names that would collide with these (quarantine,
NAME-best, NAME-bid, NAME-optimizer).

Consistency. A push is one backend commit with the state file last: one atomic commit on the Hub, a sequence of
writes on S3 and locally (a complete copy under the history first, then the live files one by one). The state
names the SHA-256 of the weights and optimizer, so `pull_weights` re-reads until the set it holds is consistent
and never returns weights from one step with state from another. A push a kill cut short between its live files
is read from its complete history copy (with a warning) and finished by the learner's start (`heal`), for every
pointer a learner writes: latest, best and the BidNet. Every backend call retries transient failures
(`retry.RetryPolicy`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, overload

from pydantic import AfterValidator

from zeb_core.formats.examples import ExampleFile, decode_examples, example_filename, parse_example_filename
from zeb_core.formats.safe_io import MAX_EXAMPLE_FILE_BYTES, FormatError, sha256_hex
from zeb_core.formats.weights import DEFAULT_NAME, WeightsBundle, bundle_from_files, bundle_to_files, weights_filenames
from zeb_core.formats.weights import FILE_LIMITS as WEIGHTS_LIMITS
from zeb_core.store.backend import (
    Backend,
    FileInfo,
    LeaseHeld,
    Listing,
    NotFound,
    RateLimited,
    Revision,
    StoreError,
    StoreUnavailable,
    TooLarge,
    check_path,
    check_read_size,
)
from zeb_core.store.cursor import SETTLE_S, ExampleCursor, hour_folder, is_hour_folder, split_key
from zeb_core.store.retry import RetryPolicy, call_with_retry

_Decoded = TypeVar("_Decoded")  # what a `read_examples` decoder returns
T = TypeVar("T")

log = logging.getLogger("zeb.store")
WHICH = ("latest", "best")
QUARANTINE = "quarantine/"
TAG = "[zeb]"
PULL_ATTEMPTS = 5
DEFAULT_LEASE_TTL_S = 600.0
REVERT_LEASE_TTL_S = 60.0  # a revert holds the lease only while it writes (renewed every third of it)
KEEP_BEST = 20  # promoted models kept in a local or S3 store's history (the newest)
INCOMPLETE_AGE_S = 3600.0  # a history copy this old with no record is a push a kill cut short, not one in flight
TORN_SEARCH = 20  # recorded pushes searched for the one a kill cut short
BID_SUFFIX = "-bid"  # NAME-bid: the BidNet of NAME's full game (bid_learning), under NAME's lease
RESERVED_NAMES = ("quarantine",)  # the examples repo's folder of bad files
RESERVED_SUFFIXES = {
    "-best": "the promoted model",
    BID_SUFFIX: "the BidNet's namespace",
    "-optimizer": "the optimizer file",
}
CLOCK_SKEW_WARN_S = 600.0  # a file stamped this far from the store's clock names its worker in a warning
UPLOAD_LOOKBACK_S = 7200.0  # an upload lists the hour folders from this long before its files were made
HOUR_MARKER = "hour.json"  # put in each hour folder by the upload that opens it; prune keeps the newest folder's
HOUR_MARKER_BYTES = b'{"zeb": "an hour folder of example files"}\n'  # the same bytes from every uploader


class _InvalidSet(StoreError):
    """A weights set that never validated (`pull_weights` may still find it is a push cut short)."""


@dataclass(frozen=True)
class ExampleRef:
    path: str  # in the examples repo
    name: str  # file name
    worker: str
    timestamp: str
    hash16: str
    size: int
    modified: float = 0.0  # when the store wrote it, by the store's clock (0: the backend does not say)
    folder: str = ""  # its hour folder ("": directly in the namespace's folder, the flat layout)

    @property
    def key(self) -> str:
        """Its path within the namespace's folder (FOLDER/NAME, or NAME in the flat layout)."""
        return f"{self.folder}/{self.name}" if self.folder else self.name


@dataclass(frozen=True)
class ExamplesUpload:
    """What `upload_example_files` did."""

    paths: list[str]  # where each file given is stored now, in the order given (new or there already)
    committed: int  # files the commit added (0: every one was there already, and no commit was made)
    listed: dict[str, list[ExampleRef]]  # each namespace's files as listed before the commit


@dataclass(frozen=True)
class PruneReport:
    """What a prune of example files did: the rules' victims minus the files the learner has not read yet."""

    removed: list[str]
    kept_unread: int  # files the rules would have removed, kept because the namespace's learner has not read them
    unread: int  # files not read yet, in all
    before: int  # files listed before the prune


@dataclass(frozen=True)
class PushRecord:
    revision: str
    time: float
    name: str
    which: str
    step: int
    message: str


def weights_prefix(name: str, which: str) -> str:
    if which not in WHICH:
        raise StoreError(f"which must be one of {WHICH}, not {which!r}")
    return name if which == "latest" else f"{name}-best"


def check_name(name: str) -> str:
    """A namespace a learner, a worker or a person names: letters, digits, '-' and '.', and none of the names the
    store uses for itself (the quarantine folder, NAME-best, NAME-bid, NAME-optimizer)."""
    if not name or not all(c.isalnum() or c in "-." for c in name) or name.startswith((".", "-")):
        raise StoreError(f"namespace {name!r} must be letters, digits, '-' and '.'")
    if name.lower() in RESERVED_NAMES:
        raise StoreError(f"namespace {name!r} is reserved: its examples folder would be the store's quarantine")
    for suffix, what in RESERVED_SUFFIXES.items():
        if name.lower().endswith(suffix):
            raise StoreError(f"namespace {name!r} may not end in {suffix} (that suffix names {what})")
    return name


def valid_namespace(name: str) -> str:
    """`check_name` as a settings field's validator (`Namespace`): its ValueError is the field's validation
    error, so `zeb learner`, `zeb worker`, `zeb train` and the flows refuse a reserved or malformed name at once,
    naming the option, rather than when the learner takes its lease."""
    try:
        return check_name(name)
    except StoreError as exc:
        raise ValueError(str(exc)) from None


Namespace = Annotated[str, AfterValidator(valid_namespace)]
"""The type of a settings field that names a namespace (LearnerSettings.name, WorkerSettings.name)."""


def bid_namespace(name: str) -> str:
    """The namespace of NAME's BidNet (the full game): its weights and bid-example files."""
    return check_name(name) + BID_SUFFIX


def check_namespace(name: str) -> str:
    """A namespace the store reads and writes: a valid name, or the BidNet namespace of one."""
    base = name.removesuffix(BID_SUFFIX)
    if base != name:
        check_name(base)
        return name
    return check_name(name)


def lease_owner(name: str) -> str:
    """The namespace whose lease guards `name`: NAME-bid is written by NAME's learner, under NAME's lease."""
    return check_namespace(name).removesuffix(BID_SUFFIX)


def default_holder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Store:
    def __init__(self, weights: Backend, examples: Backend, retry: RetryPolicy | None = None) -> None:
        self.weights = weights
        self.examples = examples
        self.retry = retry or RetryPolicy()
        self.quarantined = 0
        self._skew_warned: dict[str, float] = {}  # worker -> when its clock was last warned about

    @property
    def url(self) -> str:
        return self.weights.url

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(self.retry, what, fn, *args, **kwargs)

    def ensure(self) -> None:
        """Create both repos if missing (the learner does this at start-up)."""
        for backend in (self.weights, self.examples):
            if not self._call(f"check {backend.url}", backend.exists):
                self._call(f"create {backend.url}", backend.create)

    # ================================================================ weights
    def push_weights(
        self,
        bundle: WeightsBundle,
        name: str = DEFAULT_NAME,
        which: str = "latest",
        message: str = "",
        extra: dict[str, bytes] | None = None,
    ) -> Revision:
        """One push of weights, config, optimizer and state (state last, naming the others' checksums): atomic on
        the Hub, made consistent by that order and the checksums on S3 and locally; recorded in history. `extra`
        files (the Hub's model card, zeb_core.store.cards) ride in the same commit, before the state."""
        prefix = weights_prefix(check_namespace(name), which)
        files = bundle_to_files(bundle, prefix)
        if extra and (clash := set(map(check_path, extra)) & set(files)):
            raise StoreError(f"extra files {sorted(clash)} would overwrite the push's own")
        files = {**(extra or {}), **files}
        state_file = weights_filenames(prefix)["state"]
        ordered = {k: files[k] for k in sorted(files, key=lambda f: f == state_file)}
        deletes = [] if bundle.optimizer is not None else [weights_filenames(prefix)["optimizer"]]
        title = f"{TAG} push name={name} which={which} step={bundle.step}" + (f": {message}" if message else "")
        return self._call(f"push {prefix}", self.weights.commit, ordered, deletes, title, True)

    def peek_state(self, name: str = DEFAULT_NAME, which: str = "latest") -> dict[str, Any] | None:
        """The state JSON of the newest push (cheap: one small read); None when there is none or it is unreadable."""
        fname = weights_filenames(weights_prefix(check_namespace(name), which))["state"]
        try:
            data = self._call(f"read {fname}", self.weights.read, fname, None, WEIGHTS_LIMITS["state"])
        except NotFound:
            return None
        except TooLarge as exc:
            log.warning("%s; ignoring it", exc)
            return None
        try:
            state = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s in %s is not JSON; ignoring it", fname, self.url)
            return None
        return state if isinstance(state, dict) else None

    def latest_step(self, name: str = DEFAULT_NAME, which: str = "latest") -> int | None:
        state = self.peek_state(name, which)
        return None if state is None else int(state.get("step", 0))

    def pull_weights(
        self,
        name: str = DEFAULT_NAME,
        which: str = "latest",
        unless_sha: str | None = None,
        revision: str | None = None,
    ) -> WeightsBundle | None:
        """The newest consistent weights bundle (validated), or None when the store has none for `name`, or
        when its weights are the ones whose SHA-256 is `unless_sha` (the caller already holds them).

        A push a kill cut short between its live files (local, S3) is read from its complete history copy, with
        a warning, until the namespace's learner repairs it (`heal`): readers never fail on it. Live files that
        are no recorded push's (a bad or foreign push, another format version) raise StoreError."""
        prefix = weights_prefix(check_namespace(name), which)
        failure: StoreError | None = None  # what to raise when no torn push explains the live files
        try:
            return self._read_set(prefix, unless_sha, revision)
        except NotFound:  # no state file: no push yet, or the first one cut short
            pass
        except _InvalidSet as exc:
            failure = StoreError(str(exc))
        torn = None if revision is not None else self._torn_push(name, which)
        if torn is None:
            if failure is not None:
                raise failure
            return None
        push, bundle, _ = torn
        log.warning(
            "the live %s weights of %r in %s are a push cut short (a kill between its files); reading its complete "
            "copy from the history (step %d, revision %s) until the namespace's learner starts and repairs them",
            which,
            name,
            self.url,
            bundle.step,
            push.revision,
        )
        if unless_sha is not None and bundle.state.get("weights_sha256") == unless_sha:
            return None
        return bundle

    def _read_set(self, prefix: str, unless_sha: str | None, revision: str | None) -> WeightsBundle | None:
        """The live (or `revision`'s) set of `prefix`, re-read until consistent; NotFound without a state file,
        _InvalidSet when it never validates."""
        fn = weights_filenames(prefix)
        last_error: Exception | None = None
        for _ in range(PULL_ATTEMPTS):
            files: dict[str, bytes] = {}
            limit = WEIGHTS_LIMITS["state"]  # each file refused by its size (TooLarge, a StoreError) before it is read
            files[fn["state"]] = self._call(f"read {fn['state']}", self.weights.read, fn["state"], revision, limit)
            try:
                state = json.loads(files[fn["state"]])
            except (UnicodeDecodeError, json.JSONDecodeError):
                state = {}
            if unless_sha is not None and isinstance(state, dict) and state.get("weights_sha256") == unless_sha:
                return None
            for key in ("weights", "config", "optimizer"):
                try:
                    limit = WEIGHTS_LIMITS[key]
                    files[fn[key]] = self._call(f"read {fn[key]}", self.weights.read, fn[key], revision, limit)
                except NotFound:
                    if key != "optimizer":
                        last_error = FormatError(f"{fn[key]} is missing")
            try:
                return bundle_from_files(files, prefix)
            except FormatError as exc:  # a push landing between our reads, or a bad push: read again
                last_error = exc
                time.sleep(0.05)
        raise _InvalidSet(f"weights {prefix} in {self.url} are not valid: {last_error}")

    def _torn_push(
        self, name: str, which: str, live: bytes | None = None
    ) -> tuple[PushRecord, WeightsBundle, dict[str, bytes]] | None:
        """The recorded push a kill cut short between its live files, with its validated copy and files; None
        when the live files are not that (none, whole, or weights no newer recorded push wrote).

        A push writes its whole copy and record first, then the live files with the weights first and the state
        last, so a torn push leaves live weights whose SHA-256 the live state does not name: the push to finish
        is the recorded one with those weights, newer than the push the live state belongs to."""
        if not self.weights.history_copies:
            return None  # the Hub commits a push at once: nothing is ever cut short
        prefix = weights_prefix(name, which)
        fn = weights_filenames(prefix)
        try:
            if live is None:
                live = self._call(
                    f"read {fn['weights']}", self.weights.read, fn["weights"], None, WEIGHTS_LIMITS["weights"]
                )
        except NotFound:
            return None
        live_sha = sha256_hex(live)
        state = self.peek_state(name, which) or {}
        stated = state.get("weights_sha256")
        if stated == live_sha:
            return None  # whole (or bad in some other way: not ours to mend)
        for push in self.history(name, which, limit=TORN_SEARCH):
            files = self._copy_files(prefix, push.revision)
            try:
                copy_state = json.loads(files.get(fn["state"], b""))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            sha = copy_state.get("weights_sha256") if isinstance(copy_state, dict) else None
            if sha == live_sha:
                try:
                    return push, bundle_from_files(files, prefix), files
                except FormatError:
                    return None
            if sha is not None and sha == stated:
                return None  # reached the push the live state is: older copies are not a push in flight
        return None

    def _copy_files(self, prefix: str, revision: str) -> dict[str, bytes]:
        """The files of a recorded push's history copy (those it has)."""
        files: dict[str, bytes] = {}
        for key, fname in weights_filenames(prefix).items():
            try:
                files[fname] = self._call(f"read {fname}", self.weights.read, fname, revision, WEIGHTS_LIMITS[key])
            except NotFound:
                continue
        return files

    def heal(self, name: str = DEFAULT_NAME) -> list[PushRecord]:
        """Finish every push of `name` a kill cut short between its live files: latest, best and the BidNet
        (NAME-bid), the pointers a learner writes. Their live files are written again from the push's complete
        history copy (state last), so workers, servers and promotion read them whole again. The learner calls
        it at start, under its lease; returns the pushes finished. Anything else wrong is left for
        `pull_weights` to report."""
        healed = []
        for namespace, which in ((name, "latest"), (name, "best"), (bid_namespace(name), "latest")):
            prefix = weights_prefix(namespace, which)
            fn = weights_filenames(prefix)
            try:
                live = self._call(
                    f"read {fn['weights']}", self.weights.read, fn["weights"], None, WEIGHTS_LIMITS["weights"]
                )
                torn = self._torn_push(namespace, which, live)
            except (NotFound, TooLarge):  # nothing to finish; a file over its limit is pull_weights' to report
                continue
            if torn is None:
                continue
            push, bundle, files = torn
            ordered = {k: files[k] for k in sorted(files, key=lambda f: f == fn["state"])}
            deletes = [] if fn["optimizer"] in files else [fn["optimizer"]]
            title = f"{TAG} heal name={namespace} which={which} step={bundle.step} from {push.revision}"
            self._call(f"heal {prefix}", self.weights.commit, ordered, deletes, title, False)
            log.warning(
                "the last %s push of %r in %s was cut short (a kill between its files); finished it from its "
                "history copy (step %d, revision %s)",
                which,
                namespace,
                self.url,
                bundle.step,
                push.revision,
            )
            healed.append(push)
        return healed

    def promote(
        self, bundle: WeightsBundle, name: str = DEFAULT_NAME, message: str = "", extra: dict[str, bytes] | None = None
    ) -> Revision:
        return self.push_weights(bundle, name, "best", message, extra)

    # ================================================================ history and revert
    def history(self, name: str = DEFAULT_NAME, which: str = "latest", limit: int = 100) -> list[PushRecord]:
        """Pushes of `name` newest first (from the backend's commit history)."""
        check_namespace(name)
        out: list[PushRecord] = []
        for rev in self._call("history", self.weights.history, max(1000, 4 * limit)):
            fields = _parse_tag(rev.message)
            if fields is None or fields.get("name") != name or fields.get("which") != which:
                continue
            step = int(fields.get("step", "0")) if fields.get("step", "0").isdigit() else 0
            out.append(PushRecord(rev.id, rev.time, name, which, step, rev.message))
            if len(out) >= limit:
                break
        return out

    def prune_history(
        self, name: str = DEFAULT_NAME, keep: int = 20, keep_best: int = KEEP_BEST, now: float | None = None
    ) -> int:
        """Forget all but the newest `keep` pushes of `name` and its newest `keep_best` promoted models, and the
        copies of pushes a kill cut short before their record (older than INCOMPLETE_AGE_S: a younger one may be
        a push in flight), where the backend keeps history as copies (local, S3); a Hub repo's git history is
        left alone. Returns the pushes and unrecorded copies forgotten."""
        if not self.weights.history_copies:
            return 0
        if keep < 1 or keep_best < 1:
            raise StoreError(
                f"prune_history keeps at least one push of each kind, not keep={keep}, keep_best={keep_best}: "
                "the newest is what a push cut short is finished from"
            )
        old = [p.revision for p in self.history(name, "latest", limit=100_000)[keep:]]
        old += [p.revision for p in self.history(name, "best", limit=100_000)[keep_best:]]
        if old:
            self._call("drop history", self.weights.drop_history, old)
        before = (time.time() if now is None else now) - INCOMPLETE_AGE_S
        dropped: int = self._call("drop unrecorded history", self.weights.drop_incomplete, before)
        return len(old) + dropped

    def resolve_revision(self, name: str, to: str) -> PushRecord:
        """A push of `name` by revision id (or a unique prefix of one) or by `step:N`."""
        pushes = self.history(name, limit=1000)
        if to.startswith("step:"):
            matches = [p for p in pushes if str(p.step) == to[5:]]
        else:
            matches = [p for p in pushes if p.revision == to] or [p for p in pushes if p.revision.startswith(to)]
        if not matches:
            raise StoreError(f"no push of {name!r} matches {to!r}; `zeb store history` lists them")
        if len(matches) > 1 and not to.startswith("step:"):
            raise StoreError(f"{to!r} matches {len(matches)} pushes; give more of the revision id")
        return matches[0]  # newest push of that step

    def revert(
        self,
        name: str,
        to: str,
        reason: str = "",
        force: bool = False,
        holder: str | None = None,
        lease_ttl_s: float = REVERT_LEASE_TTL_S,
    ) -> tuple[PushRecord, Revision]:
        """Push the bundle of an earlier push as the newest, noting where it came from and why.

        Holds the namespace's lease while it reads and writes (NAME-bid's is NAME's), so no learner starts in
        between, resumes from the old weights and pushes over the revert. Refused (LeaseHeld) while a learner
        holds it: the one rule for the revert flow, `zeb store revert` and any other caller. `force=True`, the
        operator's override, takes the lease from that learner, which then stops without writing anything more
        (its next renewal finds the lease gone)."""
        owner = lease_owner(name)
        lease = Lease(self, owner, holder or f"revert-{default_holder_id()}", lease_ttl_s)
        try:
            lease.acquire(force=force)
        except LeaseHeld:
            held = Lease.peek(self, owner) or {}
            raise LeaseHeld(
                f"a learner ({held.get('holder')}) holds {owner!r}: it would push over the revert. Cancel its run "
                "first (it pushes and releases the lease), or force the revert (force=True, `zeb store revert "
                "--force`: the learner then stops without pushing)"
            ) from None
        lease.keep_alive()
        try:
            target = self.resolve_revision(name, to)
            bundle = self.pull_weights(name, revision=target.revision)
            if bundle is None:
                raise StoreError(f"push {target.revision} of {name!r} has no weights to restore")
            bundle.state = {
                **bundle.state,
                "reverted_from": target.revision,
                "revert_reason": reason,
                "time": time.time(),
            }
            lease.renew()  # still ours, right before the write
            rev = self.push_weights(
                bundle, name, message=f"revert to {target.revision} (step {target.step}) {reason}".strip()
            )
        finally:
            lease.release()
        return target, rev

    # ================================================================ lease
    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        """A weights-repo file with its compare-and-swap token (retried), for the lease."""
        return self._call(f"read {path}", self.weights.read_versioned, path)

    def write_if(self, path: str, data: bytes, token: str | None) -> bool:
        """Write a weights-repo file only if unchanged since `read_versioned` gave `token` (retried)."""
        return self._call(f"write {path}", self.weights.write_if, path, data, token)

    def acquire_lease(
        self, name: str = DEFAULT_NAME, holder: str | None = None, ttl_s: float = DEFAULT_LEASE_TTL_S
    ) -> Lease:
        lease = Lease(self, check_name(name), holder or default_holder_id(), ttl_s)
        lease.acquire()
        return lease

    # ================================================================ examples
    def _examples_dir(self, name: str) -> str:
        return "" if check_namespace(name) == DEFAULT_NAME else f"{name}/"

    def list_examples(self, name: str = DEFAULT_NAME) -> list[ExampleRef]:
        """Well-formed example files of `name` (flat and in hour folders), oldest first by file-name timestamp:
        all of them, from one recursive listing whose cost grows with the store (a learner's cycle lists less:
        `new_examples`)."""
        folder = self._examples_dir(name)
        infos: list[FileInfo] = self._call("list examples", self.examples.list, folder.rstrip("/"))
        return _example_refs(folder, infos)

    def recent_examples(self, name: str = DEFAULT_NAME, seconds: float = 3600.0) -> list[ExampleRef]:
        """Example files of `name` in the hour folders of the last `seconds` (and flat ones): one listing of
        recent folders, cheap however large the store (a worker counting the workers uploading lately)."""
        since = hour_folder(time.time() - seconds)
        return self._list_recent(name, lambda f: is_hour_folder(f) and f >= since, "list recent examples")[0]

    def _list_recent(self, name: str, wanted: Callable[[str], bool], what: str) -> tuple[list[ExampleRef], list[str]]:
        """(example files of `name`, flat and in the subfolders `wanted` picks; every subfolder listed): one
        `Backend.list_recent` call, the cheap listing of recent files that uploads, ingest and pacing share."""
        folder = self._examples_dir(name)
        listing: Listing = self._call(f"{what} of {name}", self.examples.list_recent, folder.rstrip("/"), wanted)
        return _example_refs(folder, [*listing.files, *listing.within]), listing.folders

    def upload_examples(self, data: bytes, manifest: dict[str, Any], name: str = DEFAULT_NAME) -> str:
        """Upload one example file; returns its path. The same content already in the store is not stored again."""
        return self.upload_example_files([(data, manifest, name)]).paths[0]

    def upload_example_files(
        self,
        files: Sequence[tuple[bytes, dict[str, Any], str]],
        *,
        retry_rate_limited: bool = True,
        now: float | None = None,
    ) -> ExamplesUpload:
        """Upload example files, each (bytes, manifest, namespace), in ONE backend commit (one Hub commit, however
        many files: the Hub limits commits, not files). A file whose content (its hash in the name) the
        namespace already holds is not stored again, so uploading again after a lost reply, or after a crash
        between the commit and the outbox's deletion, stores nothing twice.

        Files go into the hour folder of `now` (the uploader's clock; this machine's by default), or into the
        newest hour folder listed when that is newer (a slow clock): never below the newest, so the learner can
        close old folders (`cursor.py`). One listing per namespace, of its flat files and of the hour folders
        from UPLOAD_LOOKBACK_S before the oldest file's creation time on: where an earlier try of these files
        went, and the workers uploading lately (`ExamplesUpload.listed`). A commit is not tried on a listing
        older than half of cursor.SETTLE_S (StoreUnavailable: upload again, which lists again).

        With `retry_rate_limited=False` a 429 (RateLimited) is raised at once instead of retried, so the caller
        (a worker's CommitPacer) can wait what it asks and lengthen its interval; other transient failures are
        still retried."""
        now = time.time() if now is None else now
        listed: dict[str, list[ExampleRef]] = {}
        targets: dict[str, str] = {}
        puts: dict[str, bytes] = {}
        for name in dict.fromkeys(name for _, _, name in files):
            made = [m.get("created") for _, m, n in files if n == name]
            times = [float(t) for t in made if isinstance(t, (int, float)) and math.isfinite(t)]
            since = hour_folder(min([*times, now]) - UPLOAD_LOOKBACK_S) if len(times) == len(made) else ""

            def wanted(f: str, since: str = since) -> bool:
                return is_hour_folder(f) and f >= since

            listed[name], folders = self._list_recent(name, wanted, "list examples")
            hours = [f for f in folders if is_hour_folder(f)]
            targets[name] = max([hour_folder(now), *hours])
            if targets[name] not in hours:
                puts[f"{self._examples_dir(name)}{targets[name]}/{HOUR_MARKER}"] = HOUR_MARKER_BYTES  # it stays
        listed_at = (time.monotonic(), time.time())
        where = {(name, ref.hash16): ref.path for name, refs in listed.items() for ref in refs}
        paths, added = [], []
        for data, manifest, name in files:
            sha = manifest["sha256"]
            if (name, sha[:16]) not in where:
                folder = f"{self._examples_dir(name)}{targets[name]}/"
                path = folder + example_filename(manifest["worker_id"], sha, now)  # the names differ by their hashes
                where[(name, sha[:16])] = path
                puts[path] = data
                added.append(path)
            paths.append(where[(name, sha[:16])])
        if added:
            title = f"{TAG} examples: {len(added)} files" if len(added) > 1 else f"{TAG} examples {added[0]}"

            def commit() -> Revision:
                elapsed = max(time.monotonic() - listed_at[0], time.time() - listed_at[1])
                if elapsed > SETTLE_S / 2:
                    raise _StaleListing(f"the listing is {elapsed:.0f} s old; upload again (it lists again)")
                return self.examples.commit(puts, (), title, False)

            try:
                what = f"upload {len(added)} example file(s)"
                self._call(what, commit if retry_rate_limited else _no_retry(commit))
            except _RateLimitedNow as exc:
                raise exc.cause from None
            except _StaleListing as exc:
                raise StoreUnavailable(f"example upload to {self.examples.url} not tried: {exc}") from None
        return ExamplesUpload(paths, len(added), listed)

    def new_examples(
        self, cursor: ExampleCursor, name: str = DEFAULT_NAME, now: float | None = None
    ) -> tuple[list[ExampleRef], list[ExampleRef]]:
        """(unread files, []) relative to the cursor, which records the listing (`ExampleCursor.observe`: hour
        folders first listed, folders closed, names trimmed; `now` is the learner's clock, this machine's by
        default). Lists the flat files and the hour folders the cursor has not closed only: a few calls
        whatever the store holds. No file is ever "late": the second list stays for old callers. A worker whose
        file names say its clock is off is named in a warning (once an hour), though ingest does not depend on
        it."""
        refs, folders = self._list_recent(name, cursor.lists, "list examples")
        cursor.observe((r.key for r in refs), [f for f in folders if cursor.lists(f)], now)
        new = [r for r in refs if cursor.is_new(r.name, r.folder)]
        self._warn_skewed(new)
        self._warn_future(name, [f for f in folders if is_hour_folder(f)])
        return new, []

    def _warn_future(self, name: str, folders: list[str], now: float | None = None) -> None:
        """Warn (once an hour) when the newest hour folder is ahead of this machine's clock: an uploader's clock
        runs fast, every upload follows it there, and the cursor keeps that folder's names until its hour."""
        now = time.time() if now is None else now
        if not folders or max(folders) <= hour_folder(now + CLOCK_SKEW_WARN_S):
            return
        if now - self._skew_warned.get(f"hour folder {name}", -1e18) < 3600:
            return
        self._skew_warned[f"hour folder {name}"] = now
        log.warning(
            "example files of %r go to hour folder %s, ahead of this machine's clock (%s): an uploader's clock runs "
            "fast (the warnings above name it); ingest reads them all, but fix that machine's clock (NTP)",
            name,
            max(folders),
            hour_folder(now),
        )

    def _warn_skewed(self, refs: list[ExampleRef], now: float | None = None) -> None:
        from zeb_core.store.cursor import timestamp_seconds

        now = time.time() if now is None else now
        warned = self._skew_warned
        for ref in refs:
            skew = timestamp_seconds(ref.timestamp) - (ref.modified or now)
            if ref.modified == 0 and skew < 0:
                continue  # an old stamp with no store time to compare: an upload delay, not a clock
            if abs(skew) < CLOCK_SKEW_WARN_S or now - warned.get(ref.worker, -1e18) < 3600:
                continue
            warned[ref.worker] = now
            against = "the store's clock" if ref.modified else "this machine's clock"
            log.warning(
                "worker %r stamps its example files %.0f s %s %s (file %s): its clock is off (or the upload took "
                "that long); ingest does not depend on it, but fix that machine's clock (NTP)",
                ref.worker,
                abs(skew),
                "ahead of" if skew > 0 else "behind",
                against,
                ref.name,
            )

    @overload
    def read_examples(self, ref: ExampleRef) -> ExampleFile | None: ...
    @overload
    def read_examples(self, ref: ExampleRef, decode: Callable[[bytes], _Decoded]) -> _Decoded | None: ...
    def read_examples(self, ref: ExampleRef, decode: Callable[[bytes], Any] = decode_examples) -> Any:
        """A validated example file, or None after quarantining a bad one (never raises for bad content).
        `decode` reads another kind of example file (e.g. formats.bid_examples.decode_bid_examples): it raises
        FormatError on a bad file and returns an object with a `manifest` naming its `sha256`."""
        try:
            check_read_size(ref.path, ref.size, MAX_EXAMPLE_FILE_BYTES)  # the listing says so: not even a download
            data = self._call(f"download {ref.path}", self.examples.read, ref.path, None, MAX_EXAMPLE_FILE_BYTES)
        except NotFound:
            log.warning("example file %s vanished before it was read (pruned?); skipping it", ref.path)
            return None
        except TooLarge as exc:  # never read whole: moved aside unread
            self.quarantine(ref.path, None, str(exc))
            return None
        try:
            parsed = decode(data)
            if not parsed.manifest["sha256"].startswith(ref.hash16):
                raise FormatError("file name hash does not match its content")
            return parsed
        except FormatError as exc:
            self.quarantine(ref.path, data, str(exc))
            return None

    def quarantine(self, path: str, data: bytes | None, reason: str) -> None:
        """Move a bad file aside so nobody reads it again; if even that fails, log and go on. Without `data` (too
        large to read) the backend moves it; where it cannot (the Hub) it stays, read and skipped, with the note."""
        self.quarantined += 1
        target = QUARANTINE + path
        note = json.dumps({"path": path, "reason": reason, "time": time.time()}).encode()
        puts, deletes = ({target: data}, [path]) if data is not None else ({}, [])
        try:
            if data is None and not self._call(f"quarantine {path}", self.examples.move, path, target):
                log.error("could not move %s aside in %s (too large to read); it stays, skipped", path, self.url)
            self._call(
                f"quarantine {path}",
                self.examples.commit,
                {**puts, target + ".reason.json": note},
                deletes,
                f"{TAG} quarantine {path}: {reason}",
                False,
            )
            log.error("quarantined %s (%s) -> %s", path, reason, target)
        except StoreError as exc:
            log.error("bad example file %s (%s); could not quarantine it (%s); skipping it", path, reason, exc)

    def list_quarantine(self) -> list[FileInfo]:
        return [
            f
            for f in self._call("list quarantine", self.examples.list, QUARANTINE.rstrip("/"))
            if not f.path.endswith(".reason.json")
        ]

    def unread_examples(self, name: str = DEFAULT_NAME, refs: list[ExampleRef] | None = None) -> list[ExampleRef]:
        """Files the namespace's learner has not read, by the cursor of its last push (all of them when there is
        no readable push: nobody has read anything yet)."""
        refs = self.list_examples(name) if refs is None else refs
        state = self.peek_state(name) or {}
        cursor = state.get("cursor")
        reader = ExampleCursor.from_json(cursor if isinstance(cursor, dict) else None)
        return [r for r in refs if reader.is_new(r.name, r.folder)]

    def prune_examples(
        self,
        name: str = DEFAULT_NAME,
        keep: int | None = None,
        max_age_s: float | None = None,
        now: float | None = None,
        spare_unread: bool = True,
    ) -> PruneReport:
        """Delete example files beyond the newest `keep`, and those older than `max_age_s`, in one commit, but never
        one the namespace's learner has not read yet (its last push's cursor says which): every caller (the
        learner, the prune flow, `zeb store prune`) goes through here, and the report counts what was kept back.
        `spare_unread=False` lifts that rule: an operator's choice for a namespace whose learner is gone. The
        same commit removes the marker of each hour folder the prune leaves without example files, except the
        newest folder's: uploads never go below the newest folder (`cursor.py`), so it must stay listed."""
        from zeb_core.store.cursor import timestamp_seconds

        if keep is not None and keep < 0:
            raise StoreError(f"keep must be >= 0, not {keep}")
        folder = self._examples_dir(name)
        infos: list[FileInfo] = self._call("list examples", self.examples.list, folder.rstrip("/"))
        refs = _example_refs(folder, infos)
        now = time.time() if now is None else now
        doomed: set[str] = set()
        if keep is not None:
            doomed.update(r.path for r in refs[: max(0, len(refs) - keep)])
        if max_age_s is not None:
            doomed.update(r.path for r in refs if now - timestamp_seconds(r.timestamp) > max_age_s)
        unread = {r.path for r in self.unread_examples(name, refs)} if spare_unread else set()
        kept = doomed & unread
        paths = sorted(doomed - unread)
        if paths:
            markers = {f: info.path for info in infos if (f := _marked_folder(folder, info.path))}
            newest = max([*markers, *(r.folder for r in refs)])
            gone = set(paths)
            left = {r.folder for r in refs if r.path not in gone}
            empty = sorted(p for f, p in markers.items() if f < newest and f not in left)
            title = f"{TAG} prune {len(paths)} files of {name}"
            self._call("prune", self.examples.commit, {}, [*paths, *empty], title, False)
        if kept:
            log.info("prune of %s kept back %d example files its learner has not read yet", name, len(kept))
        return PruneReport(paths, len(kept), len(unread), len(refs))

    def prune_quarantine(self, max_age_s: float, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        infos = self._call("list quarantine", self.examples.list, QUARANTINE.rstrip("/"))
        paths = sorted(f.path for f in infos if _written(f) and now - _written(f) > max_age_s)
        if paths:
            self._call("prune quarantine", self.examples.commit, {}, paths, f"{TAG} prune quarantine", False)
        return paths

    # ================================================================ status
    def status(self, name: str = DEFAULT_NAME) -> dict[str, Any]:
        latest = self.peek_state(name, "latest")
        best = self.peek_state(name, "best")
        refs = self.list_examples(name)
        lease = Lease.peek(self, name)
        return {
            "url": self.url,
            "examples_url": self.examples.url,
            "name": name,
            "step": None if latest is None else latest.get("step"),
            "total_games": None if latest is None else latest.get("total_games"),
            "examples_ingested": None if latest is None else latest.get("examples_ingested"),
            "pushed_at": None if latest is None else latest.get("time"),
            "best_step": None if best is None else best.get("step"),
            "example_files": len(refs),
            "example_bytes": sum(r.size for r in refs),
            "newest_example": refs[-1].name if refs else None,
            "quarantined": len(self.list_quarantine()),
            "lease": lease,
        }


class _RateLimitedNow(StoreError):
    """A 429 wrapped so that `call_with_retry` (which retries StoreUnavailable) hands it back at once."""

    def __init__(self, cause: RateLimited) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _no_retry(fn: Callable[[], T]) -> Callable[[], T]:
    """`fn` with its RateLimited turned into _RateLimitedNow."""

    def call() -> T:
        try:
            return fn()
        except RateLimited as exc:
            raise _RateLimitedNow(exc) from None

    return call


def _example_refs(folder: str, infos: Sequence[FileInfo]) -> list[ExampleRef]:
    """The well-formed example files among `infos` that are the namespace's (directly in `folder`, or in one of
    its hour folders), oldest first by file-name timestamp."""
    out = []
    for info in infos:
        if not info.path.startswith(folder):
            continue
        hour, rel = split_key(info.path[len(folder) :])
        if hour and not is_hour_folder(hour):
            continue  # another namespace's folder, quarantine, ...
        parsed = parse_example_filename(rel)
        if parsed is None:
            continue
        out.append(ExampleRef(info.path, rel, parsed[0], parsed[1], parsed[2], info.size, info.modified, hour))
    out.sort(key=lambda r: (r.timestamp, r.name))
    return out


def _marked_folder(folder: str, path: str) -> str:
    """The hour folder whose marker `path` is ("" when it is none)."""
    hour, rel = split_key(path[len(folder) :]) if path.startswith(folder) else ("", "")
    return hour if rel == HOUR_MARKER and is_hour_folder(hour) else ""


class _StaleListing(StoreError):
    """An upload's listing is too old to commit on (`upload_example_files`)."""


def _written(info: FileInfo) -> float:
    """When a quarantined file was written: the backend's time, else (the Hub lists no times) the upload time in
    the name of the example file it is, or whose reason it gives; 0 when neither says."""
    if info.modified:
        return info.modified
    from zeb_core.store.cursor import timestamp_seconds

    parsed = parse_example_filename(info.path.removesuffix(".reason.json"))
    return timestamp_seconds(parsed[1]) if parsed else 0.0


def _parse_tag(message: str) -> dict[str, str] | None:
    if not message.startswith(f"{TAG} push "):
        return None
    head = message[len(TAG) + 6 :].split(":", 1)[0]
    return dict(part.split("=", 1) for part in head.split() if "=" in part)


class Lease:
    """One writer per namespace: a small JSON file swapped with compare-and-swap, renewed while alive.

    A lease whose `expires` lies in the past belongs to nobody (its learner died), so the next learner takes it.
    `keep_alive()` renews it from a daemon thread every ttl/3, so a cycle longer than the TTL (an evaluation and
    a promotion match of thousands of games) keeps it; when a renewal finds it taken, `lost` holds the reason and
    `check()` raises it, so the holder stops before it writes anything.
    """

    def __init__(self, store: Store, name: str, holder: str, ttl_s: float) -> None:
        self.store, self.name, self.holder, self.ttl_s = store, name, holder, ttl_s
        self.path = f"{name}-lease.json"
        self.held = False
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def peek(store: Store, name: str) -> dict[str, Any] | None:
        """The live lease record guarding `name` (NAME-bid: NAME's), or None."""
        data, _ = store.read_versioned(f"{lease_owner(name)}-lease.json")
        record = _lease_record(data)
        if record is None or record.get("expires", 0) < time.time():
            return None
        return record

    def _record(self) -> bytes:
        now = time.time()
        return json.dumps({"holder": self.holder, "acquired": now, "expires": now + self.ttl_s}).encode()

    def _swap(self, require_mine: bool, force: bool = False) -> None:
        for _ in range(10):
            data, token = self.store.read_versioned(self.path)
            record = _lease_record(data)
            held = record if record is not None and record.get("expires", 0) >= time.time() else None
            if held is not None and held["holder"] != self.holder and force:
                log.warning("%s takes the lease on %r from %r (forced)", self.holder, self.name, held["holder"])
            elif held is not None and held["holder"] != self.holder:
                left = held["expires"] - time.time()
                raise LeaseHeld(
                    f"namespace {self.name!r} in {self.store.url} is held by learner {held['holder']!r} "
                    f"(lease expires in {left:.0f}s unless renewed); stop that learner or use another --weights-name"
                )
            if require_mine and not (record is not None and record.get("holder") == self.holder):
                raise LeaseHeld(f"lost the lease on {self.name!r} (it expired and was taken or removed)")
            if self.store.write_if(self.path, self._record(), token):
                self.held = True
                return
        raise StoreError(f"could not take the lease on {self.name!r}: it kept changing under us")

    def acquire(self, force: bool = False) -> None:
        """Take the lease; LeaseHeld while another holder's lives, unless `force` (it is then taken from it)."""
        self._swap(require_mine=False, force=force)

    def renew(self) -> None:
        """Extend the lease now; raises LeaseHeld (and remembers why) when it is no longer ours."""
        self.check()
        try:
            self._swap(require_mine=True)
        except LeaseHeld as exc:
            self._lose(str(exc))
            raise LeaseHeld(self.lost) from None

    def check(self) -> None:
        """Raise LeaseHeld when a renewal found the lease lost."""
        if self.lost is not None:
            raise LeaseHeld(self.lost)

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = (
                f"{why}; learner {self.holder!r} stops without writing anything more to {self.name!r} "
                f"(another learner may be writing it now)"
            )
            self.held = False
            log.error("%s", self.lost)

    def keep_alive(self, interval_s: float | None = None) -> None:
        """Renew the lease every `interval_s` (ttl/3) from a daemon thread until `release()`."""
        if self._thread is not None:
            return
        interval = self.ttl_s / 3 if interval_s is None else interval_s
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, args=(interval,), name=f"lease-{self.name}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self, interval: float) -> None:
        while not self._stop.wait(interval) and self.lost is None:
            try:
                self._swap(require_mine=True)
            except LeaseHeld as exc:
                if not self._stop.is_set():  # not a renewal racing our own release
                    self._lose(str(exc))
                return
            except StoreError as exc:  # the store is down: try again at the next tick, before the TTL runs out
                log.warning("could not renew the lease on %r (%s); trying again in %.0fs", self.name, exc, interval)

    def stop_keep_alive(self) -> None:
        """Stop the renewal thread (it may finish a renewal in flight; the compare-and-swap keeps that safe)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def release(self) -> None:
        self.stop_keep_alive()
        if not self.held:
            return
        data, token = self.store.read_versioned(self.path)
        record = _lease_record(data)
        if record is not None and record.get("holder") == self.holder:
            gone = json.dumps({"holder": None, "released": time.time(), "expires": 0}).encode()
            self.store.write_if(self.path, gone, token)
        self.held = False


def _lease_record(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("expires", 0), (int, float)):
        return None
    return record if record.get("holder") else None
