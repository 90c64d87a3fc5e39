"""The `store` player: a store's latest or best weights as a greedy PolicyPlayer that follows training.

A long-running server keeps one of these per spec. Before deciding it asks the store for the step of those
weights at most every `refresh` seconds (`latest_step` reads only the state JSON, so this is cheap) and pulls and
swaps in the weights when the step differs from the loaded one, so a page opened during training plays the
current network without a restart. A store that cannot answer never stops play: the loaded weights stay.

Coded against `zeb_core.store`: `open_store(url)`, `latest_step(name=, which=)`, `pull_weights(name=, which=)`
(a validated WeightsBundle or None) and errors derived from `StoreError`. Without that package every store spec
is a SpecError that says so, and nothing else changes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch

from zeb_core.engine.state import GameState
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.model.checkpoint import model_from_bundle
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown

WHICH = ("latest", "best")
DEFAULT_REFRESH_S = 30.0


def open_store_or_fail(url: str) -> Any:
    """The store at `url`; a SpecError (never an ImportError) when the store layer is missing or refuses the URL."""
    try:
        from zeb_core.store import open_store
    except ImportError as exc:
        raise SpecError(f"the weights store is not available in this installation ({exc})") from None
    try:
        return open_store(url)
    except Exception as exc:  # noqa: BLE001 - StoreError or a bad URL: one clear sentence either way
        raise SpecError(f"cannot open store {url!r}: {exc}") from None


class StorePlayer:
    """A PolicyPlayer over a store's `which` weights of namespace `name`, swapped when the store's step changes."""

    def __init__(
        self,
        store: Any,
        url: str,
        name: str = DEFAULT_NAME,
        which: str = "latest",
        device: torch.device | str = "cpu",
        temperature: float = 0.0,
        seed: int = 0,
        refresh_s: float = DEFAULT_REFRESH_S,
    ) -> None:
        if which not in WHICH:
            raise SpecError(f"which={which!r} must be latest or best")
        self.store, self.url, self.weights_name, self.which = store, url, name, which
        self.device, self.temperature, self.seed, self.refresh_s = torch.device(device), temperature, seed, refresh_s
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()
        self.step = -1
        self.loads = 0  # how many times weights were pulled and loaded (1 after construction)
        self.last_error: str | None = None
        self.inner: PolicyPlayer | None = None
        bundle = self._pull()
        if bundle is None:
            raise SpecError(f"store {url!r} has no {which} weights for {name!r} yet")
        self._load(bundle)

    @property
    def name(self) -> str:
        return f"store({self.which} {self.weights_name}, step {self.step})"

    def _pull(self) -> Any:
        try:
            return self.store.pull_weights(name=self.weights_name, which=self.which)
        except Exception as exc:  # noqa: BLE001 - StoreError, or bytes that fail validation
            raise SpecError(
                f"cannot read the {self.which} weights of {self.weights_name!r} from {self.url!r}: {exc}"
            ) from None

    def _load(self, bundle: Any) -> None:
        try:
            model = model_from_bundle(bundle, self.device)
        except Exception as exc:  # noqa: BLE001 - any failure to build the model becomes one SpecError
            raise SpecError(f"the store's {self.which} weights of {self.weights_name!r} do not load: {exc}") from None
        self.inner = PolicyPlayer(model, self.device, self.temperature, self.seed, name=f"store {self.which}")
        self.step = bundle.step
        self.loads += 1

    def maybe_reload(self, force: bool = False) -> bool:
        """Ask the store's step at most every `refresh_s` seconds; pull and load when it is not the loaded one.

        True when new weights were loaded. Failures are kept in `last_error` and the loaded weights stay.
        """
        with self._lock:
            if not force and time.monotonic() - self._checked_at < self.refresh_s:
                return False
            self._checked_at = time.monotonic()
            try:
                step = self.store.latest_step(name=self.weights_name, which=self.which)
                if step is None or int(step) == self.step:
                    self.last_error = None
                    return False
                bundle = self._pull()
                if bundle is None or bundle.step == self.step:
                    return False
                self._load(bundle)
            except Exception as exc:  # noqa: BLE001 - an unreachable store must not stop play
                self.last_error = str(exc)
                return False
            self.last_error = None
            return True

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        self.maybe_reload()
        assert self.inner is not None
        return self.inner.decide(state, legal, games)


def store_from_spec(params: dict[str, str], device: torch.device, seed: int) -> StorePlayer:
    if not params.get("url"):
        raise SpecError("store player needs url=URL (for example url=file:///abs/runs/NAME)")
    url = params.pop("url")
    name = params.pop("name", DEFAULT_NAME) or DEFAULT_NAME
    which = params.pop("which", "latest")
    if which not in WHICH:
        raise SpecError(f"which={which!r} must be latest or best")
    temp = pop_param(params, "temp", float, 0.0)
    refresh = pop_param(params, "refresh", float, DEFAULT_REFRESH_S)
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("store", params)
    if temp < 0:
        raise SpecError(f"temp={temp} must be >= 0")
    if refresh < 0:
        raise SpecError(f"refresh={refresh} must be >= 0 seconds")
    return StorePlayer(open_store_or_fail(url), url, name, which, device, temp, seed, refresh)
