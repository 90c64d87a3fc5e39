"""BidNet: the auction's network, over what one seat knows when it bids or declares (an `AuctionView`).

Encoding of a view (`encode_view`), int64 [n, VIEW_FEATURES = 14], every column an index into its own table:

    cols 0..6   the seat's 7 dominoes, ids 0..27 (ascending)
    cols 7..10  the bids so far by relative seat (7: the seat itself, 8: its left, 9: its partner, 10: its right),
                0 not yet spoken, 1 pass, 2..20 the bid actions 1..19 (30..41 points, 1..7 marks): action + 1
    col 11      the seat's position relative to the dealer, (seat - dealer) % 4: 1, 2, 3 speak first to third,
                0 is the dealer (last)
    cols 12, 13 the game score in marks, the seat's team then the other, clipped to 0..MARKS_CLIP

Nothing of another seat's hand is encoded (the view never holds one). The same encoding serves the bid (while
the auction goes on) and the declaration (all four bids known, `view.legal` all False).

The network: each domino of the hand is embedded once by itself and once per declaration (a table over
(declaration, domino): what the domino is worth under that trump), a small MLP per token, summed over the 7
dominoes (a set, no order), plus the context (bids, position, score): one vector per declaration. Heads:

    decl_points [n, 10, 43] logits: the distribution of the bidder's team's final points (0..42) if this seat
                wins the auction, declares d and leads;
    bid_q       [n, 20]: the expected marks of the seat's team from this hand after bid action a (+n made, -n set,
                from its own team's side; 0 for a redeal).

bid_q is a learnt correction on top of a prior that decl_points already implies: a seat that wins the auction
with bid a and names its best declaration scores marks(a) x (2 P(make) - 1), P(make) = max over d of
P(points >= points needed for a) (0 for a pass; the prior carries no gradient). Without it the 19 bids' values,
each learnt only from the hands where it was tried, are noisy, and argmax over 19 noisy values overbids: in the
standalone loop the table's bid rate swung between 25% and 100% with 15% of bids made after 17,000 hands.

Saved as a weights bundle (`zeb_core.formats.weights`: safetensors + JSON, SHA-256 in the state file) under the
name `bidnet`; `load_bidnet` checks the config, every tensor's name, shape and dtype before loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zeb_core.engine.dominoes import N_DECLS, N_DOMINOES, TOTAL_POINTS
from zeb_core.formats.safe_io import FormatError
from zeb_core.formats.weights import WeightsBundle, bundle_from_files, default_state, save_bundle_dir, weights_filenames
from zeb_core.fullgame.auction import BID_VALUES, N_BID_ACTIONS, N_SEATS, NOT_YET, marks_at_stake, points_needed
from zeb_core.fullgame.interface import AuctionView

HAND = 7
VIEW_FEATURES = 14
BID_COLS = slice(7, 11)
POS_COL = 11
MARK_COLS = slice(12, 14)
BID_TOKENS = N_BID_ACTIONS + 1  # 21: not yet, pass, 19 bids
MARKS_CLIP = 7
N_POINTS = TOTAL_POINTS + 1  # 43 outcomes 0..42
BIDNET_NAME = "bidnet"
BIDNET_KIND = "bidnet"
BIDNET_FORMAT = 1


def encode_view(view: AuctionView) -> torch.Tensor:
    """[n, 14] int64: the view as the network reads it (layout in the module docstring)."""
    n, dev = view.seat.shape[0], view.seat.device
    out = torch.empty(n, VIEW_FEATURES, dtype=torch.int64, device=dev)
    out[:, :HAND] = view.hand
    rel = (view.seat.view(-1, 1) + torch.arange(N_SEATS, device=dev).view(1, -1)) % N_SEATS  # [n, 4] seats
    bids = view.bids.gather(1, rel)
    out[:, BID_COLS] = torch.where(bids == NOT_YET, torch.zeros_like(bids), bids + 1)
    out[:, POS_COL] = (view.seat - view.dealer) % N_SEATS
    out[:, MARK_COLS] = view.marks.clamp(0, MARKS_CLIP)
    return out


class BidNet(nn.Module):
    """decl_points [n, 10, 43] and bid_q [n, 20] from encoded views [n, 14] (see the module docstring)."""

    _decls: torch.Tensor
    _seats: torch.Tensor
    _marks_off: torch.Tensor
    _need: torch.Tensor
    _stake: torch.Tensor

    def __init__(self, hidden: int = 96) -> None:
        super().__init__()
        self.hidden = hidden
        h = hidden
        self.domino = nn.Embedding(N_DOMINOES, h)
        self.domino_decl = nn.Embedding(N_DECLS * N_DOMINOES, h)
        self.decl = nn.Embedding(N_DECLS, h)
        self.bid = nn.Embedding(N_SEATS * BID_TOKENS, h)
        self.position = nn.Embedding(N_SEATS, h)
        self.marks = nn.Embedding(2 * (MARKS_CLIP + 1), h)
        self.token_mlp = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.decl_mlp = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.points_head = nn.Linear(h, N_POINTS)
        self.bid_mlp = nn.Sequential(nn.Linear(2 * h + h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.q_head = nn.Linear(h, N_BID_ACTIONS)
        self.register_buffer("_decls", torch.arange(N_DECLS), persistent=False)
        self.register_buffer("_seats", torch.arange(N_SEATS) * BID_TOKENS, persistent=False)
        self.register_buffer("_marks_off", torch.tensor([0, MARKS_CLIP + 1]), persistent=False)
        self.register_buffer("_need", points_needed(BID_VALUES), persistent=False)  # [20]
        self.register_buffer("_stake", marks_at_stake(BID_VALUES).float(), persistent=False)  # [20]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.long()
        hand = x[:, :HAND]  # [n, 7]
        ctx = (
            self.bid(x[:, BID_COLS] + self._seats).sum(1)
            + self.position(x[:, POS_COL])
            + self.marks(x[:, MARK_COLS] + self._marks_off).sum(1)
        )  # [n, h]
        # A token depends only on its (declaration, domino) pair, so the token MLP runs once over the 280 pairs
        # and a hand's sum over its 7 tokens is its multi-hot [n, 28] times that table: the same function as
        # running the MLP on every [n, 10, 7] token, at a 128th of the work for a batch of 512.
        pairs = self.domino.weight.unsqueeze(0) + self.domino_decl.weight.view(N_DECLS, N_DOMINOES, -1)
        table = self.token_mlp(pairs)  # [10, 28, h]
        counts = torch.zeros(hand.shape[0], N_DOMINOES, dtype=table.dtype, device=hand.device)
        counts.scatter_add_(1, hand, torch.ones_like(hand, dtype=table.dtype))  # [n, 28]
        per_decl = torch.einsum("nd,kdh->nkh", counts, table) + self.decl(self._decls) + ctx.unsqueeze(1)  # [n, 10, h]
        z = self.decl_mlp(per_decl)  # [n, 10, h]
        decl_points = self.points_head(z)
        summary = torch.cat([z.max(1).values, z.mean(1), ctx], dim=1)
        bid_q = self.q_head(self.bid_mlp(summary)) + self.make_prior(decl_points.detach())
        return decl_points, bid_q

    def make_prior(self, decl_points: torch.Tensor) -> torch.Tensor:
        """[n, 20] marks(a) x (2 max_d P(make a) - 1) for each bid a; 0 for the pass."""
        at_least = torch.softmax(decl_points.float(), dim=-1).flip(-1).cumsum(-1).flip(-1)  # [n, 10, 43]
        p = at_least[:, :, self._need].max(1).values  # [n, 20]
        prior = self._stake * (2 * p - 1)
        prior[:, 0] = 0.0
        return prior

    def config(self) -> dict[str, Any]:
        return {"kind": BIDNET_KIND, "format_version": BIDNET_FORMAT, "hidden": self.hidden,
                "view_features": VIEW_FEATURES}  # fmt: skip


def make_probabilities(decl_points: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
    """[n, 10] P(the bidder's team takes at least `need` [n] points) under each declaration."""
    probs = torch.softmax(decl_points.float(), dim=-1)  # [n, 10, 43]
    at_least = probs.flip(-1).cumsum(-1).flip(-1)  # [..., k] = P(points >= k)
    idx = need.long().clamp(0, TOTAL_POINTS).view(-1, 1, 1).expand(-1, N_DECLS, 1)
    return at_least.gather(2, idx).squeeze(2)


# ---------------------------------------------------------------- save / load
def bidnet_bundle(net: BidNet, state: dict[str, Any] | None = None) -> WeightsBundle:
    tensors = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return WeightsBundle(tensors=tensors, config=net.config(), state=state or default_state())


def save_bidnet(net: BidNet, folder: Path | str, state: dict[str, Any] | None = None) -> Path:
    """Write `bidnet.safetensors`, `bidnet-config.json`, `bidnet-state.json` into `folder` (state last)."""
    save_bundle_dir(Path(folder), bidnet_bundle(net, state), BIDNET_NAME)
    return Path(folder) / weights_filenames(BIDNET_NAME)["weights"]


def bidnet_from_bundle(bundle: WeightsBundle) -> BidNet:
    """A BidNet from a validated bundle; FormatError on a config or tensor set that is not exactly a BidNet's."""
    cfg = bundle.config
    if cfg.get("kind") != BIDNET_KIND or cfg.get("format_version") != BIDNET_FORMAT:
        raise FormatError(f"not a BidNet bundle (kind {cfg.get('kind')!r}, format {cfg.get('format_version')!r})")
    hidden = cfg.get("hidden")
    if type(hidden) is not int or not 1 <= hidden <= 4096 or cfg.get("view_features") != VIEW_FEATURES:
        raise FormatError(f"BidNet config: bad hidden {hidden!r} or view_features {cfg.get('view_features')!r}")
    net = BidNet(hidden)
    expected = net.state_dict()
    if set(bundle.tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(bundle.tensors)), sorted(set(bundle.tensors) - set(expected))
        raise FormatError(f"BidNet tensors differ: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, t in bundle.tensors.items():
        if t.shape != expected[name].shape or t.dtype != expected[name].dtype:
            raise FormatError(f"BidNet tensor {name!r}: {t.dtype}{list(t.shape)}, expected "
                              f"{expected[name].dtype}{list(expected[name].shape)}")  # fmt: skip
    net.load_state_dict(bundle.tensors)
    return net


def resolve_bidnet_path(path: Path | str) -> tuple[Path, str]:
    """(folder, bundle name) of a BidNet: a folder holding `bidnet.*`, or any NAME.safetensors beside its
    NAME-config.json (e.g. a store's `weights/model-bid.safetensors`, the pipeline's BidNet)."""
    path = Path(path)
    if path.is_dir():
        folder, name = path, BIDNET_NAME
    else:
        folder, name = path.parent, path.name.removesuffix(".safetensors")
    if path.suffix in ("", ".safetensors") and (folder / weights_filenames(name)["config"]).exists():
        return folder, name
    raise FileNotFoundError(f"no BidNet at {path} (expected a folder with {BIDNET_NAME}-config.json, or a "
                            f"NAME.safetensors beside its NAME-config.json)")  # fmt: skip


def load_bidnet(path: Path | str, device: torch.device | str = "cpu") -> tuple[BidNet, dict[str, Any]]:
    """(net in eval mode on `device`, its state JSON); FormatError on a corrupted or foreign file."""
    folder, name = resolve_bidnet_path(path)
    fn = weights_filenames(name)
    files = {f: (folder / f).read_bytes() for f in fn.values() if (folder / f).exists()}
    bundle = bundle_from_files(files, name)
    if "weights_sha256" not in bundle.state:
        raise FormatError(f"{folder}/{fn['state']} names no weights_sha256")
    return bidnet_from_bundle(bundle).to(device).eval(), bundle.state
