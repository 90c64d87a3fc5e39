"""The batched engine against the reference's golden hands, its rules invariants, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_core.engine import (
    GameState,
    IllegalMoveError,
    InvalidDealError,
    deal_benchmark,
    domino_id,
    make_generator,
)
from zeb_core.engine.dominoes import COUNT
from zeb_core.engine.replay import check_file

runner = CliRunner()


def test_golden_file_passes_every_line(golden_file: Path) -> None:
    result = check_file(golden_file)
    assert result.total == 300
    assert result.failures == {}


def test_replay_command_prints_summary(golden_file: Path) -> None:
    res = runner.invoke(app, ["replay", "--check", str(golden_file)])
    assert res.exit_code == 0, res.output
    assert "300 passed, 0 failed" in res.output


def test_replay_command_reports_first_differences(golden_file: Path, tmp_path: Path) -> None:
    lines = golden_file.read_text().splitlines()[:4]
    rec = json.loads(lines[1])
    rec["tricks"][0]["points"] += 1
    rec["steps"][3]["legal"] = [*rec["steps"][3]["legal"][:-1], 27]
    lines[1] = json.dumps(rec)
    lines[2] = lines[2][: len(lines[2]) // 2]  # truncated record
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["replay", "--check", str(bad)])
    assert res.exit_code == 1
    assert "2 passed, 2 failed" in res.output
    assert "trick 1" in res.output and "play 4: legal" in res.output
    assert "not a valid record" in res.output


def _random_games(batch: int, seed: int) -> GameState:
    gen = make_generator(seed)
    state = deal_benchmark(batch, gen)
    while not bool(state.done().all()):
        legal = state.legal_mask()
        noise = torch.rand(legal.shape, generator=gen)
        state.apply(torch.where(legal, noise, -1.0).argmax(1))
    return state


def test_every_hand_distributes_42_points_and_values_follow_the_contract() -> None:
    state = _random_games(2000, seed=3)
    assert bool((state.team_points.sum(1) == 42).all())
    assert bool((state.trick_points.sum(1) == 42).all())
    assert bool((state.trick_winners >= 0).all())
    values = state.values()
    bidder_value = values.gather(1, state.bidder.view(-1, 1)).squeeze(1)
    made = state.contract_made()
    assert bool(((bidder_value > 0) == made).all())
    assert bool((values[:, 0] == values[:, 2]).all()) and bool((values[:, 0] == -values[:, 1]).all())
    assert bool((values.abs() <= 1).all()) and bool((values.abs() >= 0.5).all())


def test_same_seed_same_games_and_batching_does_not_change_results() -> None:
    a, b = _random_games(64, seed=11), _random_games(64, seed=11)
    assert torch.equal(a.history, b.history) and torch.equal(a.team_points, b.team_points)
    c = _random_games(64, seed=12)
    assert not torch.equal(a.history, c.history)
    # Replaying one game of the batch alone gives the same tricks.
    single = GameState.from_deal(a.hands[5:6], a.decl[5:6], a.bidder[5:6], a.bid[5:6], a.leader[5:6])
    for move in a.history[5].tolist():
        single.apply(torch.tensor([move]))
    assert torch.equal(single.trick_winners[0], a.trick_winners[5])
    assert torch.equal(single.team_points[0], a.team_points[5])


def _state(decl: int = 1, bidder: int = 0) -> GameState:
    hands = torch.arange(28).view(1, 4, 7)
    return GameState.from_deal(hands, torch.tensor([decl]), torch.tensor([bidder]), torch.tensor([35]))


def test_illegal_moves_raise_clear_errors_and_change_nothing() -> None:
    s = _state(decl=1)
    with pytest.raises(IllegalMoveError, match="not in seat 0's hand"):
        s.apply(torch.tensor([20]))
    assert int(s.n_plays[0]) == 0
    s.apply(torch.tensor([domino_id(1, 1)]))  # seat 0 leads the 1-1 (trump)
    with pytest.raises(IllegalMoveError, match="already played"):
        s.apply(torch.tensor([domino_id(1, 1)]))
    # Seat 1 holds 3-1 and 4-1 among ids 7..13: it must follow trumps (ones) with one of them.
    assert s.legal_mask()[0].nonzero().flatten().tolist() == [domino_id(3, 1), domino_id(4, 1)]
    with pytest.raises(IllegalMoveError, match="does not follow the led suit"):
        s.apply(torch.tensor([domino_id(3, 3)]))
    with pytest.raises(IllegalMoveError, match="not a domino id"):
        s.apply(torch.tensor([28]))


def test_invalid_deals_are_refused() -> None:
    hands = torch.arange(28).view(1, 4, 7).clone()
    with pytest.raises(InvalidDealError, match="dealt 2 times"):
        bad = hands.clone()
        bad[0, 1, 0] = 0
        GameState.from_deal(bad, torch.tensor([0]), torch.tensor([0]), torch.tensor([30]))
    with pytest.raises(InvalidDealError, match="declaration id 10"):
        GameState.from_deal(hands, torch.tensor([10]), torch.tensor([0]), torch.tensor([30]))
    with pytest.raises(InvalidDealError, match="bid 29"):
        GameState.from_deal(hands, torch.tensor([0]), torch.tensor([0]), torch.tensor([29]))
    with pytest.raises(InvalidDealError, match="shape"):
        GameState.from_deal(hands.view(1, 7, 4), torch.tensor([0]), torch.tensor([0]), torch.tensor([30]))


def test_doubles_trump_and_no_trump_rules() -> None:
    # Doubles trump: seat 0 leads 6-5 (sixes led); seat 1's 0-0 is a trump and wins.
    hands = [
        [26, 1, 3, 6, 10, 15, 21],
        [0, 4, 7, 8, 11, 12, 13],
        [2, 5, 9, 14, 16, 17, 18],
        [19, 20, 22, 23, 24, 25, 27],
    ]
    s = GameState.from_deal(torch.tensor([hands]), torch.tensor([7]), torch.tensor([0]), torch.tensor([30]))
    for d in (26, 0, 2, 22):  # 6-5, 0-0 (trump), 1-1 (trump), 6-1
        legal = s.legal_mask()[0]
        assert bool(legal[d]), f"{d} should be legal"
        s.apply(torch.tensor([d]))
    assert int(s.trick_winners[0, 0]) == 2  # 1-1 outranks 0-0 under doubles-trump
    # No trump: the lead's high pip is the suit; 6-6 led -> sixes; highest six wins (the double).
    s = GameState.from_deal(torch.tensor([hands]), torch.tensor([9]), torch.tensor([3]), torch.tensor([30]))
    s.apply(torch.tensor([27]))
    assert s.legal_mask()[0].nonzero().flatten().tolist() == [21, 26]  # seat 0 must follow sixes
    assert int(COUNT[domino_id(6, 4)]) == 10


def test_lookup_tables_work_on_another_device_when_present() -> None:
    if not torch.cuda.is_available():
        # Still exercise the device argument on CPU: the engine never assumes a device.
        state = deal_benchmark(8, make_generator(0, "cpu"), torch.device("cpu"))
        assert state.device.type == "cpu"
        return
    state = deal_benchmark(8, make_generator(0, "cuda"), "cuda")  # pragma: no cover - GPU machines only
    assert state.legal_mask().device.type == "cuda"
