"""What a client of `zeb serve` may ask for, and the one policy every client-given player or bidder spec goes through.

`ServeLimits` holds the server's settings for it: the most a spec may cost (pimc and mc worlds, mcts simulations
and nodes, rollout worlds), the time budget of a request's decisions, how many searches run at once, and the games
and players the server keeps. `ClientSpecs` checks a client's spec against them and rewrites it into the spec the
server builds: every cost parameter bounded (over a limit: a 400 that names the limit and its setting), a model
named by `model=NAME` (`infer=NAME`, `prior=NAME` for pimc) resolved against the operator's offered models,
`store:which=latest|best` the operator's `--store`. A path, a store URL (and so its `?faults=` test hook), a store
namespace or refresh period are the operator's alone: from a client they are refused, and nothing is read. The
operator's own `--player`/`--bidder` specs are trusted as given.

`DecisionRunner` runs a request's decisions in a worker thread: searches (pimc, mcts, rollout, the mc bidder, and
any spec whose network is not loaded yet) take turns in `searches` slots, so cheap players never wait behind them
(each player has its own lock, and the solver's kernels run without the GIL), and a request still deciding after
`decision_timeout_s` is answered 504 while its decision finishes in the background (it holds only its own player
and a search slot, and a bounded spec finishes soon). The solver compiles before the first search, outside its
budget. SIGTERM: `zeb serve` lets requests in flight finish for `shutdown_s`, then exits.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.players.interface import SpecError, parse_spec
from zeb_core.serve.models import BID, PLAY, OfferedModels

T = TypeVar("T")


class ServeLimits(BaseModel):
    """Bounds on what clients of `zeb serve` may ask (`zeb serve --limit FIELD=VALUE`). Times measured on the 2-core
    machine with the small network, from a hand's first play (the costliest)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    pimc_worlds: int = Field(default=64, ge=1)
    """Most deals a client's pimc player may solve per move (pimc:worlds=): 64 take 0.1 s (0.4 s with
    objective=points)."""
    pimc_candidates: int = Field(default=256, ge=1)
    """Most candidate worlds a pimc player weighs by a play model or the auction (candidates=, 4 x worlds unless
    given)."""
    mcts_sims: int = Field(default=200, ge=1)
    """Most simulations per move of a client's mcts player (mcts:sims=): 200 take 0.25 s."""
    mcts_worlds: int = Field(default=8, ge=1)
    """Most sampled worlds per move of an mcts player (mcts:worlds=)."""
    mcts_nodes: int = Field(default=400, ge=1)
    """Most nodes per mcts tree (mcts:nodes=, 2 x sims unless given)."""
    rollout_worlds: int = Field(default=16, ge=1)
    """Most worlds a rollout player plays out per move (rollout:worlds=): 16 take 1.5 s."""
    rollout_solve_plays: int = Field(default=28, ge=0)
    """Most plays the solver finishes a rollout with (rollout:solve_plays=)."""
    mc_worlds: int = Field(default=32, ge=1)
    """Most deals the mc bidder solves per declaration (mc:worlds=): 32 with all ten declarations take 0.2 s."""
    mc_decls: int = Field(default=10, ge=1)
    """Most declarations the mc bidder tries (mc:decls=)."""
    decision_timeout_s: float = Field(default=10.0, gt=0)
    """Time budget of one request's bot decisions: a request still deciding after it is answered 504 with the
    reason; its decisions finish in the background (a game then shows them)."""
    search_wait_s: float = Field(default=10.0, ge=0)
    """How long a search request (pimc, mcts, rollout, mc, or a network not loaded yet) waits for a slot before a
    503 asks it to try again."""
    searches: int = Field(default=1, ge=1)
    """Search requests decided at once; the others wait (search_wait_s). Cheap players never wait for them."""
    threads: int = Field(default=32, ge=2)
    """Worker threads that run the bots' decisions (searches use at most `searches` of them at once; a thread that
    has searched keeps the solver's 8 MiB tables)."""
    max_games: int = Field(default=1000, ge=1)
    """Games kept in memory (one-hand and full games each); past it the longest idle game is dropped."""
    games_per_client: int = Field(default=20, ge=1)
    """Games one client address keeps; its new game drops its own longest idle one, never another client's."""
    game_idle_s: float = Field(default=3600.0, gt=0)
    """A game nobody has touched for this long is dropped."""
    max_players: int = Field(default=32, ge=1)
    """Players and bidders kept built (games name theirs and rebuild one that was dropped)."""
    player_memory_mb: float = Field(default=1024.0, gt=0)
    """Memory of the networks those players hold, in MiB; past it the least recently used is dropped (the
    default player stays)."""
    shutdown_s: float = Field(default=3.0, ge=0)
    """After SIGTERM or Ctrl-C, how long requests in flight may still finish before the server exits."""


class RequestRefused(Exception):
    """A request the server will not answer now (busy, over its time budget); `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# How a client's spec parameter is checked: a ServeLimits field bounds an integer; or one of these.
SEED, FLOAT, FLAG, WORD, MODEL = "seed", "float", "flag", "word", "model"
PLAYER_PARAMS: dict[str, dict[str, str]] = {
    "random": {"seed": SEED},
    "heuristic": {},
    "policy": {"model": MODEL, "temp": FLOAT, "seed": SEED},
    "mcts": {
        "model": MODEL, "sims": "mcts_sims", "worlds": "mcts_worlds", "nodes": "mcts_nodes", "c": FLOAT,
        "clairvoyant": FLAG, "target": WORD, "auction": FLAG, "seed": SEED,
    },
    "pimc": {
        "worlds": "pimc_worlds", "seed": SEED, "objective": WORD, "tiebreak": WORD, "infer": MODEL,
        "candidates": "pimc_candidates", "infer_seats": WORD, "floor": FLOAT, "prior": MODEL, "k": FLOAT,
        "tie": FLOAT, "auction": FLAG,
    },
    "rollout": {
        "model": MODEL, "worlds": "rollout_worlds", "solve_plays": "rollout_solve_plays", "objective": WORD,
        "seed": SEED, "mix": FLOAT,
    },
    "store": {"which": WORD, "temp": FLOAT, "seed": SEED},
}  # fmt: skip
BIDDER_PARAMS: dict[str, dict[str, str]] = {
    "random": {"pass": FLOAT, "seed": SEED},
    "baseline": {"margin": FLOAT},
    "mc": {"worlds": "mc_worlds", "threshold": FLOAT, "decls": "mc_decls", "bid": WORD, "seed": SEED},
    "net": {"model": MODEL, "temp": FLOAT, "margin": FLOAT, "seed": SEED},
}
# The factories' defaults of the bounded parameters: a spec that leaves one out costs that much.
DEFAULTS = {
    ("pimc", "worlds"): 16,
    ("mcts", "sims"): 50,
    ("mcts", "worlds"): 4,
    ("rollout", "worlds"): 16,
    ("rollout", "solve_plays"): 12,
    ("mc", "worlds"): 8,
    ("mc", "decls"): 4,
}
OPERATOR_ONLY = ("path", "url", "name", "refresh")  # what only the operator's command line may say
SEARCH_PLAYERS = ("pimc", "mcts", "rollout")
SEARCH_BIDDERS = ("mc",)
MAX_SEED = 2**63 - 1
MAX_FLOAT = 1e6
WORD_RE = re.compile(r"^[a-z][a-z_-]{0,31}$")


class ClientSpecs:
    """The client spec policy: a client's player or bidder spec in, the spec the server builds out (or SpecError)."""

    def __init__(
        self,
        limits: ServeLimits,
        models: OfferedModels,
        store_url: str | None = None,
        store_name: str = DEFAULT_NAME,
        trusted_players: set[str] | None = None,
        trusted_bidders: set[str] | None = None,
    ) -> None:
        self.limits, self.models = limits, models
        self.store_url, self.store_name = store_url, store_name
        self.trusted = {"player": trusted_players or set(), "bidder": trusted_bidders or set()}  # the operator's

    def player(self, spec: str) -> str:
        return self._check(spec.strip(), "player", PLAYER_PARAMS, PLAY)

    def bidder(self, spec: str) -> str:
        return self._check(spec.strip(), "bidder", BIDDER_PARAMS, BID)

    def _check(self, spec: str, what: str, table: dict[str, dict[str, str]], model_kind: str) -> str:
        if spec in self.trusted[what]:
            return spec
        kind, params = parse_spec(spec)
        if kind not in table:
            raise SpecError(f"unknown {what} {kind!r} in {spec!r}; known: {', '.join(sorted(table))}")
        refused = [k for k in OPERATOR_ONLY if k in params]
        if refused:
            raise SpecError(self._operator_only(spec, what, kind, refused[0]))
        rules = table[kind]
        unknown = sorted(k for k in params if k not in rules)
        if unknown:
            raise SpecError(f"{kind} {what} does not take {', '.join(unknown)}")
        if rules.get("model") == MODEL and "model" not in params:
            raise SpecError(
                f"{kind} {what} needs model=NAME, a model this server offers (GET /v1/players lists them): "
                f"{', '.join(self.models.names(model_kind)) or 'none offered'}"
            )
        out: dict[str, str] = {}
        for key, raw in params.items():
            out.update(self._param(spec, kind, key, raw, rules[key], model_kind))
        self._within_limits(spec, kind, params)
        if kind == "store":
            out = self._store(out)
        return f"{kind}:{','.join(f'{k}={v}' for k, v in out.items())}" if out else kind

    def _operator_only(self, spec: str, what: str, kind: str, key: str) -> str:
        head = f"{what} spec {spec!r}: {key}= is accepted only from the server's command line"
        if kind == "store":
            return f"{head}; store:which=latest|best plays the weights of the server's --store"
        return f"{head}; name one of the models the server offers: {kind}:model=NAME (GET /v1/players lists them)"

    def _param(self, spec: str, kind: str, key: str, raw: str, rule: str, model_kind: str) -> dict[str, str]:
        """{key: value} as the factory takes it; SpecError for a value out of its bounds."""
        if rule == MODEL:
            path = str(self.models.resolve(raw, model_kind).path)
            return {"path" if key == "model" else key: path}
        if rule == WORD:
            if not WORD_RE.match(raw):
                raise SpecError(f"{key}={raw!r} in {spec!r} must be a lowercase word")
            return {key: raw}
        if rule == FLAG:
            if raw not in ("0", "1"):
                raise SpecError(f"{key}={raw!r} in {spec!r} must be 0 or 1")
            return {key: raw}
        if rule == FLOAT:
            value = _number(spec, key, raw, float)
            if not math.isfinite(value) or abs(value) > MAX_FLOAT:
                raise SpecError(f"{key}={raw!r} in {spec!r} must be a finite number within +-{MAX_FLOAT:g}")
            return {key: raw}
        number = _number(spec, key, raw, int)
        if number < 0:
            raise SpecError(f"{key}={number} in {spec!r} must be at least 0")
        if rule == SEED and number > MAX_SEED:
            raise SpecError(f"{key}={number} in {spec!r} must be at most {MAX_SEED} (2**63 - 1)")
        if rule != SEED and number > getattr(self.limits, rule):
            raise SpecError(_over(spec, key, number, getattr(self.limits, rule), rule))
        return {key: str(number)}

    def _within_limits(self, spec: str, kind: str, params: dict[str, str]) -> None:
        """The defaults and derived counts a spec leaves implicit are bounded too."""
        for (k, key), default in DEFAULTS.items():
            field = PLAYER_PARAMS.get(k, {}).get(key) or BIDDER_PARAMS.get(k, {}).get(key)
            if k == kind and key not in params and field and default > getattr(self.limits, field):
                raise SpecError(_over(spec, f"{key} (default)", default, getattr(self.limits, field), field))
        if kind == "pimc" and ("infer" in params or params.get("auction") == "1"):
            worlds = int(params.get("worlds", DEFAULTS["pimc", "worlds"]))
            candidates = max(int(params.get("candidates", 0)) or 4 * worlds, worlds)
            if candidates > self.limits.pimc_candidates:
                raise SpecError(_over(spec, "candidates (4 x worlds)", candidates, self.limits.pimc_candidates,
                                      "pimc_candidates"))  # fmt: skip
        if kind == "mcts" and "nodes" not in params:
            nodes = max(128, 2 * int(params.get("sims", DEFAULTS["mcts", "sims"])))
            if nodes > self.limits.mcts_nodes:
                raise SpecError(_over(spec, "nodes (2 x sims)", nodes, self.limits.mcts_nodes, "mcts_nodes"))

    def _store(self, params: dict[str, str]) -> dict[str, str]:
        if not self.store_url:
            raise SpecError("this server has no store to play from (the operator names one with zeb serve --store)")
        if params.get("which", "latest") not in ("latest", "best"):
            raise SpecError(f"which={params['which']!r} must be latest or best")
        return {"url": self.store_url, "name": self.store_name, **params}

    def scrub(self, text: str) -> str:
        """`text` with the server's own locations (models, store URL) replaced by names: what a client may read."""
        text = self.models.scrub(text)
        return text.replace(self.store_url, "<the server's store>") if self.store_url else text


def _number(spec: str, key: str, raw: str, cast: type) -> Any:
    try:
        return cast(raw)
    except ValueError:
        raise SpecError(f"{key}={raw!r} in {spec!r} is not a valid {cast.__name__}") from None


def _over(spec: str, key: str, value: int, limit: int, field: str) -> str:
    return (
        f"{spec!r}: {key}={value} is above this server's limit of {limit} (ServeLimits.{field}; the operator "
        f"sets it with zeb serve --limit {field}=N)"
    )


def spec_kind(spec: str) -> str:
    """The kind of a spec (`pimc` of `pimc:worlds=8`), '' for one that does not parse."""
    try:
        return parse_spec(spec)[0]
    except SpecError:
        return ""


_warm = threading.Lock()
_warmed = False


def _warm_solver() -> None:
    """Compile the solver's kernels once per process (seconds): the first search's budget is for deciding."""
    global _warmed
    with _warm:
        if not _warmed:
            from zeb_core.solver import warm_up

            warm_up()
            _warmed = True


class DecisionRunner:
    """Runs a request's decisions in a worker thread, under the time budget; searches take turns in slots."""

    def __init__(self, limits: ServeLimits) -> None:
        self.limits = limits
        self.executor = ThreadPoolExecutor(limits.threads, thread_name_prefix="zeb-decide")
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.searching = 0  # searches holding a slot now (one past its budget included, until it is done)

    def _semaphore(self) -> asyncio.Semaphore:
        """The search slots of the running event loop (a test client may run the app in a new loop)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.limits.searches))
        return self._slots[1]

    def _release(self, slots: asyncio.Semaphore) -> None:
        self.searching -= 1
        slots.release()

    async def run(self, fn: Callable[[], T], search: bool) -> T:
        """fn() in a worker thread; RequestRefused 503 when no search slot frees in time, 504 past the budget."""
        slots = self._semaphore()
        if search:
            try:
                async with asyncio.timeout(self.limits.search_wait_s):
                    await slots.acquire()
            except TimeoutError:
                raise RequestRefused(
                    f"the server is busy with other searches (it runs {self.limits.searches} at a time, "
                    "ServeLimits.searches); try again in a few seconds, or ask a cheaper player",
                    503,
                ) from None
            self.searching += 1
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, _warm_solver)  # outside the budget
            except BaseException:
                self._release(slots)
                raise
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn)
        if search:
            future.add_done_callback(lambda _: self._release(slots))  # when done, not when the client stops waiting
        try:
            async with asyncio.timeout(self.limits.decision_timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no "never retrieved"
            raise RequestRefused(
                f"the bots' decisions took longer than this server's budget of {self.limits.decision_timeout_s:g} s "
                "(ServeLimits.decision_timeout_s); they finish in the background. Ask for fewer worlds or "
                "simulations",
                504,
            ) from None


__all__ = ["ClientSpecs", "DecisionRunner", "RequestRefused", "ServeLimits", "spec_kind"]
