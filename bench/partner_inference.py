"""How much pimc could gain from knowing its partner's hand, and how much the partner's plays tell about it.

1. Prediction: positions from games of `--team` (seats 0 and 2; `pimc:worlds=16`) against `--opponents` (random),
   at its decisions (not forced) from the sixth play on; `--team policy:path=W --opponents policy:path=W` asks
   what the network's own plays tell its partner, read by the network's own policy (issue 36's signals). Each
   position's mover samples `--candidates` uniform worlds and predicts,
   for every unseen domino, the probability that its partner holds it: uniform, or weighted by a play model's
   likelihood of the partner's past plays (`players.inference.play_log_likelihood`, the weights of `pimc:infer=W`)
   at each `--sharpen`; by the likelihood of the opponents' plays if they play at random; with `--mimic-worlds K`,
   also by a model of pimc itself: at each past partner decision of each world, the partner's mean move values
   over K worlds sampled from its view there (its hand in that world), softmax(beta x mean) at each `--beta`. One
   line each: log loss and Brier score per unseen domino (lower is better).
2. `--oracle-games N`: the ceiling. `pimc:worlds=16` whose worlds hold the partner's true hand (the opponents'
   split still uniform over the consistent deals) against random, over N games on the report's deals (or those of
   `zeb eval ... --seed S` with `--oracle-seed S`); `--oracle-reveal trump|count` tells it only where the trumps
   or the count dominoes lie, `--oracle-plays LO:HI` only at plays LO..HI-1 (`--games 0` skips part 1).

    .venv/bin/python bench/partner_inference.py WEIGHTS [--games 24] [--candidates 256] [--mimic-worlds 0]
        [--team SPEC] [--opponents SPEC]
        [--oracle-games 0 [--oracle-reveal all] [--oracle-plays 0:28] [--oracle-seed S]]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.dominoes import COUNT, DOUBLES_TRUMP, N_DOMINOES, TABLES
from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.evaluation.match import play_match
from zeb_core.evaluation.strength import REPORT_SEED, rate_text
from zeb_core.game.infoset import WorldSampler
from zeb_core.mcts.worlds import info_from_state, sample_worlds, worlds_from_hands
from zeb_core.model.checkpoint import load_model
from zeb_core.players.base import make_player
from zeb_core.players.inference import play_log_likelihood, scored_plays
from zeb_core.players.pimc import PimcPlayer
from zeb_core.solver import Positions, move_values

REVEALS = {"all": "hand", "trump": "trumps", "count": "count dominoes"}  # what of the partner's hand the oracle sees


class PartnerOraclePimc(PimcPlayer):
    """pimc whose worlds hold the partner's true hand: an upper bound on what inferring it can buy.

    `reveal` narrows what it knows to the partner's trumps or its count dominoes (where each of those lies:
    with the partner or not), and it knows only at plays `plays[0] <= n_plays < plays[1]`: which knowledge,
    and when, is worth the points."""

    def __init__(self, worlds: int, seed: int, reveal: str = "all", plays: tuple[int, int] = (0, 28)) -> None:
        super().__init__(worlds, seed=seed)
        self.reveal, self.plays = reveal, plays

    def _revealed(self, decl: int) -> np.ndarray:
        """[28] bool: the dominoes whose owner (partner or not) the oracle is told, under declaration `decl`."""
        if self.reveal == "trump":
            return TABLES["called"][decl] & (decl <= DOUBLES_TRUMP)  # doubles-as-suit and no-trump have none
        if self.reveal == "count":
            return COUNT > 0
        return np.ones(N_DOMINOES, dtype=bool)

    def _sample(self, state: GameState, games: torch.Tensor) -> GameState:
        if not self.plays[0] <= int(state.n_plays[games[0]]) < self.plays[1]:  # a match's games move in step
            return super()._sample(state, games)
        deals: list[list[list[int]]] = []
        for g in games.tolist():
            info = info_from_state(state, g)
            partner, true_owner = (info.seat + 2) % N_SEATS, state.owner[g].tolist()
            told = self._revealed(int(state.decl[g]))
            allowed: dict[int, tuple[int, ...]] = {}
            for d in info.unseen():
                seats = tuple(info.allowed_seats(d))
                if told[d]:
                    seats = (partner,) if true_owner[d] == partner else tuple(s for s in seats if s != partner)
                allowed[d] = seats
            sampler = WorldSampler(allowed, info.capacities())
            deals.extend(sampler.draw(self.rng, info.seat, info.hand) for _ in range(self.worlds))
        return worlds_from_hands(state, games, self.worlds, deals)


def pimc_mimic_log_likelihood(
    worlds: GameState, scored: torch.Tensor, k: int, betas: list[float], floor: float, rng: random.Random
) -> np.ndarray:
    """[len(betas), W] the log-probability of the scored seats' past searched plays in each world, under a model of
    pimc: the seat's mean "win" move values over k worlds drawn from its view at the time, softmax(beta x mean).
    Forced plays are left out (probability 1 under any model)."""
    total = np.zeros((len(betas), worlds.batch_size))
    for rows, replay, legal, played in scored_plays(worlds, scored):
        chose = legal[rows].sum(1) > 1
        rows, played_ids = rows[chose], played[chose].numpy()
        if not rows.numel():
            continue
        views = sample_worlds(replay, rows, k, rng)  # as the seat saw it then: its hand here, the rest drawn
        mean = move_values(Positions.from_state(views), "win").reshape(len(rows), k, 28).mean(1)
        n_legal = legal[rows].sum(1).numpy()
        for b, beta in enumerate(betas):
            z = np.where(np.isnan(mean), -np.inf, beta * mean)
            p = np.exp(z - z.max(1, keepdims=True))
            p_played = p[np.arange(len(rows)), played_ids] / p.sum(1)
            total[b, rows.numpy()] += np.log((1.0 - floor) * p_played + floor / n_legal)
    return total


def random_play_log_likelihood(worlds: GameState, scored: torch.Tensor) -> torch.Tensor:
    """[W] the log-probability of the scored seats' past plays in each world if they pick uniformly among their legal
    dominoes: not constant over the consistent worlds (a seat that followed suit holding one of the suit had no
    choice), so uniform worlds are not quite the posterior even against random opponents."""
    total = torch.zeros(worlds.batch_size, dtype=torch.float64)
    for rows, _, legal, _ in scored_plays(worlds, scored):
        total[rows] -= torch.log(legal[rows].sum(1).double())
    return total


def team_positions(games: int, seed: int, team: str, opponents: str) -> list[GameState]:
    """Snapshots of the `team` player's decisions (seats 0 and 2, not forced) from the sixth play on, in games
    against `opponents`: pimc against random by default; the network against itself for what its own plays say."""
    state = deal_benchmark(games, make_generator(seed))
    pimc, rnd = make_player(team, "cpu", seed=1), make_player(opponents, "cpu", seed=2)
    snaps = []
    for ply in range(24):
        legal = state.legal_mask()
        ours = state.current % 2 == 0
        moves = torch.zeros(games, dtype=torch.int64)
        for mask, player in ((ours, pimc), (~ours, rnd)):
            idx = mask.nonzero().flatten()
            if len(idx):
                moves[idx] = player.decide(state, legal, idx).moves
        searched = (ours & (legal.sum(1) > 1)).nonzero().flatten()
        if ply >= 5 and len(searched):
            snaps.append(state.index(searched))
        state.apply(moves, check=True)
    return snaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="the play model: a checkpoint folder or NAME.safetensors")
    ap.add_argument("--games", type=int, default=24, help="games whose positions are predicted")
    ap.add_argument("--candidates", type=int, default=256)
    ap.add_argument("--sharpen", default="1,2,4", help="comma-separated multipliers of the model's logits")
    ap.add_argument("--floor", type=float, default=0.02)
    ap.add_argument("--mimic-worlds", type=int, default=0, help="K worlds per past partner decision (0: skip)")
    ap.add_argument("--beta", default="4,8,16", help="comma-separated inverse temperatures of the pimc model")
    ap.add_argument("--oracle-games", type=int, default=0)
    ap.add_argument("--oracle-reveal", choices=list(REVEALS), default="all", help="what of the partner's hand it sees")
    ap.add_argument("--oracle-plays", default="0:28", help="LO:HI, the plays (n_plays) at which it sees it")
    ap.add_argument(
        "--oracle-seed", type=int, default=None, help="the deals and pimc's seed of `zeb eval ... --seed S`"
    )
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--team", default="pimc:worlds=16", help="who plays seats 0 and 2, whose partner is predicted")
    ap.add_argument("--opponents", default="random", help="who plays seats 1 and 3")
    args = ap.parse_args()
    setup(1)
    if args.games:
        print_predictions(args)
    if args.oracle_games:
        print_oracle(args)


def print_predictions(args: argparse.Namespace) -> None:
    """Part 1: one line per weighting of the candidate worlds, its log loss and Brier score per unseen domino."""
    model, _ = load_model(args.weights, "cpu")
    k, rng = args.candidates, random.Random(args.seed)
    settings: list[float | None] = [None] + [float(s) for s in args.sharpen.split(",")]
    betas = [float(b) for b in args.beta.split(",")] if args.mimic_worlds else []
    totals: dict[tuple[str, float | None], list[float]] = {
        **{("policy", s): [0.0, 0.0, 0] for s in settings},
        ("random", None): [0.0, 0.0, 0],
        **{("pimc", b): [0.0, 0.0, 0] for b in betas},
    }
    for snap in team_positions(args.games, args.seed, args.team, args.opponents):
        n = snap.batch_size
        cands = sample_worlds(snap, torch.arange(n), k, rng)
        partner = (cands.current + 2) % N_SEATS
        holds = (cands.owner == partner.view(-1, 1)).double().view(n, k, 28)
        truth = ((snap.owner == ((snap.current + 2) % N_SEATS).view(-1, 1)) & ~snap.played).double()
        unseen = (~snap.played) & (snap.owner != snap.current.view(-1, 1))
        scored = torch.nn.functional.one_hot(partner, N_SEATS).bool()
        log_ws: dict[tuple[str, float | None], torch.Tensor] = {}
        for s in settings:
            log_ws["policy", s] = (
                torch.zeros(n * k, dtype=torch.float64)
                if s is None
                else play_log_likelihood(model, cands, scored, args.floor, s).double()
            )
        rel = (torch.arange(N_SEATS).view(1, -1) - cands.current.view(-1, 1)) % N_SEATS
        log_ws["random", None] = random_play_log_likelihood(cands, rel % 2 == 1)
        if betas:
            mimic = pimc_mimic_log_likelihood(cands, scored, args.mimic_worlds, betas, args.floor, rng)
            log_ws.update({("pimc", b): torch.as_tensor(mimic[i]) for i, b in enumerate(betas)})
        for key, log_w in log_ws.items():
            w = torch.softmax(log_w.view(n, k), 1)
            p = (w.unsqueeze(2) * holds).sum(1).clamp(1e-4, 1 - 1e-4)
            loss = -(truth * p.log() + (1 - truth) * (1 - p).log())
            totals[key][0] += float(loss[unseen].sum())
            totals[key][1] += float(((p - truth) ** 2)[unseen].sum())
            totals[key][2] += int(unseen.sum())
    for (kind, s), (log_loss, brier, cells) in totals.items():
        if kind == "random":
            name = "weighted by the likelihood of the opponents' plays if they play at random (1 / legal dominoes)"
        elif s is None:
            name = "uniform worlds"
        elif kind == "policy":
            name = f"weighted by the policy's likelihood of the partner's plays (sharpen {s:g})"
        else:
            name = f"weighted by a pimc model of the partner's plays ({args.mimic_worlds} worlds, beta {s:g})"
        print(f"{name}: log loss {log_loss / cells:.4f}, Brier {brier / cells:.4f} per unseen domino ({cells} cells)")


def print_oracle(args: argparse.Namespace) -> None:
    """Part 2: the partner oracle's win rate against random."""
    lo, _, hi = args.oracle_plays.partition(":")
    s = args.oracle_seed
    seeds = (1, 2, REPORT_SEED) if s is None else (s, s + 1, s)  # the report's deals, or `zeb eval --seed S`'s
    oracle = PartnerOraclePimc(16, seeds[0], args.oracle_reveal, (int(lo), int(hi)))
    r = play_match(oracle, make_player("random", "cpu", seed=seeds[1]), args.oracle_games, seed=seeds[2])
    print(
        f"pimc:worlds=16 knowing its partner's {REVEALS[args.oracle_reveal]} at plays {lo}..{int(hi) - 1} vs random: "
        f"{rate_text(r)} over {r.games} games"
    )


if __name__ == "__main__":
    main()
