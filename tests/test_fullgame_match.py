"""Full-game matches: team symmetry over deal sequences, the statistics, the replay format, `zeb eval --full-game`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from fullgame_bidders import DoublesBidder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from zeb_cli.main import app
from zeb_core.fullgame.auction import bid_action, bid_name
from zeb_core.fullgame.bidders import make_full_game_player
from zeb_core.fullgame.interface import FullGamePlayer
from zeb_core.fullgame.match import FullMatchResult, play_full_match
from zeb_core.fullgame.replay import load_and_check, write_games
from zeb_core.players import make_player

runner = CliRunner()
RANDOM_A, RANDOM_B = "random:pass=0.5+heuristic", "random:pass=0.5+random"


@pytest.fixture(scope="module")
def match() -> FullMatchResult:
    a = make_full_game_player(RANDOM_A, seed=0)
    b = make_full_game_player(RANDOM_B, seed=1)
    return play_full_match(a, b, 24, seed=5, target_marks=4, batch_size=16, check=True, record=True)


@pytest.fixture(scope="module")
def replay_file(match: FullMatchResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert match.records is not None
    path = tmp_path_factory.mktemp("replay") / "games.jsonl"
    write_games(path, match.records)
    return path


# ---------------------------------------------------------------- team symmetry
def test_both_halves_of_a_pair_see_the_same_deal_sequence(match: FullMatchResult) -> None:
    recs = match.records
    assert recs is not None and len(recs) == match.games == 24
    # batches of 8 pairs (batch_size 16): [8 games A on team 0 ; the same 8 deal sequences, A on team 1]
    compared = 0
    for start in range(0, 24, 16):
        n = min(8, (24 - start) // 2)
        for p in range(n):
            first, second = recs[start + p], recs[start + n + p]
            assert first["teams"] == [RANDOM_A, RANDOM_B] and second["teams"] == [RANDOM_B, RANDOM_A]
            assert first["first_dealer"] == second["first_dealer"]
            for h1, h2 in zip(first["hands"], second["hands"]):
                assert h1["deal"] == h2["deal"] and h1["dealer"] == h2["dealer"]
                compared += 1
    assert compared > 24
    # and different pairs get different deals
    assert recs[0]["hands"][0]["deal"] != recs[1]["hands"][0]["deal"]


def test_a_deterministic_player_against_itself_scores_exactly_half() -> None:
    def doubles() -> FullGamePlayer:
        return FullGamePlayer("doubles+heuristic", DoublesBidder(), make_player("heuristic"))

    result = play_full_match(doubles(), doubles(), 20, seed=3, target_marks=3, check=True)
    assert result.win_rate == pytest.approx(0.5) and result.ci_low == pytest.approx(0.5)
    assert result.a_marks_per_hand == pytest.approx(result.b_marks_per_hand)
    assert result.a_bid_made_rate == pytest.approx(result.b_bid_made_rate)
    assert result.a_bid_levels == result.b_bid_levels and result.a_auction_rate == pytest.approx(0.5)


def test_the_same_seed_plays_the_same_match() -> None:
    def run(seed: int) -> dict:
        a = make_full_game_player(RANDOM_A, seed=0)
        b = make_full_game_player(RANDOM_B, seed=1)
        d = play_full_match(a, b, 8, seed=seed, target_marks=2).to_dict()
        return {k: v for k, v in d.items() if k not in ("seconds", "games_per_s")}

    assert run(1) == run(1)
    assert run(1) != run(2)


# ---------------------------------------------------------------- statistics
def test_the_statistics_agree_with_a_count_of_the_recorded_games(match: FullMatchResult) -> None:
    recs = match.records
    assert recs is not None
    hands = redeals = 0
    marks = {RANDOM_A: 0, RANDOM_B: 0}
    won = {RANDOM_A: 0, RANDOM_B: 0}
    made = {RANDOM_A: 0, RANDOM_B: 0}
    levels: dict[str, dict[str, int]] = {RANDOM_A: {}, RANDOM_B: {}}
    a_wins = 0.0
    for rec in recs:
        a_team = rec["teams"].index(RANDOM_A)
        a_wins += rec["winner"] == a_team
        for hand in rec["hands"]:
            hands += 1
            if hand["winner"] is None:
                redeals += 1
                continue
            for team in (0, 1):
                marks[rec["teams"][team]] += hand["marks"][team]
            team = hand["winner"] % 2
            who = rec["teams"][team]
            won[who] += 1
            made[who] += hand["marks"][team] > 0
            name = bid_name(bid_action(hand["bid"]))
            levels[who][name] = levels[who].get(name, 0) + 1
    played = hands - redeals
    assert match.hands == hands and match.hands_per_game == pytest.approx(hands / 24)
    assert match.redeal_rate == pytest.approx(redeals / hands)
    assert match.win_rate == pytest.approx(a_wins / 24)
    assert match.a_marks_per_hand == pytest.approx(marks[RANDOM_A] / played)
    assert match.b_marks_per_hand == pytest.approx(marks[RANDOM_B] / played)
    assert match.a_auction_rate == pytest.approx(won[RANDOM_A] / played)
    assert match.a_bid_made_rate == pytest.approx(made[RANDOM_A] / won[RANDOM_A])
    assert match.b_bid_made_rate == pytest.approx(made[RANDOM_B] / won[RANDOM_B])
    assert match.a_bid_levels == levels[RANDOM_A] and match.b_bid_levels == levels[RANDOM_B]
    assert match.ci_low <= match.win_rate <= match.ci_high
    assert "records" not in match.to_dict() and json.dumps(match.to_dict())
    assert "game win rate" in match.summary()


def test_a_match_needs_two_games() -> None:
    a = make_full_game_player(RANDOM_A)
    with pytest.raises(ValueError, match="at least 2 games"):
        play_full_match(a, a, 1)


# ---------------------------------------------------------------- replay
def test_recorded_games_replay_without_a_difference(replay_file: Path) -> None:
    result = load_and_check(replay_file)
    assert result.total == 24 and result.failed == 0, result.failures


def _tamper(records: list[dict], how: str) -> tuple[int, str]:
    """Change game 2 (line 3) as `how` says; the message expected in its report."""
    rec = records[2]
    played = [h for h, hand in enumerate(rec["hands"]) if hand["winner"] is not None]
    h = played[0]
    hand = rec["hands"][h]
    if how == "play":
        hand["plays"][1], hand["plays"][5] = hand["plays"][5], hand["plays"][1]
        return h, "play "
    if how == "bid":
        hand["bids"] = [0, 31, 30, 0]
        return h, "does not top the high bid"
    if how == "jump":
        hand["bids"] = [42, 168, 0, 0]
        return h, "at most one mark above"
    if how == "winner":
        hand["winner"] = (hand["winner"] + 1) % 4
        return h, "in the engine"
    if how == "decl":
        hand["decl"] = 11
        return h, "outside 0..9"
    if how == "marks":
        hand["marks"] = hand["marks"][::-1]
        return h, "marks gained"
    if how == "points":
        hand["team_points"] = [hand["team_points"][0] + 1, hand["team_points"][1] - 1]
        return h, "team points"
    if how == "dealer":
        hand["dealer"] = (hand["dealer"] + 1) % 4
        return h, "the deal passes left"
    if how == "extra hand":
        rec["hands"].append(copy.deepcopy(rec["hands"][-1]))
        return len(rec["hands"]) - 1, "after the game ended"
    if how == "missing hand":
        rec["hands"].pop()
        return -1, "before a team reached"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["play", "bid", "jump", "winner", "decl", "marks", "points", "dealer", "extra hand", "missing hand"]
)
def test_a_tampered_game_is_reported_with_its_line_and_hand(how: str, match: FullMatchResult, tmp_path: Path) -> None:
    records = copy.deepcopy(match.records)
    assert records is not None
    h, message = _tamper(records, how)
    path = tmp_path / "tampered.jsonl"
    write_games(path, records)
    result = load_and_check(path)
    assert result.total == 24 and result.failed == 1 and list(result.failures) == [2], result.failures
    where = "line 3" if h < 0 else f"line 3, hand {h + 1}:"
    assert any(where in msg and message in msg for msg in result.failures[2]), result.failures[2]


def test_lines_that_are_not_games_are_reported_not_raised(replay_file: Path, tmp_path: Path) -> None:
    lines = replay_file.read_text().splitlines()
    one = json.loads(lines[0])
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({**one, "version": 99}),
        json.dumps({**one, "format": "zeb-golden"}),
        json.dumps({**one, "hands": []}),
        json.dumps({**one, "hands": [{**one["hands"][0], "deal": [[0] * 7] * 4}]}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(("\n".join([lines[0], *bad]) + "\n").encode() + b"\xff\xfe\n")
    result = load_and_check(path)
    assert result.total == 8 and result.passed == 1
    for idx, lineno in zip(range(1, 8), range(2, 9)):
        assert result.failures[idx][0].startswith(f"line {lineno}: not a valid game record"), result.failures[idx]
    assert "version 99 is not supported" in result.failures[3][0]
    assert "each domino id 0..27 exactly once" in result.failures[6][0]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


def _paths(x: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(x, dict):
        for k, v in x.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            found += _paths(v, (*prefix, i))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_a_game_is_a_report_never_a_crash(data: st.DataObject, match: FullMatchResult,
                                                         tmp_path: Path) -> None:  # fmt: skip
    assert match.records is not None
    rec = copy.deepcopy(match.records[0])
    path = data.draw(st.sampled_from(_paths(rec)[1:]))
    target = rec
    for key in path[:-1]:
        target = target[key]
    new = data.draw(_JSON)
    target[path[-1]] = new
    file = tmp_path / "fuzz.jsonl"
    file.write_text(json.dumps(rec) + "\n")
    result = load_and_check(file)  # must not raise
    assert result.total == 1
    for msgs in result.failures.values():
        assert all(m.startswith("line 1") for m in msgs)


# ---------------------------------------------------------------- the CLI
def test_eval_full_game_end_to_end(tmp_path: Path) -> None:
    record = tmp_path / "games.jsonl"
    args = ["eval", RANDOM_A, "vs", RANDOM_B, "--full-game", "--games", "6", "--target-marks", "2", "--seed", "4"]
    res = runner.invoke(app, [*args, "--json", "--record", str(record)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["games"] == 6 and data["player_a"] == RANDOM_A and data["target_marks"] == 2
    assert data["ci_low"] <= data["win_rate"] <= data["ci_high"] and data["hands"] >= 6
    assert len(record.read_text().splitlines()) == 6
    res = runner.invoke(app, ["replay", "--full-game", str(record)])
    assert res.exit_code == 0 and "6 passed, 0 failed" in res.stdout, res.output
    res = runner.invoke(app, [*args, "--forced-bid"])
    assert res.exit_code == 0, res.output
    assert "game win rate (A)" in res.stdout and "forced" in res.stdout and "winning bids" in res.stdout

    lines = record.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["hands"][0]["bids"] = [126, 0, 0, 0]
    lines[1] = json.dumps(rec)
    record.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["replay", "--full-game", str(record)])
    assert res.exit_code == 1 and "line 2, hand 1" in res.stdout and "5 passed, 1 failed" in res.stdout, res.output


def test_eval_full_game_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "heuristic", "vs", "random", "--full-game", "--games", "2"])
    assert res.exit_code == 2 and "must be BIDDER+PLAYER" in res.output
    res = runner.invoke(app, ["eval", "nope+heuristic", "vs", RANDOM_B, "--full-game", "--games", "2"])
    assert res.exit_code == 2 and "unknown bidder" in res.output
    res = runner.invoke(app, ["eval", "heuristic", "vs", "random", "--games", "2", "--record", str(tmp_path / "x")])
    assert res.exit_code == 2 and "need --full-game" in res.output
    res = runner.invoke(app, ["eval", RANDOM_A, "vs", RANDOM_B, "--full-game", "--target-marks", "0"])
    assert res.exit_code == 2 and "--target-marks must be at least 1" in res.output
