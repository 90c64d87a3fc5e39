"""`zeb eval A vs B --full-game`: a team-symmetric match of whole games, shown as `zeb eval` shows a match."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table


def eval_full_game(
    spec_a: str,
    spec_b: str,
    games: int,
    seed: int,
    batch_size: int,
    device: str,
    as_json: bool,
    target_marks: int,
    forced_bid: bool,
    record: Path | None,
) -> None:
    from zeb_cli.consoles import console, fail, match_progress, out
    from zeb_core.evaluation.strength import interval_text, percent
    from zeb_core.fullgame.bidders import make_full_game_player
    from zeb_core.fullgame.match import play_full_match
    from zeb_core.fullgame.replay import write_games
    from zeb_core.players import SpecError

    if target_marks < 1:
        fail(f"--target-marks must be at least 1, got {target_marks}")
    if record is not None and not record.parent.is_dir():
        fail(f"cannot write {record}: {record.parent} is not a folder")
    try:
        a = make_full_game_player(spec_a, device, seed)
        b = make_full_game_player(spec_b, device, seed + 1)
    except SpecError as exc:
        fail(str(exc))
    with match_progress(as_json) as progress:
        task = progress.add_task(f"{a.name} vs {b.name}", total=games + games % 2)
        result = play_full_match(
            a, b, games, seed, target_marks, forced_bid, batch_size, device,
            on_progress=lambda n: progress.advance(task, n), record=record is not None,
        )  # fmt: skip
    if record is not None and result.records is not None:
        write_games(record, result.records)
        console.print(f"wrote {len(result.records)} games to {record}", highlight=False)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    rules = f"games to {result.target_marks} marks" + (", forced bid" if result.forced_bid else "")
    table = Table(title=f"{result.player_a} vs {result.player_b} ({rules})", show_header=False)
    table.add_row("games", f"{result.games:,}")
    table.add_row("game win rate (A)", percent(result.win_rate))
    table.add_row("95% interval", interval_text(result.ci_low, result.ci_high))
    table.add_row("marks per hand (A / B)", f"{result.a_marks_per_hand:.2f} / {result.b_marks_per_hand:.2f}")
    table.add_row("auctions won (A)", percent(result.a_auction_rate))
    table.add_row("bids made (A / B)", f"{percent(result.a_bid_made_rate)} / {percent(result.b_bid_made_rate)}")
    table.add_row("hands per game", f"{result.hands_per_game:.1f}")
    table.add_row("redeals", percent(result.redeal_rate))
    table.add_row("speed", f"{result.games_per_s:,.1f} games/s ({result.seconds:.1f} s)")
    out.print(table)
    levels = Table(title="winning bids (hands)")
    levels.add_column("bid")
    levels.add_column("A", justify="right")
    levels.add_column("B", justify="right")
    names = list(dict.fromkeys([*result.a_bid_levels, *result.b_bid_levels]))
    for name in sorted(names, key=_bid_order):
        levels.add_row(name, str(result.a_bid_levels.get(name, 0)), str(result.b_bid_levels.get(name, 0)))
    out.print(levels)


def _bid_order(name: str) -> int:
    from zeb_core.fullgame.auction import N_BID_ACTIONS, bid_name

    return next(a for a in range(N_BID_ACTIONS) if bid_name(a) == name)
