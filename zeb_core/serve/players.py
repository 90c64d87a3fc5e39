"""Players for the server, built once per spec, and the list the web page offers.

Building a network player reads and checks a weights file, so each spec is built once and shared by every
request; store players refresh themselves (`StorePlayer.maybe_reload`). Listing the store's weights reads their
state JSON (`peek_state`: the step and the last evaluation's win rates) at most every `refresh_s` seconds.

With a store and no default spec, the default partner and opponents are the store's best weights (its latest
before any promotion, heuristic while it has none): serving a trained run offers that run's strongest bot.

The full game's bots are BIDDER+PLAYER: bidders are built once per spec too (`get_bidder`), the default being
`--bidder` or baseline, and `session` pairs a cached bidder and player in one bot-protocol session per seat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import torch

from zeb_core.bot import BotSession
from zeb_core.bot_v2 import default_bidder_spec, split_full_spec
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.fullgame.bidders import known_bidders, make_bidder
from zeb_core.fullgame.interface import Bidder
from zeb_core.players.base import Player, SpecError, make_player, parse_spec

BUILTIN = {
    "random": "a uniformly random legal domino",
    "heuristic": "the spec's baseline: lead trumps/high, follow cheap",
    "pimc:worlds=16": "the expert: 16 sampled deals, every move solved exactly, the best mean result",
}
POLICY_NOTE = (
    "Any player spec is accepted too: policy:path=DIR_OR_FILE[,temp=T] (a checkpoint's greedy move), "
    "mcts:path=...,sims=N, rollout:path=... (the checkpoint's policy played out over 16 sampled deals), "
    "or store:url=URL,which=latest|best. GET /v1/players?path=DIR lists a checkpoint."
)


FALLBACK_DEFAULT = "heuristic"


def store_spec(url: str, which: str, name: str = DEFAULT_NAME) -> str:
    return f"store:url={url},name={name},which={which}"


class PlayerPool:
    """Spec -> Player, built lazily and cached; a bad spec raises SpecError with one clear sentence."""

    def __init__(
        self,
        default: str | None = None,
        store_url: str | None = None,
        store_name: str = DEFAULT_NAME,
        device: torch.device | str = "cpu",
        refresh_s: float = 30.0,
        max_players: int = 32,
        default_bidder: str | None = None,
    ) -> None:
        self.store_url = store_url
        self.store_name = store_name
        self.device = torch.device(device)
        self.refresh_s = refresh_s
        self.max_players = max_players
        self._players: dict[str, Player] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.compute_lock = threading.Lock()  # players keep RNG state; decide one request at a time
        self._listing: tuple[float, list[dict[str, Any]]] | None = None
        self.default = (default or "").strip() or self._store_default() or FALLBACK_DEFAULT
        self._bidders: dict[str, Bidder] = {}
        self.default_bidder = (default_bidder or "").strip() or default_bidder_spec()

    def _store_default(self) -> str | None:
        """The store's best weights, else its latest, as a spec; None without a store or weights in it."""
        available = {e["which"]: e["spec"] for e in self._store_entries() if e["available"]}
        return available.get("best") or available.get("latest")

    def get(self, spec: str | None) -> Player:
        spec = (spec or self.default).strip()
        if not spec:
            raise SpecError("the player spec is empty")
        with self._lock:
            if spec in self._players:
                return self._players[spec]
            building = self._building.setdefault(spec, threading.Lock())
        with building:  # one build per spec; a slow one (a remote store) does not hold up the others
            with self._lock:
                if spec in self._players:
                    return self._players[spec]
            try:
                player = self._build(spec)
                with self._lock:
                    if len(self._players) >= self.max_players:  # drop the oldest, never the default
                        for key in list(self._players):
                            if key != self.default:
                                del self._players[key]
                                break
                    self._players[spec] = player
            finally:
                with self._lock:
                    self._building.pop(spec, None)
            return player

    def _build(self, spec: str) -> Player:
        kind, params = parse_spec(spec)
        if kind == "store" and "refresh" not in params:
            spec = f"{spec},refresh={self.refresh_s:g}"
        try:
            return make_player(spec, self.device, seed=0)
        except OSError as exc:  # a path the server may not read: the client's problem, said in one sentence
            raise SpecError(f"player spec {spec!r}: {exc.strerror or exc}") from None

    def get_bidder(self, spec: str | None) -> Bidder:
        """A bidder (the full game's auction), built once per spec like the players; SpecError for a bad one."""
        spec = (spec or self.default_bidder).strip()
        with self._lock:
            if spec in self._bidders:
                return self._bidders[spec]
        try:
            bidder = make_bidder(spec, self.device, seed=0)
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bidder that cannot be built is the client's bad spec
            raise SpecError(f"bidder spec {spec!r}: {exc}") from None
        with self._lock:
            if len(self._bidders) >= self.max_players:
                self._bidders.pop(next(k for k in self._bidders if k != self.default_bidder), None)
            return self._bidders.setdefault(spec, bidder)

    def full_spec(self, spec: str | None) -> str:
        """`BIDDER+PLAYER` for a full-game bot: a plain player spec bids with the default bidder."""
        if spec is None or not spec.strip():
            return f"{self.default_bidder}+{self.default}"
        bidder, player = split_full_spec(spec)
        return f"{bidder or self.default_bidder}+{player}"

    def session(self, full_spec: str, seed: int) -> BotSession:
        """A bot-protocol session for one seat of a full game (shared, cached bidder and player)."""
        bidder, player = split_full_spec(full_spec)
        return BotSession(self.get(player), seed, self.device, bidder=self.get_bidder(bidder))

    def bidder_listing(self, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Every bidder kind (available when it builds without parameters), the default, and `extra` specs."""
        entries: list[dict[str, Any]] = []
        specs = list(known_bidders()) + [self.default_bidder] + [e.strip() for e in extra if e.strip()]
        helps = known_bidders()
        for spec in dict.fromkeys(specs):
            entry: dict[str, Any] = {
                "spec": spec,
                "label": spec,
                "available": True,
                "default": spec == self.default_bidder,
            }
            try:
                entry["description"] = helps.get(spec) or self.get_bidder(spec).name
                if spec in helps:
                    self.get_bidder(spec)
            except SpecError as exc:
                entry.update(available=False, reason=str(exc))
            if entry["default"]:
                entry["label"] += " (server default)"
            entries.append(entry)
        return entries

    def built(self) -> list[tuple[str, Player]]:
        with self._lock:
            return list(self._players.items())

    def listing(self, paths: Sequence[str] = ()) -> list[dict[str, Any]]:
        """random, heuristic, the default, the store's latest and best, checkpoints at `paths`, and specs in use."""
        entries: list[dict[str, Any]] = [
            {"spec": kind, "label": kind, "description": text, "available": True} for kind, text in BUILTIN.items()
        ]
        entries.extend(self._store_entries())
        wanted = [self.default] + [f"policy:path={p.strip()}" for p in paths if p.strip()]
        wanted += [spec for spec, _ in self.built()]
        seen = {e["spec"] for e in entries}
        for spec in wanted:
            if spec in seen:
                continue
            seen.add(spec)
            entry: dict[str, Any] = {"spec": spec, "label": _label(spec), "available": True}
            try:
                entry["description"] = self.get(spec).name
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
            spec = store_spec(self.store_url, which, self.store_name)
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
                entry["description"] = f"the {which} weights of {self.store_name!r} in {self.store_url}"
            else:
                entry["reason"] = problem or f"the store has no {which} weights for {self.store_name!r} yet"
            entries.append(entry)
        self._listing = (now, entries)
        return [dict(e) for e in entries]


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
    if "path" in params:
        return f"{kind} {params['path'].rstrip('/').rsplit('/', 1)[-1] or params['path']}"
    if kind == "store":
        return f"store {params.get('which', 'latest')}"
    return spec
