"""Players for the server, built once per spec and kept within bounds, and the list the web page offers.

Building a network player reads and checks a weights file, so each spec is built once and shared by every
request and game that names it; the pool keeps at most `ServeLimits.max_players` players and bidders and
`player_memory_mb` of their networks, dropping the least recently used (never the defaults). A game holds its
bots by spec (`PooledPlayer`, `PooledBidder`), not their networks, so open games cannot keep a dropped one alive:
its next decision builds it again. Each built player decides one request at a time (it keeps RNG state); other
players decide meanwhile, so a search never holds up a heuristic move.

Every spec a client names goes through `ClientSpecs` (serve/limits.py): bounded, models by name, no paths or
store URLs; the operator's `--player`/`--bidder` are built as given. With a store and no default spec, the default
partner and opponents are the store's best weights (its latest before any promotion, heuristic while it has none):
serving a trained run offers that run's strongest bot.

The full game's bots are BIDDER+PLAYER: bidders are built once per spec too (`get_bidder`), the default being
`--bidder` or baseline, and `session` pairs a bidder and a player in one bot-protocol session per seat.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zeb_core.engine.state import GameState
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.fullgame.bidders import known_bidders, make_bidder
from zeb_core.fullgame.interface import AuctionView, BidDecision, Bidder, DeclDecision
from zeb_core.players.base import Decision, Player, SpecError, make_player, parse_spec
from zeb_core.serve.bot import BotSession
from zeb_core.serve.bot_v2 import default_bidder_spec, split_full_spec
from zeb_core.serve.limits import SEARCH_BIDDERS, SEARCH_PLAYERS, ClientSpecs, ServeLimits, spec_kind
from zeb_core.serve.models import BID, PLAY, OfferedModels

BUILTIN = {
    "random": "a uniformly random legal domino",
    "heuristic": "the spec's baseline: lead trumps/high, follow cheap",
    "pimc:worlds=16": "the expert: 16 sampled deals, every move solved exactly, the best mean result",
}
POLICY_NOTE = (
    "Any player spec within this server's limits (GET /v1/players: limits) is accepted too: policy:model=NAME"
    "[,temp=T] (a model the server offers, by name: its greedy move), mcts:model=NAME,sims=N, rollout:model=NAME"
    "[,worlds=W] (the model's policy played out over sampled deals), pimc:worlds=N[,infer=NAME,prior=NAME], or "
    "store:which=latest|best (the server's store). Paths and store URLs are the operator's alone: zeb serve "
    "--models DIR or --model NAME=PATH offers models by name, --store URL a store."
)
CHEAP_BUILDS = ("random", "heuristic", "baseline")  # built in no time: never waits for a search slot
PLAYER, BIDDER = "player", "bidder"

FALLBACK_DEFAULT = "heuristic"


def store_spec(url: str, which: str, name: str = DEFAULT_NAME) -> str:
    """The spec the server builds for a store's weights (a client names them `offered_store_spec(which)`)."""
    return f"store:url={url},name={name},which={which}"


def offered_store_spec(which: str) -> str:
    """How a client names the server's store's `which` weights."""
    return f"store:which={which}"


def held_bytes(obj: object, depth: int = 4, seen: set[int] | None = None) -> int:
    """Bytes of the tensors `obj` holds (its networks' parameters and buffers), found through its attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, torch.nn.Module):
        return sum(held_bytes(t, 0, seen) for t in (*obj.parameters(), *obj.buffers()))
    if isinstance(obj, dict):
        return sum(held_bytes(v, depth - 1, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(held_bytes(v, depth - 1, seen) for v in obj)
    attrs = getattr(obj, "__dict__", None)
    return sum(held_bytes(v, depth - 1, seen) for v in attrs.values()) if isinstance(attrs, dict) else 0


@dataclass
class Built:
    """A built player or bidder, the lock its decisions take, and the memory its networks hold."""

    thing: Any
    nbytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)


class PooledPlayer:
    """A player named by its spec and looked up in the pool at each decision (what a game holds)."""

    def __init__(self, pool: PlayerPool, spec: str) -> None:
        self.pool, self.spec, self.name = pool, spec, spec

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        entry = self.pool.entry(PLAYER, self.spec)
        with entry.lock:
            decision = entry.thing.decide(state, legal, games)
        self.name = self.pool.specs.scrub(entry.thing.name)
        return decision


class PooledBidder:
    """A bidder named by its spec and looked up in the pool at each decision (what a game holds)."""

    def __init__(self, pool: PlayerPool, spec: str) -> None:
        self.pool, self.spec, self.name = pool, spec, spec

    def _built(self) -> Built:
        entry = self.pool.entry(BIDDER, self.spec)
        self.name = self.pool.specs.scrub(entry.thing.name)
        return entry

    def bid(self, view: AuctionView) -> BidDecision:
        entry = self._built()
        with entry.lock:
            return entry.thing.bid(view)

    def declare(self, view: AuctionView) -> DeclDecision:
        entry = self._built()
        with entry.lock:
            return entry.thing.declare(view)


class PlayerPool:
    """Spec -> Player (and bidder), built lazily, cached within bounds; a bad spec raises SpecError (one sentence)."""

    def __init__(
        self,
        default: str | None = None,
        store_url: str | None = None,
        store_name: str = DEFAULT_NAME,
        device: torch.device | str = "cpu",
        refresh_s: float = 30.0,
        max_players: int | None = None,
        default_bidder: str | None = None,
        limits: ServeLimits | None = None,
        models: OfferedModels | None = None,
    ) -> None:
        self.limits = limits or ServeLimits()
        self.models = models or OfferedModels()
        self.store_url = store_url
        self.store_name = store_name
        self.device = torch.device(device)
        self.refresh_s = refresh_s
        self.max_players = max_players or self.limits.max_players
        self.max_bytes = int(self.limits.player_memory_mb * 2**20)
        self._built: OrderedDict[tuple[str, str], Built] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._listing: tuple[float, list[dict[str, Any]]] | None = None
        operator_player, operator_bidder = (default or "").strip(), (default_bidder or "").strip()
        self.specs = ClientSpecs(
            self.limits, self.models, store_url, store_name, {operator_player} - {""}, {operator_bidder} - {""}
        )
        self.default = operator_player or self._store_default() or FALLBACK_DEFAULT
        self.default_bidder = operator_bidder or default_bidder_spec()

    def _store_default(self) -> str | None:
        """The store's best weights, else its latest, as a spec; None without a store or weights in it."""
        available = {e["which"]: e["spec"] for e in self._store_entries() if e["available"]}
        return available.get("best") or available.get("latest")

    # ------------------------------------------------------------ built players and bidders
    def check(self, spec: str | None, role: str = PLAYER) -> str:
        """The spec a client named (its default when None), checked by the client spec policy: SpecError if bad."""
        spec = (spec or (self.default if role == PLAYER else self.default_bidder)).strip()
        if not spec:
            raise SpecError(f"the {role} spec is empty")
        self.specs.player(spec) if role == PLAYER else self.specs.bidder(spec)
        return spec

    def get(self, spec: str | None) -> Player:
        return self.entry(PLAYER, spec or self.default).thing

    def get_bidder(self, spec: str | None) -> Bidder:
        """A bidder (the full game's auction), built once per spec like the players; SpecError for a bad one."""
        return self.entry(BIDDER, spec or self.default_bidder).thing

    def entry(self, role: str, spec: str) -> Built:
        """The built player or bidder of `spec` (most recently used now), building it first if it is not."""
        key = (role, self.check(spec, role))
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one build per spec; a slow one (a remote store) does not hold up the others
            with self._lock:
                if key in self._built:
                    return self._built[key]
            try:
                thing = self._build(role, key[1])
                entry = Built(thing, held_bytes(thing))
                with self._lock:
                    self._built[key] = entry
                    self._evict(keep=key)
            finally:
                with self._lock:
                    self._building.pop(key, None)
            return entry

    def _evict(self, keep: tuple[str, str]) -> None:
        """Drop the least recently used until within max_players and max_bytes (never the defaults or `keep`)."""
        kept = {keep, (PLAYER, self.default), (BIDDER, self.default_bidder)}
        while len(self._built) > self.max_players or self.memory() > self.max_bytes:
            victim = next((k for k in self._built if k not in kept), None)
            if victim is None:
                return
            del self._built[victim]

    def memory(self) -> int:
        """Bytes of the networks the built players and bidders hold."""
        return sum(e.nbytes for e in self._built.values())

    def _build(self, role: str, spec: str) -> Any:
        internal = self.specs.player(spec) if role == PLAYER else self.specs.bidder(spec)
        if role == PLAYER and spec_kind(internal) == "store" and "refresh" not in parse_spec(internal)[1]:
            internal = f"{internal},refresh={self.refresh_s:g}"
        try:
            if role == PLAYER:
                return make_player(internal, self.device, seed=0)
            return make_bidder(internal, self.device, seed=0)
        except Exception as exc:  # noqa: BLE001 - a spec that cannot be built is one sentence, nothing more
            text = str(exc) if isinstance(exc, SpecError) else f"{role} spec {spec!r}: {_reason(exc)}"
            raise SpecError(self.specs.scrub(text.replace(internal, spec))) from None

    def is_search(self, spec: str, role: str = PLAYER) -> bool:
        """Whether deciding with `spec` is costly: a search, or a network that is not loaded yet."""
        kind = spec_kind(spec)
        if kind in (SEARCH_PLAYERS if role == PLAYER else SEARCH_BIDDERS):
            return True
        with self._lock:
            return kind not in CHEAP_BUILDS and (role, spec.strip()) not in self._built

    def full_is_search(self, full_spec: str) -> bool:
        bidder, player = split_full_spec(full_spec)
        return self.is_search(player) or (bidder is not None and self.is_search(bidder, BIDDER))

    def full_spec(self, spec: str | None) -> str:
        """`BIDDER+PLAYER` for a full-game bot (a plain player spec bids with the default bidder), checked."""
        if spec is None or not spec.strip():
            return f"{self.default_bidder}+{self.default}"
        bidder, player = split_full_spec(spec)
        bidder = self.check(bidder or self.default_bidder, BIDDER)
        return f"{bidder}+{self.check(player)}"

    def player(self, spec: str | None) -> PooledPlayer:
        return PooledPlayer(self, self.check(spec))

    def bidder(self, spec: str | None) -> PooledBidder:
        return PooledBidder(self, self.check(spec, BIDDER))

    def session(self, full_spec: str, seed: int) -> BotSession:
        """A bot-protocol session for one seat of a full game: its bidder and player named, not held."""
        bidder, player = split_full_spec(full_spec)
        return BotSession(self.player(player), seed, self.device, bidder=self.bidder(bidder))

    def built(self) -> list[tuple[str, Player]]:
        with self._lock:
            return [(spec, e.thing) for (role, spec), e in self._built.items() if role == PLAYER]

    # ------------------------------------------------------------ what the page offers
    def bidder_listing(self, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Every bidder kind (available when it builds without parameters), the default, the offered BidNets and
        `extra` specs."""
        entries: list[dict[str, Any]] = []
        helps = known_bidders()
        offered = [f"net:model={name}" for name in self.models.names(BID)]
        specs = list(helps) + [self.default_bidder] + offered + [e.strip() for e in extra if e.strip()]
        for spec in dict.fromkeys(specs):
            entry: dict[str, Any] = {
                "spec": spec,
                "label": spec,
                "available": True,
                "default": spec == self.default_bidder,
            }
            try:
                entry["description"] = helps.get(spec) or self.specs.scrub(self.get_bidder(spec).name)
                if spec in helps:
                    self.get_bidder(spec)
            except SpecError as exc:
                entry.update(available=False, reason=str(exc))
            if entry["default"]:
                entry["label"] += " (server default)"
            entries.append(entry)
        return entries

    def listing(self) -> list[dict[str, Any]]:
        """random, heuristic, the default, the store's latest and best, the offered models, and specs in use."""
        entries: list[dict[str, Any]] = [
            {"spec": kind, "label": kind, "description": text, "available": True} for kind, text in BUILTIN.items()
        ]
        entries.extend(self._store_entries())
        for name in self.models.names(PLAY):
            model = self.models.models[name]
            step = f" (step {model.step})" if model.step is not None else ""
            entries.append(
                {
                    "spec": f"policy:model={name}",
                    "label": f"policy {name}",
                    "description": f"the greedy policy of model {name!r}{step}",
                    "available": True,
                    "model": name,
                }
            )
        seen = {e["spec"] for e in entries}
        for spec in [self.default] + [spec for spec, _ in self.built()]:
            if spec in seen:
                continue
            seen.add(spec)
            entry: dict[str, Any] = {"spec": spec, "label": _label(spec), "available": True}
            try:
                entry["description"] = self.specs.scrub(self.get(spec).name)
            except SpecError as exc:
                entry.update(available=False, reason=str(exc))
            entries.append(entry)
        for e in entries:
            e["default"] = e["spec"] == self.default
            if e["default"]:
                e["label"] += " (server default)"
        return entries

    def _store_entries(self) -> list[dict[str, Any]]:
        if not self.store_url:
            return []
        now = time.monotonic()
        if self._listing is not None and now - self._listing[0] < self.refresh_s:
            return [dict(e) for e in self._listing[1]]
        entries = []
        store, problem = None, None
        try:
            from zeb_core.players.store_player import open_store_or_fail

            store = open_store_or_fail(self.store_url)
        except SpecError as exc:
            problem = str(exc)
        for which in ("latest", "best"):
            spec = offered_store_spec(which)
            entry: dict[str, Any] = {"spec": spec, "label": f"store {which}", "which": which, "available": False}
            state = None
            if store is not None:
                try:
                    state = store.peek_state(name=self.store_name, which=which)
                except Exception as exc:  # noqa: BLE001 - a store that cannot answer is listed as such
                    problem = f"the store did not answer: {exc}"
            if state is not None:
                step = int(state.get("step", 0))
                rates = _win_rates(state)
                entry.update(available=True, step=step, label=f"store {which} ({_summary(step, rates)})")
                if rates:
                    entry["eval"] = rates
                entry["description"] = f"the {which} weights of {self.store_name!r} in the server's store"
            else:
                reason = problem or f"the store has no {which} weights for {self.store_name!r} yet"
                entry["reason"] = self.specs.scrub(reason)
            entries.append(entry)
        self._listing = (now, entries)
        return [dict(e) for e in entries]


def _reason(exc: Exception) -> str:
    """One sentence for a build that failed: an OSError's own words, else the exception's."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _win_rates(state: dict[str, Any]) -> dict[str, Any]:
    """{"step", "vs_random", "vs_heuristic"} from the state's last evaluation, where it was recorded."""
    ev = state.get("last_eval")
    if not isinstance(ev, dict):
        return {}
    rates: dict[str, Any] = {}
    for opp in ("random", "heuristic"):
        rate = ev.get(f"eval/vs_{opp}_win_rate")
        if isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0:
            rates[f"vs_{opp}"] = float(rate)
    if rates and isinstance(ev.get("step"), int):
        rates["step"] = ev["step"]
    return rates


def _summary(step: int, rates: dict[str, Any]) -> str:
    """`step 340, 71.5% vs random, 65.1% vs heuristic` (`..., at step 320` when evaluated earlier)."""
    parts = [f"step {step}"] + [
        f"{rates[k]:.1%} {k.replace('_', ' ')}" for k in ("vs_random", "vs_heuristic") if k in rates
    ]
    if len(parts) > 1 and rates.get("step", step) != step:
        parts[-1] += f" at step {rates['step']}"
    return ", ".join(parts)


def _label(spec: str) -> str:
    """A short name for a spec: `policy model` for policy:path=runs/x/model, the spec itself otherwise."""
    try:
        kind, params = parse_spec(spec)
    except SpecError:
        return spec
    if "model" in params:
        return f"{kind} {params['model']}"
    if "path" in params:
        return f"{kind} {params['path'].rstrip('/').rsplit('/', 1)[-1] or params['path']}"
    if kind == "store":
        return f"store {params.get('which', 'latest')}"
    return spec
