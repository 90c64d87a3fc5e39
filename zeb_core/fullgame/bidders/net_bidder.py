"""The `net` bidder: a trained BidNet bids argmax bid_q over the legal bids and declares the likeliest make.

`net:path=W[,temp=T,margin=M,seed=S]`: W is a folder holding `bidnet.*` (or its `bidnet.safetensors`); temp > 0
samples the bid from softmax(bid_q / T) over the legal bids instead of taking the best (the forced dealer, with no
pass legal, takes the best legal bid either way). margin M > 0 passes unless the chosen bid's expected marks exceed
M: the BidNet learns P(make) against its own play, and stronger defenders set more bids than that.
Explanations come from decl_points, e.g.
"bid 34: P(make 34) = 0.71 with sixes trump".
"""

from __future__ import annotations

import torch

from zeb_core.engine.dominoes import DECL_NAMES
from zeb_core.fullgame.auction import BID_VALUES, PASS, bid_name, points_needed
from zeb_core.fullgame.bidnet import BidNet, encode_view, load_bidnet, make_probabilities
from zeb_core.fullgame.interface import AuctionView, BidDecision, DeclDecision
from zeb_core.players.interface import SpecError, pop_param, reject_unknown

MIN_BID_VALUE = 30


def trump_text(decl: int) -> str:
    name = DECL_NAMES[decl]
    return name if "-" in name or name == "no-trump" else f"{name} trump"


class NetBidder:
    def __init__(
        self, net: BidNet, temperature: float = 0.0, seed: int = 0, name: str = "net", margin: float = 0.0
    ) -> None:
        self.net = net.eval()
        self.temperature, self.margin = temperature, margin
        self.device = next(net.parameters()).device
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.name = name

    @torch.inference_mode()
    def bid(self, view: AuctionView) -> BidDecision:
        points, q = self.net(encode_view(view).to(self.device))
        legal = view.legal.to(self.device)
        masked = q.masked_fill(~legal, float("-inf"))
        if self.temperature > 0:
            actions = torch.multinomial(torch.softmax(masked / self.temperature, 1), 1, generator=self.gen).squeeze(1)
        else:
            actions = masked.argmax(1)
        if self.margin > 0:  # a bid must promise more than `margin` expected marks, where passing is legal
            timid = (masked.gather(1, actions.view(-1, 1)).squeeze(1) <= self.margin) & legal[:, PASS]
            actions = torch.where(timid, PASS, actions)
        value = BID_VALUES.to(self.device)[actions]
        # what the bid (or, for a pass, the lowest bid open to the seat) needs, under the best declaration
        lowest = torch.where(legal[:, 1:], BID_VALUES.to(self.device)[1:], 10_000).min(1).values
        need = points_needed(torch.where(actions == PASS, lowest.clamp(min=MIN_BID_VALUE, max=42), value))
        p = make_probabilities(points, need)
        best_p, best_d = p.max(1)
        lines = []
        q_taken = masked.gather(1, actions.view(-1, 1)).squeeze(1)
        rows = zip(actions.tolist(), need.tolist(), best_p.tolist(), best_d.tolist(), q_taken.tolist(), strict=True)
        for a, nd, bp, bd, qa in rows:
            what = "pass" if a == PASS else f"bid {bid_name(a)}"
            lines.append(f"{what}: P(make {nd}) = {bp:.2f} with {trump_text(bd)}; expected marks {qa:+.2f}")
        return BidDecision(actions.to(view.legal.device), lines)

    @torch.inference_mode()
    def declare(self, view: AuctionView) -> DeclDecision:
        points, _ = self.net(encode_view(view).to(self.device))
        need = points_needed(view.high.to(self.device))
        best_p, best_d = make_probabilities(points, need).max(1)
        lines = [f"{trump_text(d)}: P(make {nd}) = {bp:.2f}"
                 for d, nd, bp in zip(best_d.tolist(), need.tolist(), best_p.tolist(), strict=True)]  # fmt: skip
        return DeclDecision(best_d.to(view.seat.device), lines)


def net_bidder_from_spec(params: dict[str, str], device: torch.device, seed: int) -> NetBidder:
    path = params.pop("path", None)
    if not path:
        raise SpecError("net bidder needs path=FOLDER_OR_FILE (a BidNet: bidnet.safetensors + JSON)")
    temperature = pop_param(params, "temp", float, 0.0)
    margin = pop_param(params, "margin", float, 0.0)
    seed = pop_param(params, "seed", int, seed)
    reject_unknown("net bidder", params)
    if not 0 <= temperature < float("inf"):
        raise SpecError(f"temp={temperature} must be finite and >= 0")
    if not 0 <= margin < float("inf"):
        raise SpecError(f"margin={margin} must be finite and >= 0")
    net, _ = load_bidnet(path, device)
    return NetBidder(net, temperature, seed, name=f"net:{path}", margin=margin)
