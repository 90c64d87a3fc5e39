"""The CLI's consoles: a report written to a file or a pipe keeps its tables whole (rich alone would use 80)."""

from __future__ import annotations

import pytest
from rich.table import Table

from zeb_cli.consoles import PIPE_WIDTH, make_console


def test_a_piped_report_keeps_a_full_game_row_whole(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = make_console()  # pytest's captured stdout is not a terminal
    assert out.width == PIPE_WIDTH
    table = Table("player", "opponent", "games", "game win rate", "95% CI", "marks/hand", "bids made")
    table.add_row("net+policy", "random:pass=0.5+heuristic", "200", "99.5%", "98.5%..100.0%", "1.05 vs 0.13", "59.5%")
    out.print(table)
    text = capsys.readouterr().out
    for cell in ("net+policy", "random:pass=0.5+heuristic", "98.5%..100.0%", "1.05 vs 0.13"):
        assert cell in text


def test_columns_in_the_environment_still_set_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100 and make_console(stderr=True).width == 100
