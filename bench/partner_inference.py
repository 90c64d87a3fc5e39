"""How much pimc could gain from knowing its partner's hand, and how much the partner's plays tell about it.

1. Prediction: positions from games of `pimc:worlds=16` (seats 0 and 2) against random, at decisions of a pimc seat
   (not forced) from the sixth play on. Each position's mover samples `--candidates` uniform worlds and predicts,
   for every unseen domino, the probability that its partner holds it: uniform, or weighted by a play model's
   likelihood of the partner's past plays (`players.inference.play_log_likelihood`, the weights of `pimc:infer=W`)
   at each `--sharpen`. One line each: log loss and Brier score per unseen domino (lower is better).
2. `--oracle-games N`: the ceiling. `pimc:worlds=16` whose worlds hold the partner's true hand (the opponents'
   split still uniform over the consistent deals) against random, over N games on the report's deals.

    .venv/bin/python bench/partner_inference.py WEIGHTS [--games 24] [--candidates 256] [--oracle-games 0]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup

from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import N_SEATS, GameState
from zeb_core.infoset import WorldSampler
from zeb_core.match import play_match
from zeb_core.mcts.worlds import info_from_state, sample_worlds, worlds_from_hands
from zeb_core.model.checkpoint import load_model
from zeb_core.players.base import make_player
from zeb_core.players.inference import play_log_likelihood
from zeb_core.players.pimc import PimcPlayer
from zeb_core.strength import REPORT_SEED, rate_text


class PartnerOraclePimc(PimcPlayer):
    """pimc whose worlds hold the partner's true hand: an upper bound on what inferring it can buy."""

    def _sample(self, state: GameState, games: torch.Tensor) -> GameState:
        deals: list[list[list[int]]] = []
        for g in games.tolist():
            info = info_from_state(state, g)
            partner, true_owner = (info.seat + 2) % N_SEATS, state.owner[g].tolist()
            allowed = {
                d: (partner,) if true_owner[d] == partner else tuple(s for s in info.allowed_seats(d) if s != partner)
                for d in info.unseen()
            }
            sampler = WorldSampler(allowed, info.capacities())
            deals.extend(sampler.draw(self.rng, info.seat, info.hand) for _ in range(self.worlds))
        return worlds_from_hands(state, games, self.worlds, deals)


def pimc_positions(games: int, seed: int) -> list[GameState]:
    """Snapshots of pimc's searched decisions (seats 0 and 2) from the sixth play on, in games against random."""
    state = deal_benchmark(games, make_generator(seed))
    pimc, rnd = make_player("pimc:worlds=16", "cpu", seed=1), make_player("random", "cpu", seed=2)
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
    ap.add_argument("--oracle-games", type=int, default=0)
    ap.add_argument("--seed", type=int, default=77)
    args = ap.parse_args()
    setup(1)
    model, _ = load_model(args.weights, "cpu")
    k, rng = args.candidates, random.Random(args.seed)
    settings = [None] + [float(s) for s in args.sharpen.split(",")]
    totals = {s: [0.0, 0.0, 0] for s in settings}
    for snap in pimc_positions(args.games, args.seed):
        n = snap.batch_size
        cands = sample_worlds(snap, torch.arange(n), k, rng)
        partner = (cands.current + 2) % N_SEATS
        holds = (cands.owner == partner.view(-1, 1)).double().view(n, k, 28)
        truth = ((snap.owner == ((snap.current + 2) % N_SEATS).view(-1, 1)) & ~snap.played).double()
        unseen = (~snap.played) & (snap.owner != snap.current.view(-1, 1))
        scored = torch.nn.functional.one_hot(partner, N_SEATS).bool()
        for s in settings:
            if s is None:
                w = torch.full((n, k), 1.0 / k, dtype=torch.float64)
            else:
                log_w = play_log_likelihood(model, cands, scored, args.floor, s).double().view(n, k)
                w = torch.softmax(log_w, 1)
            p = (w.unsqueeze(2) * holds).sum(1).clamp(1e-4, 1 - 1e-4)
            loss = -(truth * p.log() + (1 - truth) * (1 - p).log())
            totals[s][0] += float(loss[unseen].sum())
            totals[s][1] += float(((p - truth) ** 2)[unseen].sum())
            totals[s][2] += int(unseen.sum())
    for s, (loss, brier, cells) in totals.items():
        name = "uniform worlds" if s is None else f"weighted by the partner's plays (sharpen {s:g})"
        print(f"{name}: log loss {loss / cells:.4f}, Brier {brier / cells:.4f} per unseen domino ({cells} cells)")
    if args.oracle_games:
        oracle, rnd = PartnerOraclePimc(16, seed=1), make_player("random", "cpu", seed=2)
        r = play_match(oracle, rnd, args.oracle_games, seed=REPORT_SEED)
        print(f"pimc:worlds=16 knowing its partner's hand vs random: {rate_text(r)} over {r.games} games")


if __name__ == "__main__":
    main()
