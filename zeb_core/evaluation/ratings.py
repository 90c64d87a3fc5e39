"""Ratings from a round robin: a Bradley–Terry fit on the Elo scale, with Fisher-information confidence intervals.

Each pairing contributes `games` games and player A's score (wins plus half the ties). The model says A beats B
with probability 1 / (1 + 10^((elo_B - elo_A) / 400)). The fit maximises the likelihood with one player held at
0 (the anchor, `random` on the ladder), plus a very weak Gaussian prior on every other rating so that a player who
won (or lost) every game still gets a finite rating. The 95% interval of each rating is +-1.96 standard errors
from the inverse of the observed information matrix (exact for the anchor: it is fixed, so its interval is 0).

Pure numpy; no Prefect here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

ELO_PER_NAT = 400.0 / math.log(10.0)
Z95 = 1.959963984540054
PRIOR_SD_ELO = 2000.0  # weak: only matters for perfect or unconnected records


@dataclass(frozen=True)
class Pairing:
    a: str
    b: str
    games: int
    score_a: float  # A's wins plus half its ties, in games (0..games)


@dataclass(frozen=True)
class Rating:
    player: str
    elo: float
    se: float
    ci_low: float
    ci_high: float
    games: int
    score: float  # share of points over all its games

    def to_dict(self) -> dict:
        return asdict(self)


def expected_score(elo_a: float, elo_b: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((elo_b - elo_a) / 400.0))


def fit_bradley_terry(
    pairings: Iterable[Pairing],
    anchor: str,
    players: Sequence[str] | None = None,
    prior_sd_elo: float = PRIOR_SD_ELO,
    iterations: int = 100,
) -> list[Rating]:
    """Ratings of every player (anchor at 0), best first."""
    pairings = [p for p in pairings if p.games > 0]
    names = list(players) if players is not None else []
    for p in pairings:
        for n in (p.a, p.b):
            if n not in names:
                names.append(n)
    if anchor not in names:
        raise ValueError(f"anchor {anchor!r} played no games")
    for p in pairings:
        if p.a == p.b:
            raise ValueError(f"{p.a!r} cannot play itself")
        if not 0.0 <= p.score_a <= p.games:
            raise ValueError(f"score {p.score_a} of {p.a!r} vs {p.b!r} outside 0..{p.games}")
    index = {n: i for i, n in enumerate(names)}
    k = len(names)
    n_ij = np.zeros((k, k))
    s_ij = np.zeros((k, k))  # points i scored against j
    for p in pairings:
        i, j = index[p.a], index[p.b]
        n_ij[i, j] += p.games
        n_ij[j, i] += p.games
        s_ij[i, j] += p.score_a
        s_ij[j, i] += p.games - p.score_a
    free = np.array([i for i in range(k) if names[i] != anchor], dtype=int)
    prior_prec = (ELO_PER_NAT / prior_sd_elo) ** 2  # in nats^-2
    theta = np.zeros(k)

    def grad_info(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = theta[:, None] - theta[None, :]
        p = 1.0 / (1.0 + np.exp(-diff))
        grad = (s_ij - n_ij * p).sum(1) - prior_prec * theta
        w = n_ij * p * (1.0 - p)
        info = -w
        info[np.diag_indices(k)] = w.sum(1) + prior_prec
        return grad, info

    for _ in range(iterations):
        grad, info = grad_info(theta)
        if free.size == 0:
            break
        step = np.linalg.solve(info[np.ix_(free, free)], grad[free])
        step = np.clip(step, -2.0, 2.0)  # damp the first steps of lopsided records
        theta[free] += step
        if float(np.abs(step).max()) < 1e-10:
            break
    _, info = grad_info(theta)
    se = np.zeros(k)
    if free.size:
        cov = np.linalg.inv(info[np.ix_(free, free)])
        se[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    games = n_ij.sum(1)
    points = s_ij.sum(1)
    out = []
    for i, name in enumerate(names):
        elo = float(theta[i] * ELO_PER_NAT)
        half = float(Z95 * se[i] * ELO_PER_NAT)
        out.append(
            Rating(
                name,
                elo,
                float(se[i] * ELO_PER_NAT),
                elo - half,
                elo + half,
                int(games[i]),
                float(points[i] / games[i]) if games[i] else float("nan"),
            )
        )
    out.sort(key=lambda r: -r.elo)
    return out


def ratings_png(ratings: Sequence[Rating], title: str = "ladder", anchor: str | None = None) -> bytes:
    """Elo with 95% intervals as a horizontal error-bar chart, best on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(ratings)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.4), dpi=100)
    ys = list(range(len(rows)))
    elos = [r.elo for r in rows]
    errs = [[r.elo - r.ci_low for r in rows], [r.ci_high - r.elo for r in rows]]
    colors = ["tab:grey" if r.player == anchor else "tab:blue" for r in rows]
    ax.errorbar(elos, ys, xerr=errs, fmt="none", ecolor="tab:blue", capsize=4, lw=1.2)
    ax.scatter(elos, ys, color=colors, zorder=3)
    ax.set_yticks(ys, [r.player for r in rows])
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Elo (95% CI)" + (f", {anchor} = 0" if anchor else ""))
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
