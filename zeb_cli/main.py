"""`zeb`: the human entry point. Each command is a thin shell over zeb_core (or a Prefect flow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zeb_cli.consoles import fail, match_progress, out, resolve_device

app = typer.Typer(
    name="zeb",
    help=(
        "Zeb: AlphaZero-style self-play training for the domino game Texas 42.\n\n"
        "Play matches between players (random, heuristic, policy:path=DIR), check the engine against recorded "
        "hands, write fresh model checkpoints, and answer the bot protocol."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
DeviceOpt = Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, or auto (CUDA when present).")]


@app.command("eval")
def eval_cmd(
    players: Annotated[
        list[str], typer.Argument(help="A vs B, e.g. `heuristic vs random` or `policy:path=ckpt vs heuristic`.")
    ],
    games: Annotated[
        int, typer.Option("--games", "-n", help="Games to play (even: each deal twice, teams swapped).")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for the deals and the players' randomness.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Games played in lockstep per batch.")] = 4096,
    device: DeviceOpt = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    full_game: Annotated[
        bool, typer.Option("--full-game", help="Whole games to --target-marks; players are BIDDER+PLAYER specs.")
    ] = False,
    target_marks: Annotated[int, typer.Option(help="With --full-game: the marks that win a game.")] = 7,
    forced_bid: Annotated[
        bool, typer.Option("--forced-bid", help="With --full-game: the dealer must bid when all others pass.")
    ] = False,
    record: Annotated[
        Path | None, typer.Option(help="With --full-game: write every game to this JSONL replay file.")
    ] = None,
) -> None:
    """Play a team-symmetric match A vs B on the benchmark deal distribution and report A's win rate.

    With --full-game: whole games (auction, declaration, play, marks to --target-marks), each deal sequence played
    twice with the teams swapped, e.g. `zeb eval baseline+heuristic vs random+heuristic --full-game --games 200`.
    """
    from zeb_core.evaluation.match import play_match
    from zeb_core.players import SpecError, make_player

    if len(players) != 3 or players[1].lower() != "vs":
        fail(f"expected `A vs B`, got {' '.join(players)!r}")
    if games < 2:
        fail(f"--games must be at least 2, got {games}")
    device = resolve_device(device)
    if full_game:
        from zeb_cli.fullgame_eval import eval_full_game

        eval_full_game(players[0], players[2], games, seed, batch_size, device, as_json, target_marks, forced_bid,
                       record)  # fmt: skip
        return
    if record is not None or forced_bid or target_marks != 7:
        fail("--target-marks, --forced-bid and --record need --full-game")
    try:
        a = make_player(players[0], device, seed)
        b = make_player(players[2], device, seed + 1)
    except SpecError as exc:
        fail(str(exc))
    with match_progress(as_json) as progress:
        task = progress.add_task(f"{a.name} vs {b.name}", total=games + games % 2)
        result = play_match(a, b, games, seed, batch_size, device, on_progress=lambda n: progress.advance(task, n))
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    from zeb_core.evaluation.strength import interval_text, percent

    table = Table(title=f"{result.player_a} vs {result.player_b}", show_header=False)
    table.add_row("games", f"{result.games:,}")
    table.add_row("win rate (A)", percent(result.win_rate))
    table.add_row("95% interval", interval_text(result.ci_low, result.ci_high))
    table.add_row("avg margin (A)", f"{result.avg_margin:+.2f} points")
    table.add_row("A's contracts made", f"{result.a_contract_rate:.1%}")
    table.add_row("speed", f"{result.games_per_s:,.0f} games/s")
    out.print(table)


@app.command("replay")
def replay_cmd(
    file: Annotated[Path, typer.Argument(help="A JSONL file of recorded hands (the golden format).")],
    check: Annotated[bool, typer.Option("--check", help="Verify every record against the engine.")] = True,
    show: Annotated[int, typer.Option(help="How many failing records to detail.")] = 5,
    full_game: Annotated[
        bool, typer.Option("--full-game", help="FILE holds whole games (`zeb eval --full-game --record`).")
    ] = False,
) -> None:
    """Replay recorded hands through the engine; prints `N passed, M failed` and the first differences."""
    from zeb_core.engine.replay import check_file
    from zeb_core.fullgame.replay import load_and_check

    if not file.is_file():
        fail(f"{file} does not exist or is not a file")
    result = load_and_check(file) if full_game else check_file(file)
    for idx in sorted(result.failures)[:show]:
        for msg in result.failures[idx][:3]:
            out.print(f"[red]record {idx}[/]: {msg}", highlight=False)
    out.print(result.summary(), highlight=False)
    if result.failed:
        raise typer.Exit(1)


@app.command("init-checkpoint")
def init_checkpoint_cmd(
    size: Annotated[
        str, typer.Option(help="Model size preset: small (~75K), medium (~557K), large (~3.3M params).")
    ] = "medium",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the checkpoint into.")] = Path(
        "checkpoint"
    ),
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """Write a freshly initialised model (safetensors + JSON config, step 0)."""
    from zeb_core.model import PRESETS, init_checkpoint, load_model

    if size not in PRESETS:
        fail(f"unknown size {size!r}; choose one of {', '.join(PRESETS)}")
    files = init_checkpoint(size, output, seed)
    model, _ = load_model(output)
    out.print(f"wrote a {size} model ({model.num_parameters():,} parameters) to {output}:")
    for name in files:
        out.print(f"  {output / name}")


@app.command("bot")
def bot_cmd(
    player: Annotated[
        str,
        typer.Option(
            help="Player spec: random, heuristic, policy:path=DIR[,temp=T]; or BIDDER+PLAYER (e.g. baseline+heuristic) "
            "for version 2's auction (docs/bot-protocol-v2.md; a plain player spec bids with baseline)."
        ),
    ] = "heuristic",
    seed: Annotated[int, typer.Option(help="Seed for hidden-hand sampling and random players.")] = 0,
    device: DeviceOpt = "cpu",
) -> None:
    """Answer bot-protocol requests: one JSON object per line on stdin, one reply line on stdout."""
    from zeb_core.players import SpecError
    from zeb_core.serve.bot import BotSession, serve_lines

    try:
        session = BotSession.from_spec(player, seed, resolve_device(device))
    except SpecError as exc:
        fail(str(exc))
    serve_lines(session, sys.stdin, sys.stdout)


@app.command("players")
def players_cmd() -> None:
    """List the player kinds a spec may name."""
    from zeb_core.players import known_players

    table = Table("kind", "what it does")
    for kind, text in sorted(known_players().items()):
        table.add_row(kind, text)
    out.print(table)


from zeb_cli.learner_cmd import learner_cmd, worker_cmd  # noqa: E402 - beside the registrations below
from zeb_cli.serve_cmd import serve  # noqa: E402 - beside the registrations below
from zeb_cli.store_cmd import store_app  # noqa: E402 - beside the registrations below
from zeb_cli.train_cmd import train_cmd  # noqa: E402 - beside the registrations below
from zeb_cli.ui_cmd import ui_cmd  # noqa: E402 - beside the registrations below

app.add_typer(store_app, name="store")
app.command("train")(train_cmd)
app.command("ui")(ui_cmd)
app.command("learner")(learner_cmd)
app.command("worker")(worker_cmd)
app.command("serve", help="Serve the bot protocol over HTTP and a web page to play against the bots.")(serve)


if __name__ == "__main__":  # pragma: no cover
    app()
