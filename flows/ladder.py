"""The rating ladder (the scheduled `evaluate` deployment): the newest weights, the best, earlier promoted models
and the baselines play a round robin of team-symmetric matches; a Bradley–Terry fit puts them on one Elo scale
with 95% intervals, random anchored at 0. Published as a table artifact, a plot (markdown artifact, PNG inline)
and W&B metrics."""

from __future__ import annotations

import base64
import itertools
from dataclasses import asdict

import torch
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.common import key_of, open_ops_store
from tasks.ladder import ladder_match_task, ladder_players_task
from zeb_core.evaluation.match import MatchResult
from zeb_core.evaluation.ratings import Pairing, fit_bradley_terry, ratings_png
from zeb_core.evaluation.strength import BASELINES, LADDER_SEED_STRIDE, percent, rate_text
from zeb_core.formats.weights import DEFAULT_NAME
from zeb_core.ops.wandb_log import WandbLogger


@flow(name="ladder", log_prints=True)
def ladder(
    store: str | None = None,
    name: str = DEFAULT_NAME,
    examples_url: str | None = None,
    games: int = 400,
    past_best: int = 3,
    baselines: list[str] | None = None,
    anchor: str = "random",
    device: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
    wandb_project: str | None = "zeb",
) -> list[dict]:
    """Rate the models of namespace `name` of `store` (None: the baselines only) against each other and the
    baselines; returns the ratings, best first.

    games: games per pairing (each deal twice, seats swapped). past_best: earlier promoted models to include.
    baselines: player specs (default random and heuristic). anchor: the player rated 0. threads: torch CPU threads
    for this run (None: torch's default; 1 avoids thread thrashing on a busy CPU host). wandb_project: None for
    no W&B.
    """
    logger = get_run_logger()
    if threads:
        torch.set_num_threads(threads)
    baselines = list(baselines) if baselines is not None else list(BASELINES)
    if anchor not in baselines:
        baselines.insert(0, anchor)
    st = open_ops_store(store, examples_url) if store else None
    entries = ladder_players_task(store, name, past_best, baselines, examples_url)
    logger.info("ladder of %d players: %s", len(entries), ", ".join(e.label for e in entries))
    results = []
    for k, (a, b) in enumerate(itertools.combinations(entries, 2)):
        results.append(ladder_match_task(a, b, games, seed + LADDER_SEED_STRIDE * k, device))
    pairings = [Pairing(r["player_a"], r["player_b"], r["games"], r["win_rate"] * r["games"]) for r in results]
    ratings = fit_bradley_terry(pairings, anchor=anchor, players=[e.label for e in entries])
    by_label = {e.label: e for e in entries}
    rows = [
        {
            "rank": i + 1,
            "player": r.player,
            "Elo": round(r.elo, 1),
            "95% CI": f"{r.ci_low:+.0f}..{r.ci_high:+.0f}",
            "games": r.games,
            "score": percent(r.score),
            "step": by_label[r.player].step,
        }
        for i, r in enumerate(ratings)
    ]
    newest_step = next((e.step for e in entries if "newest" in e.roles), None)
    where = f"{name} in {st.url}" if st else "baselines"
    create_table_artifact(
        rows, key=key_of(name, "ladder"), description=f"Elo ladder of {where} ({anchor} = 0), {games} games per pairing"
    )
    png = base64.b64encode(ratings_png(ratings, title=f"Elo ladder: {where}", anchor=anchor)).decode()
    pair_lines = [
        f"| {r['player_a']} | {r['player_b']} | {rate_text(MatchResult(**r))} | {r['games']} |" for r in results
    ]
    create_markdown_artifact(
        f"## Elo ladder of {where}\n\n![ladder](data:image/png;base64,{png})\n\n"
        "| player A | player B | A's score (95% CI) | games |\n| --- | --- | --- | --- |\n"
        + "\n".join(pair_lines)
        + "\n",
        key=key_of(name, "ladder-plot"),
        description=f"Elo with 95% intervals, {anchor} = 0",
    )
    if wandb_project:
        wandb = WandbLogger(wandb_project, f"ladder-{name}", {"games": games, "past_best": past_best, "store": store})
        metrics = {}
        for r in ratings:
            e = by_label[r.player]
            for role in e.roles:
                tag = role if role in ("newest", "best") or e.kind == "baseline" else None
                if tag == "baseline":
                    tag = e.spec
                if tag:
                    metrics[f"ladder/{tag}_elo"] = r.elo
                    metrics[f"ladder/{tag}_elo_se"] = r.se
        wandb.log(metrics, step=newest_step or 0)
        wandb.finish()
    for row in rows:
        logger.info(
            "%d. %s: %+.0f Elo (%s), %s over %d games",
            row["rank"],
            row["player"],
            row["Elo"],
            row["95% CI"],
            row["score"],
            row["games"],
        )
    return [{**asdict(r), "step": by_label[r.player].step, "roles": by_label[r.player].roles} for r in ratings]
