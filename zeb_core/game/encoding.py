"""What one seat may know, as a short sequence of integer-featured tokens for the transformer.

Layout of an observation (`obs`, int8, shape [B, T, F] with T <= 36 tokens and F = 8 features):

    token 0        context: the contract, from the observer's point of view
    tokens 1..7    the observer's 7 dealt dominoes in ascending id order (the *hand slots*); the policy
                   is a distribution over these slots, so slot i always means the same domino within a hand
    tokens 8..35   the plays so far, in order (one token per play); unused ones are padding (kind 0)

Features (each embedded by its own table and summed; 0 means "not applicable"):

    f0 kind        0 pad, 1 context, 2 hand slot, 3 play
    f1 domino      id + 1 (1..28); 0 on the context token
    f2 seat        relative seat + 1 (observer = 1, left = 2, partner = 3, right = 4): who played it (play),
                   the observer (hand), the bidder (context)
    f3 decl        declaration + 1 (1..10), on every token so each domino can relate itself to the contract
    f4 when        context: bid - 29 (1..13); play: trick index + 1 (1..7); hand: 0
    f5 position    play: position in its trick + 1 (1..4); context: plays in the current trick + 1 (1..4)
    f6 status      hand: 1 played, 2 held but illegal now, 3 legal now;
                   play: 1 in a finished trick, 2 in the trick in progress and not winning it, 3 winning it
    f7 domino kind 1 + count class (0, 5 or 10 points -> 0..2) * 2 + in the called suit (0/1): 1..6

Relative seats make the encoding invariant to the table's rotation; nothing a seat cannot see (other hands) is
encoded. Play tokens can be trimmed to the longest history in a batch (`encode(..., trim=True)`): tokens past
every game's history are pure padding, and attention cost grows with T.

The legal mask the network sees is over the 7 slots ([B, 7] bool); `GameState.legal_slots` gives it.
"""

from __future__ import annotations

import torch

from zeb_core.engine.dominoes import COUNT, N_DOMINOES, tables_on
from zeb_core.engine.state import HAND_SIZE, N_PLAYS, N_SEATS, GameState

OBS_TOKENS = 1 + HAND_SIZE + N_PLAYS  # 36
OBS_FEATURES = 8
FEATURE_SIZES = (4, 29, 5, 11, 14, 5, 4, 7)  # vocabulary of each feature (max value + 1)
HAND_OFFSET = 1
PLAY_OFFSET = 1 + HAND_SIZE

KIND_PAD, KIND_CONTEXT, KIND_HAND, KIND_PLAY = 0, 1, 2, 3


def _domino_kind(decl: torch.Tensor, dominoes: torch.Tensor) -> torch.Tensor:
    t = tables_on(dominoes.device)
    count = torch.as_tensor(COUNT, device=dominoes.device)
    safe = dominoes.clamp(0, N_DOMINOES - 1)
    count_class = count[safe] // 5  # 0, 1, 2
    called = t.called[decl.view(-1, *([1] * (dominoes.dim() - 1))).expand_as(safe), safe].long()
    return 1 + count_class * 2 + called


def encode(state: GameState, seat: torch.Tensor | None = None, legal: torch.Tensor | None = None, trim: bool = False):
    """Observation [B, T, 8] int8 of `seat` (default: the seat to move) and its legal slot mask [B, 7].

    `legal` ([B, 28]) may be passed when the caller has it already; it is only used when `seat` is the seat to move.
    """
    device = state.device
    b = state.batch_size
    observer = state.current if seat is None else seat
    to_move = observer == state.current
    legal28 = state.legal_mask() if legal is None else legal
    n_hist = N_PLAYS
    if trim:
        n_hist = int(state.n_plays.max()) if b else 0
    tokens = PLAY_OFFSET + n_hist
    obs = torch.zeros(b, tokens, OBS_FEATURES, dtype=torch.int64, device=device)
    decl1 = (state.decl + 1).view(b, 1)
    rel = lambda s: (s - observer.view(-1, *([1] * (s.dim() - 1)))) % N_SEATS + 1

    # context
    ctx = obs[:, 0]
    ctx[:, 0] = KIND_CONTEXT
    ctx[:, 2] = rel(state.bidder)
    ctx[:, 3] = state.decl + 1
    ctx[:, 4] = state.bid - 29
    ctx[:, 5] = state.n_plays % 4 + 1

    # hand slots
    hand = state.hand_of(observer)  # [B, 7]
    played = state.played.gather(1, hand)
    legal_slot = legal28.gather(1, hand) & to_move.view(b, 1)
    hs = obs[:, HAND_OFFSET:PLAY_OFFSET]
    hs[..., 0] = KIND_HAND
    hs[..., 1] = hand + 1
    hs[..., 2] = 1
    hs[..., 3] = decl1
    hs[..., 6] = torch.where(played, 1, torch.where(legal_slot, 3, 2))
    hs[..., 7] = _domino_kind(state.decl, hand)

    # play history
    if n_hist:
        hist = state.history[:, :n_hist]
        seats = state.history_seat[:, :n_hist]
        valid = hist >= 0
        idx = torch.arange(n_hist, device=device).view(1, -1)
        in_current = idx >= (state.n_plays - state.n_plays % 4).view(b, 1)
        winning = in_current & (seats == state.best_seat.view(b, 1)) & (state.n_plays % 4 != 0).view(b, 1)
        ps = obs[:, PLAY_OFFSET:]
        ps[..., 0] = KIND_PLAY
        ps[..., 1] = hist + 1
        ps[..., 2] = rel(seats)
        ps[..., 3] = decl1
        ps[..., 4] = idx // 4 + 1
        ps[..., 5] = idx % 4 + 1
        ps[..., 6] = torch.where(in_current, torch.where(winning, 3, 2), 1)
        ps[..., 7] = _domino_kind(state.decl, hist)
        ps.mul_(valid.unsqueeze(-1))
    return obs.to(torch.int8), legal_slot


def pad_tokens(obs: torch.Tensor, tokens: int = OBS_TOKENS) -> torch.Tensor:
    """Pad trimmed observations back to the full 36 tokens (what example files store)."""
    if obs.shape[1] == tokens:
        return obs
    pad = torch.zeros(obs.shape[0], tokens - obs.shape[1], obs.shape[2], dtype=obs.dtype, device=obs.device)
    return torch.cat([obs, pad], dim=1)
