"""The `pimc` player: Perfect Information Monte Carlo with the exact solver.

For the seat to move it deals `worlds` hidden hands consistent with what that seat knows (its own hand, the
public plays and the voids they reveal: `zeb_core.mcts.worlds.sample_worlds`, i.e. `InfoState.sample_world`),
solves every legal move in every world exactly (`zeb_core.solver.move_values`) and plays the move with the best
mean. The default objective is the benchmark's: +1 / 0 / -1 per world as the mover's team ends with more than,
exactly or fewer than 21 points (cheap null-window searches). `objective=contract` plays for the hand's real bid
instead (the full game, where `make_full_game_player` makes it pimc's default): +1 / -1 per world as the mover's
team can still make the bid (the bidder's team) or set it (the defenders), one null-window search per move.
Moves tied on that mean are told apart by the `tiebreak`: "points" (mean exact final points of the mover's team,
solved for the tied moves only), "heuristic" (the baseline heuristic's preference) or "first" (lowest domino id).
Forced moves are played without solving.
Over 1,000 games (seed 0) "points" was the strongest tiebreak: 77.7% vs random and 74.4% vs heuristic, against
74.7% / 71.9% for "heuristic"; objective=points reached 75.9% vs random, 32 worlds 79.4%. Letting the points
tiebreak also decide between moves one world in 16 apart (a margin of 1/16) gave 78.1% vs 78.4% without it (2,000
games vs random), so ties are exact. The clairvoyant bound, the same rule on the true deal, wins 86.5% vs random
and 83.3% vs heuristic (2,000 games each).

With `infer=W` the worlds are drawn from `candidates` (default 4 x worlds) uniform ones in proportion to a play
model's likelihood of the partner's past plays (`players.inference`; `infer_seats=others` scores the opponents
too). Against random, 2,000 games: 78.3% (76.7..79.8%), no better than uniform worlds (the partner is pimc, not
the model), at 41 decisions/s instead of 162.

With `prior=W` the network's Q head (the policy logits, trained on solver values averaged over worlds, centred and
divided by `TrainConfig.q_scale`) joins the mean as `k` more worlds (default 8): (N * mean + k * q) / (N + k). Moves
within `tie` worlds of the best (default 0: exact ties only) go to the tiebreak.

With `auction=1` (the full game only) the candidates are also weighted by the declarer's likelihood of its bid and
trump (`fullgame.inference`). It predicts the declarer's hand far better (bench/auction_inference.py) but did not
measurably change pimc's results: 53.0% of 200 games with the baseline bidder, 48.3% of 60 with `mc`, against the
same player with uniform worlds. Head to head against plain pimc, `infer=W,infer_seats=others` won 48.2% of 1,000
with W a full-game policy and 51.2% (49.2..53.3%) with a play-phase one (72.5% vs random): within the noise.

Spec: `pimc:worlds=N[,seed=S,objective=win|points|contract,tiebreak=points|heuristic|first,infer=W,candidates=K,
infer_seats=partner|others,floor=F,prior=W,k=K,tie=T,auction=0|1]`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch

from zeb_core.engine.dominoes import COUNT, N_DOMINOES, PIP_SUM, TABLES
from zeb_core.engine.state import GameState
from zeb_core.model.net import ZebNet
from zeb_core.players.inference import INFER_SEATS, draw_inferred_worlds
from zeb_core.players.interface import Decision, SpecError, pop_param, reject_unknown

OBJECTIVES = ("win", "points", "contract")  # contract: the real bid (the full game)
TIEBREAKS = ("points", "heuristic", "first")
_TIE_EPS = 1e-9


def heuristic_scores(state: GameState, games: torch.Tensor) -> np.ndarray:
    """[n, 28] the baseline heuristic's preference (higher first): lead called suit then high pips; follow cheap."""
    called = TABLES["called"][state.decl[games].cpu().numpy()]  # [n, 28]
    lead = called * 100 + PIP_SUM[None, :]
    follow = np.broadcast_to(-(COUNT * 100 + PIP_SUM), lead.shape)
    leading = (state.led_suit[games] < 0).cpu().numpy()[:, None]
    return np.where(leading, lead, follow).astype(np.float64)


class PimcPlayer:
    """Samples worlds for the seat to move and plays the move with the best mean exact value over them."""

    def __init__(
        self,
        worlds: int,
        objective: str = "win",
        tiebreak: str = "points",
        seed: int = 0,
        infer: ZebNet | None = None,
        candidates: int = 0,
        infer_seats: str = "partner",
        floor: float = 0.05,
        prior: ZebNet | None = None,
        prior_worlds: float = 8.0,
        tie_worlds: float = 0.0,
        auction: bool = False,
    ) -> None:
        if worlds < 1:
            raise SpecError(f"worlds={worlds} must be at least 1")
        if objective not in OBJECTIVES:
            raise SpecError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")
        if tiebreak not in TIEBREAKS:
            raise SpecError(f"tiebreak={tiebreak!r} must be one of {', '.join(TIEBREAKS)}")
        if not (0.0 <= prior_worlds < float("inf")) or not (0.0 <= tie_worlds < float("inf")):
            raise SpecError(f"k={prior_worlds} and tie={tie_worlds} must be finite and at least 0")
        if infer_seats not in INFER_SEATS:
            raise SpecError(f"infer_seats={infer_seats!r} must be one of {', '.join(INFER_SEATS)}")
        self.worlds, self.objective, self.tiebreak = worlds, objective, tiebreak
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.infer, self.infer_seats, self.floor = infer, infer_seats, floor
        self.prior, self.prior_worlds, self.tie_worlds = prior, prior_worlds, tie_worlds
        extra_prior = f", prior worth {prior_worlds:g} worlds" if prior is not None else ""
        self.auction = auction
        weighted = infer is not None or auction
        self.candidates = max(candidates or 4 * worlds, worlds) if weighted else worlds
        extra = f", infer {infer_seats} over {self.candidates}" if infer is not None else ""
        extra += f", auction-weighted over {self.candidates}" if auction else ""
        self.name = f"pimc(worlds={worlds}, {objective}{extra}{extra_prior})"
        self.decisions = 0  # searched (non-forced) decisions so far

    def decide(self, state: GameState, legal: torch.Tensor, games: torch.Tensor) -> Decision:
        legal_np = legal[games].cpu().numpy()  # [n, 28]
        n = len(games)
        values = np.where(legal_np, 0.0, np.nan)
        searched = np.flatnonzero(legal_np.sum(1) > 1)
        if len(searched):
            sub = games[torch.as_tensor(searched, dtype=torch.int64, device=games.device)]
            values[searched] = self._mean_values(state, sub, legal_np[searched])
            self.decisions += len(searched)
        moves = np.nanargmax(np.where(legal_np, values, -np.inf), axis=1)
        best = values[np.arange(n), moves]
        centre = 0.0 if self.objective == "win" else 21.0  # the mover's expected result, mapped into [-1, 1]
        value = np.clip(np.nan_to_num((best - centre) / max(centre, 1.0)), -1.0, 1.0)
        device = legal.device
        moves_t = torch.as_tensor(moves, dtype=torch.int64, device=device)
        policy = torch.nn.functional.one_hot(moves_t, N_DOMINOES).float()
        return Decision(moves=moves_t, policy=policy, value=torch.as_tensor(value, dtype=torch.float32, device=device))

    def _mean_values(self, state: GameState, games: torch.Tensor, legal: np.ndarray) -> np.ndarray:
        """[n, 28] the primary mean over worlds, with ties among the best moves broken into distinct values."""
        from zeb_core.solver import Positions, contract_targets, move_reach_values, move_values

        w = self.worlds
        sampled = self._sample(state, games)
        positions = Positions.from_state(sampled)
        if self.objective == "contract":
            values = move_reach_values(positions, contract_targets(sampled))
        else:
            values = move_values(positions, self.objective)
        mean = values.reshape(len(games), w, N_DOMINOES).mean(1)
        tol = _TIE_EPS
        if self.prior is not None:  # the network's Q head counts as prior_worlds more worlds
            k = self.prior_worlds
            mean = (w * mean + k * self._prior_q(state, games, legal)) / (w + k)
            tol = max(_TIE_EPS, self.tie_worlds / (w + k))
        best = np.nanmax(mean, axis=1, keepdims=True)
        tied = legal & (mean >= best - tol)
        multi = tied.sum(1) > 1
        if not multi.any() or self.tiebreak == "first":
            return mean
        if self.tiebreak == "heuristic":
            second = heuristic_scores(state, games)
        else:
            rows = np.flatnonzero(multi)
            picked = np.repeat(rows * w, w) + np.tile(np.arange(w), len(rows))
            only = np.repeat(tied[rows], w, axis=0)
            pts = move_values(positions.take(picked), "points", only=only)
            second = np.full(mean.shape, -np.inf)
            second[rows] = np.nan_to_num(self._tied_points_score(pts.reshape(len(rows), w, N_DOMINOES)), nan=-np.inf)
        # the secondary criterion only orders the tied best moves: squeeze it into (best, best + 0.5)
        rank = np.argsort(np.argsort(np.where(tied, second, -np.inf), axis=1), axis=1)
        return np.where(tied & multi[:, None], best + 0.5 * (rank + 1) / (N_DOMINOES + 1), mean)

    def _tied_points_score(self, points: np.ndarray) -> np.ndarray:
        """[r, 28] the "points" tiebreak's score of the tied moves from their exact final points in each world
        [r, worlds, 28] (NaN on the other moves): the mean. A hook, so variants can shape the margin (bench/)."""
        return points.mean(1)

    @torch.inference_mode()
    def _prior_q(self, state: GameState, games: torch.Tensor, legal: np.ndarray) -> np.ndarray:
        """[n, 28] the network's estimate of each legal move's mean value, centred over the legal moves (the policy
        head is trained as a Q head: centred logits regress on Q_SCALE times the centred solver values)."""
        from zeb_core.game.encoding import encode
        from zeb_core.learn.step import TrainConfig

        assert self.prior is not None
        sub = state.index(games)
        obs, legal_slots = encode(sub, legal=torch.as_tensor(legal, device=sub.current.device), trim=True)
        logits, _ = self.prior(obs, legal_slots)
        n = legal_slots.sum(1, keepdim=True).clamp(min=1)
        z = torch.where(legal_slots, logits.float(), 0.0)
        z = (z - z.sum(1, keepdim=True) / n) / TrainConfig.q_scale
        hand = sub.hand_of(sub.current)
        q28 = torch.zeros(len(games), N_DOMINOES).scatter(1, hand.cpu(), torch.where(legal_slots, z, 0.0).cpu())
        return q28.double().numpy()

    def _sample(self, state: GameState, games: torch.Tensor) -> GameState:
        """`worlds` deals per game: uniform, or drawn from more candidates by the play model's likelihood of the
        past plays and (auction=1) the declarer's likelihood of its bid and trump."""
        from zeb_core.mcts.worlds import sample_search_worlds

        if self.infer is None:  # uniform, or the auction's weights alone (the search's own sampler)
            return sample_search_worlds(state, games, self.worlds, self.rng, self.auction, self.candidates)
        auction: Callable[[GameState], torch.Tensor] | None = None
        if self.auction:
            from zeb_core.fullgame.inference import declarer_log_likelihood

            auction = declarer_log_likelihood
        return draw_inferred_worlds(
            self.infer, state, games, self.worlds, self.candidates, self.infer_seats, self.rng, self.gen,
            self.floor, extra_log_weight=auction,
        )  # fmt: skip


def pimc_from_spec(params: dict[str, str], device: torch.device, seed: int) -> PimcPlayer:
    worlds = pop_param(params, "worlds", int, 16)
    seed = pop_param(params, "seed", int, seed)
    objective = pop_param(params, "objective", str, "win")
    tiebreak = pop_param(params, "tiebreak", str, "points")
    infer_path = params.pop("infer", None)
    candidates = pop_param(params, "candidates", int, 0)
    infer_seats = pop_param(params, "infer_seats", str, "partner")
    floor = pop_param(params, "floor", float, 0.05)
    prior_path = params.pop("prior", None)
    prior_worlds = pop_param(params, "k", float, 8.0)
    tie_worlds = pop_param(params, "tie", float, 0.0)
    auction = bool(pop_param(params, "auction", int, 0))
    reject_unknown("pimc", params)
    return PimcPlayer(
        worlds, objective, tiebreak, seed, _load(infer_path, device), candidates, infer_seats, floor,
        _load(prior_path, device), prior_worlds, tie_worlds, auction,
    )  # fmt: skip


def _load(path: str | None, device: torch.device) -> ZebNet | None:
    if path is None:
        return None
    from zeb_core.model.checkpoint import load_model

    model, _ = load_model(path, device)
    return model.eval()
