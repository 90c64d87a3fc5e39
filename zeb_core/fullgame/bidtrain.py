"""Training the BidNet: the loss, one optimiser step, a replay buffer, and a standalone self-play loop.

Loss = cross-entropy of decl_points on every labelled declaration (the bidder's team's points under d) +
`q_weight` x MSE of bid_q on the taken bid action against the realised marks of the seat's team.

The standalone loop (`train_standalone`, also `python -m zeb_core.fullgame.bidtrain`) alternates self-play of
hands (`selfplay.play_hands`) and training steps in one process for N minutes and saves the net as a weights
bundle (`bidnet.save_bidnet`: safetensors + JSON, checksummed) every few minutes and at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from zeb_core.engine.deal import make_generator
from zeb_core.formats.weights import default_state
from zeb_core.fullgame.bidnet import BidNet, load_bidnet, save_bidnet
from zeb_core.fullgame.selfplay import HandExamples, SelfPlayConfig, play_hands
from zeb_core.players.base import make_player


def bid_losses(net: BidNet, bid: HandExamples, decl: HandExamples | None = None) -> dict[str, torch.Tensor]:
    """{"decl": CE over labelled declarations, "q": MSE of bid_q on taken actions}; `decl` defaults to `bid`."""
    decl = bid if decl is None else decl
    dev = next(net.parameters()).device
    _, q = net(bid.bid_x.to(dev))
    taken = q.gather(1, bid.bid_action.to(dev).view(-1, 1)).squeeze(1)
    q_loss = F.mse_loss(taken, bid.bid_marks.to(dev))
    logits, _ = net(decl.decl_x.to(dev))
    labels = decl.decl_points.to(dev)
    mask = labels >= 0
    decl_loss = F.cross_entropy(logits[mask], labels[mask]) if bool(mask.any()) else q_loss * 0
    return {"decl": decl_loss, "q": q_loss}


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    q_weight: float = 1.0
    batch: int = 512
    grad_clip: float = 1.0


class BidTrainer:
    """AdamW over a BidNet; `step` takes a minibatch of bid examples and one of declaration examples."""

    def __init__(self, net: BidNet, config: TrainConfig | None = None) -> None:
        self.net = net
        self.cfg = config or TrainConfig()
        self.opt = torch.optim.AdamW(net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.steps = 0

    def step(self, bid: HandExamples, decl: HandExamples | None = None) -> dict[str, float]:
        self.net.train()
        losses = bid_losses(self.net, bid, decl)
        total = losses["decl"] + self.cfg.q_weight * losses["q"]
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.steps += 1
        return {k: float(v.detach()) for k, v in losses.items()}


class BidBuffer:
    """The newest `capacity` bid examples and `capacity` declaration examples, sampled uniformly."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self.data: HandExamples | None = None
        self.decl: HandExamples | None = None
        self.total_added = 0  # every bid example ever added, the evicted ones included (for a replay ratio)

    def add(self, ex: HandExamples) -> None:
        self.total_added += len(ex)
        self.data = ex if self.data is None else HandExamples.cat([self.data, ex])
        cap = self.capacity
        d = self.data
        self.data = HandExamples(d.bid_x[-cap:], d.bid_action[-cap:], d.bid_marks[-cap:], d.decl_x[-cap:],
                                 d.decl_points[-cap:])  # fmt: skip

    def sample(self, k: int, gen: torch.Generator) -> HandExamples:
        d = self.data
        if d is None:
            raise ValueError("the buffer is empty")
        i = torch.randint(0, len(d), (k,), generator=gen)
        j = torch.randint(0, d.decl_x.shape[0], (k,), generator=gen)
        return HandExamples(d.bid_x[i], d.bid_action[i], d.bid_marks[i], d.decl_x[j], d.decl_points[j])

    def __len__(self) -> int:
        return 0 if self.data is None else len(self.data)


def train_standalone(
    minutes: float,
    out: Path | str,
    player_spec: str = "heuristic",
    hands_per_round: int = 1024,
    reuse: float = 4.0,
    seed: int = 0,
    resume: bool = True,
    selfplay: SelfPlayConfig | None = None,
    train: TrainConfig | None = None,
    hidden: int = 96,
    save_every_s: float = 120.0,
    log=print,
) -> dict:
    """Alternate self-play and training for `minutes`; save to `out` (resumed from there when it holds a BidNet).

    `reuse`: how many times each new example is sampled, on average (the training steps per round follow).
    """
    out = Path(out)
    gen = make_generator(seed)
    player = make_player(player_spec, "cpu", seed)
    state = default_state()
    if resume and (out / "bidnet-config.json").exists():
        net, state = load_bidnet(out)
        log(f"resumed from {out} at step {state.get('step', 0)}")
    else:
        net = BidNet(hidden)
    trainer = BidTrainer(net, train)
    buffer = BidBuffer()
    sp = selfplay or SelfPlayConfig()
    start = last_save = time.monotonic()
    hands = 0
    step0 = int(state.get("step", 0))
    history: list[dict] = []
    while time.monotonic() - start < minutes * 60:
        ex, rec = play_hands(net, player, hands_per_round, gen, sp)
        buffer.add(ex)
        hands += hands_per_round
        n_steps = max(1, round(reuse * len(ex) / trainer.cfg.batch))
        acc = {"decl": 0.0, "q": 0.0}
        for _ in range(n_steps):
            losses = trainer.step(buffer.sample(trainer.cfg.batch, gen))
            acc = {k: acc[k] + losses[k] / n_steps for k in acc}
        bids = rec.bidder >= 0
        row = {"minutes": round((time.monotonic() - start) / 60, 2), "step": step0 + trainer.steps, "hands": hands,
               "loss_decl": round(acc["decl"], 4), "loss_q": round(acc["q"], 4),
               "bid_rate": round(float(bids.float().mean()), 3),
               "avg_bid": round(float(rec.value[bids].float().mean()), 2) if bool(bids.any()) else 0.0,
               "made": round(float((rec.gained.gather(1, (rec.bidder.clamp(min=0) % 2).view(-1, 1)).squeeze(1)
                                    > 0)[bids].float().mean()), 3) if bool(bids.any()) else 0.0}  # fmt: skip
        history.append(row)
        log(json.dumps(row))
        if time.monotonic() - last_save > save_every_s:
            _save(net, out, state, step0 + trainer.steps, hands, sp, player_spec)
            last_save = time.monotonic()
    _save(net, out, state, step0 + trainer.steps, hands, sp, player_spec)
    return {"out": str(out), "steps": step0 + trainer.steps, "hands": hands, "history": history}


def _save(net: BidNet, out: Path, state: dict, step: int, hands: int, sp: SelfPlayConfig, player: str) -> None:
    st = dict(state)
    st.update(step=step, total_games=int(st.get("total_games", 0)) + hands, time=time.time(),
              selfplay=asdict(sp), play_player=player)  # fmt: skip
    st.pop("weights_sha256", None)
    save_bidnet(net, out, st)
    state["total_games"] = st["total_games"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train a BidNet by self-play of hands (standalone, one process).")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--out", required=True, help="folder for bidnet.safetensors / -config.json / -state.json")
    ap.add_argument("--player", default="heuristic", help="play-phase player spec (heuristic, policy:path=W)")
    ap.add_argument("--hands", type=int, default=1024, help="hands per self-play round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--fresh", action="store_true", help="do not resume from --out")
    ap.add_argument("--one-decl", action="store_true", help="label only the declared declaration")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sp = SelfPlayConfig(all_decls=not args.one_decl)
    res = train_standalone(args.minutes, args.out, args.player, args.hands, seed=args.seed, resume=not args.fresh,
                           selfplay=sp)  # fmt: skip
    print(json.dumps({k: v for k, v in res.items() if k != "history"}))


if __name__ == "__main__":
    main()
