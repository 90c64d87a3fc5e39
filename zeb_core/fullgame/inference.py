"""What the auction says about the hidden hands: a likelihood of the declarer's dealt hand given its bid and trump.

In the full game the bid and the declaration are the declarer's choice, so a uniform world (`mcts.worlds`) is
wrong about the one hand everyone wants to know: a seat that bid 34 with sixes trump seldom holds one six. We
score the declarer's seven dealt dominoes in each sampled world with the baseline bidder's points estimate
(`bidders.baseline.estimate_points`, fitted to the exact solver) under a soft model of a sensible bidder: the
declared trump is among its best (a softmax over the declarations it could name, temperature `DECL_TEMP` points)
and its estimate clears the points it must take (a logistic in estimate - need, scale `NEED_SCALE` points).
`mcts.worlds.sample_search_worlds` keeps worlds in proportion to it (`mcts.worlds.resample`): the solver teacher of
`zeb train --full-game` (`SearchConfig.auction_worlds`), and `pimc:...,auction=1` / `mcts:...,auction=1` at play time.
On hands bid by `mc:worlds=8` it cuts the error of a defender's estimate of the declarer's trumps from 2.30 to 0.49
(mean squared; bench/auction_inference.py); temperatures and scales from 1 to 4 points all do about as well.

In the play-phase benchmark the bid and the trump are random and independent of the hands: never use it there.
"""

from __future__ import annotations

import torch

from zeb_core.engine.state import GameState
from zeb_core.fullgame.bidders.baseline import NOT_NAMED, estimate_points

DECL_TEMP = 4.0  # points: how much better the named trump is than the others, in the model of the declarer
NEED_SCALE = 4.0  # points: how sharply the declarer's estimate must clear the points its bid needs


def declarer_log_likelihood(worlds: GameState) -> torch.Tensor:
    """[W] the log-likelihood of each world's deal to the declarer (`worlds.bidder`) given the declaration and the
    bid (`worlds.decl`, `worlds.bid`: the points it must take), up to a constant per game."""
    rows = torch.arange(worlds.batch_size, device=worlds.device)
    hand = worlds.hands[rows, worlds.bidder].cpu().numpy()  # [W, 7] the declarer's dealt dominoes
    est = torch.as_tensor(estimate_points(hand), dtype=torch.float64)  # [W, 10]
    named = est > NOT_NAMED / 2
    log_choice = torch.log_softmax(torch.where(named, est / DECL_TEMP, -torch.inf), dim=1)
    decl = worlds.decl.cpu().view(-1, 1)
    chose = torch.where(named.gather(1, decl), log_choice.gather(1, decl), 0.0).squeeze(1)
    own = est.gather(1, decl).squeeze(1)
    clears = torch.nn.functional.logsigmoid((own - worlds.bid.cpu().double()) / NEED_SCALE)
    return (chose + clears).to(torch.float32).to(worlds.device)
