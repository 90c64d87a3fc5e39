"""The training curve as a PNG a person would rather look at than read: losses and win rates against step."""

from __future__ import annotations

import io
from typing import Any


def training_curve_png(history: list[dict[str, Any]], title: str = "training") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    rows = [h for h in history if "train/value_loss" in h]
    steps = [h["step"] for h in rows]
    losses = (("train/policy_loss", "policy loss"), ("train/q_loss", "q loss"), ("train/value_loss", "value loss"))
    for key, label in losses:
        values = [h.get(key, float("nan")) for h in rows]
        if any(v == v for v in values):  # a loss the teacher never produced (all NaN) gets no line
            ax_loss.plot(steps, values, label=label)
    ax_loss.set_xlabel("step")
    ax_loss.set_title("losses")
    ax_loss.legend()
    evals = [h for h in history if "eval/vs_random_win_rate" in h]
    for opp, color in (("random", "tab:green"), ("heuristic", "tab:red")):
        xs = [h["step"] for h in evals]
        ax_eval.plot(xs, [h[f"eval/vs_{opp}_win_rate"] for h in evals], marker="o", color=color, label=f"vs {opp}")
        lows = [h.get(f"eval/vs_{opp}_ci_low", h[f"eval/vs_{opp}_win_rate"]) for h in evals]
        highs = [h.get(f"eval/vs_{opp}_ci_high", h[f"eval/vs_{opp}_win_rate"]) for h in evals]
        ax_eval.fill_between(xs, lows, highs, color=color, alpha=0.15)
    ax_eval.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_eval.set_xlabel("step")
    ax_eval.set_title("win rate (95% CI)")
    ax_eval.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
