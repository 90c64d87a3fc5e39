"""The full game on `zeb serve`: hands to N marks, each an auction (the human's bids through the page's buttons or
the API), the declaration, the plays, the marks board. Every recorded game is replayed through the engine's own
`AuctionState` and `GameState` with their rule checks on, so every bot bid and play is proven legal and every
mark accounted for. The browser test is a real headless Chromium (tests/browser_setup.sh), as test_serve_browser.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve_browser import ARTIFACTS, TIMEOUT, _deal_seeded, _wait, browser, server  # noqa: F401 - fixtures, reused

from zeb_core.engine import GameState
from zeb_core.engine.dominoes import HIGH, LOW, MAX_BID
from zeb_core.fullgame.auction import AuctionState, bid_action, hand_marks
from zeb_core.serve.app import create_app

PASSIVE = "random:pass=1+heuristic"  # bots that pass whenever they may
JSON_TYPE = {"content-type": "application/json"}  # a body of another type is refused (415) before parsing


@pytest.fixture(scope="module")
def client() -> TestClient:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return resp.json()


def _error(resp: httpx.Response, status: int, fragment: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and fragment in body["error"], body
    return body["error"]


def replay_game(record: dict[str, Any]) -> None:
    """Every deal of a finished game through the engine, rules checked: bids, declaration, plays, marks, dealer."""
    marks = [0, 0]
    history = record["history"]
    assert history and [h["hand"] for h in history] == list(range(1, len(history) + 1))
    for prev, h in itertools.pairwise(history):
        assert h["dealer"] == (prev["dealer"] + 1) % 4, "the deal passes left after every hand and every redeal"
    for h in history:
        hands = torch.tensor([h["hands"]])
        assert sorted(hands.flatten().tolist()) == list(range(28))
        auction = AuctionState.start(torch.tensor([h["dealer"]]), forced_bid=record["forced_bid"])
        for b in h["bids"]:
            assert b["seat"] == int(auction.current[0])
            auction.apply_bids(torch.tensor([bid_action(b["bid"])]), check=True)  # raises on an illegal bid
            assert (b["by"] == "you") == (b["seat"] == 0)
        assert bool(auction.bidding_over()[0])
        if h["redeal"]:
            assert bool(auction.all_passed()[0]) and not record["forced_bid"]
            assert h["marks"] == marks
            continue
        bidder, value = int(auction.high_bidder[0]), int(auction.high[0])
        assert (h["bidder"], h["bid"]) == (bidder, value)
        auction.declare(torch.tensor([h["decl"]]), check=True)
        state = GameState.from_deal(
            hands, torch.tensor([h["decl"]]), torch.tensor([bidder]), torch.tensor([min(value, MAX_BID)]),
            torch.tensor([bidder]),
        )  # fmt: skip
        seats = []
        for seat, domino in h["plays"]:
            assert seat == int(state.current[0])
            seats.append(seat)
            state.apply(torch.tensor([domino]), check=True)  # raises on an illegal play
        assert bool(state.done()[0]) and state.team_points[0].tolist() == h["team_points"]
        gained = hand_marks(state.team_points, torch.tensor([bidder]), torch.tensor([value]))[0].tolist()
        assert gained == h["marks_gained"]
        marks = [m + g for m, g in zip(marks, gained)]
        assert h["marks"] == marks
    assert record["marks"] == marks
    target = record["target"]
    assert record["done"] and max(marks) >= target
    assert record["result"]["winner_team"] == (0 if marks[0] >= target else 1)
    scored = [h for h in history if not h["redeal"]]
    before_last = [sum(h["marks_gained"][t] for h in scored[:-1]) for t in (0, 1)]
    assert max(before_last) < target, "the game ends at the first hand that reaches the target"


def _strongest_pip(hand: list[int]) -> int:
    held = Counter(p for d in hand for p in {int(HIGH[d]), int(LOW[d])})
    return max(range(7), key=lambda p: (held[p], p))


def play_through_api(c: TestClient, game: dict[str, Any], bid_when: Any) -> tuple[dict[str, Any], Counter[str]]:
    """Seat 0 bids by `bid_when(view)` (True: the lowest legal bid; False: pass), declares its strongest suit,
    plays its last legal domino, until the game is over. Returns the final view and the human's actions."""
    acts: Counter[str] = Counter()
    gid = game["id"]
    for _ in range(2000):
        if game["done"]:
            return game, acts
        assert game["your_turn"] or game["phase"] == "hand_over"
        assert "hands" not in game and all(k != "hands" for k in game.get("auction", {}))
        if game["phase"] == "bid":
            legal = [b["bid"] for b in game["legal_bids"]]
            assert legal == sorted(legal) and all(v == 0 or v > game["auction"]["high"] for v in legal)
            choice = next(v for v in legal if v) if bid_when(game) or 0 not in legal else 0
            acts["bid" if choice else "pass"] += 1
            game = _ok(c.post(f"/v1/full-games/{gid}/bid", json={"bid": choice}))
        elif game["phase"] == "declare":
            acts["declare"] += 1
            game = _ok(c.post(f"/v1/full-games/{gid}/declare", json={"decl": _strongest_pip(game["hand"])}))
        elif game["phase"] == "play":
            assert game["legal"] and set(game["legal"]) <= set(game["hand"])
            acts["play"] += 1
            game = _ok(c.post(f"/v1/full-games/{gid}/play", json={"domino": game["legal"][-1]}))
        else:
            assert game["hand_result"] is not None and game["hand_result"]["marks"] == game["marks"]
            acts["next"] += 1
            game = _ok(c.post(f"/v1/full-games/{gid}/next"))
    raise AssertionError("the game did not end in 2000 decisions")


# ---------------------------------------------------------------- the API
def test_a_game_to_7_marks_through_the_api_replays_through_the_engine(client: TestClient) -> None:
    game = _ok(client.post("/v1/full-games", json={"seed": 5}))
    assert (game["target"], game["forced_bid"], game["marks"], game["hand_number"]) == (7, False, [0, 0], 1)
    assert set(game["bots"]) == {"1", "2", "3"} and all("+heuristic" in s for s in game["bots"].values())
    final, acts = play_through_api(client, game, lambda g: g["dealer"] == 0)
    record = _ok(client.get(f"/v1/full-games/{game['id']}"))
    assert record == final
    replay_game(record)
    hands = [h for h in record["history"] if not h["redeal"]]
    assert acts["play"] == 7 * len(hands) and acts["next"] == len(hands) - 1
    bot_bids = [b for h in record["history"] for b in h["bids"] if b["seat"] != 0]
    assert bot_bids and all(isinstance(b["explanation"], str) and b["explanation"].strip() for b in bot_bids)
    _error(client.post(f"/v1/full-games/{game['id']}/next"), 409, "game is over")
    _error(client.post(f"/v1/full-games/{game['id']}/bid", json={"bid": 0}), 409, "game is over")


@pytest.mark.parametrize("seed", [1, 2])
def test_random_bidders_bid_legally_through_whole_games(client: TestClient, seed: int) -> None:
    """Random bidders reach mark bids and redeals; the engine's replay checks each bid, play and mark."""
    game = _ok(client.post("/v1/full-games", json={"seed": seed, "target": 4, "opponents": "random+random"}))
    assert game["bots"] == {"1": "random+random", "2": game["bots"]["2"], "3": "random+random"}
    final, _ = play_through_api(client, game, lambda g: g["hand_number"] % 2 == 0)
    replay_game(final)


def _seed_with_dealer(c: TestClient, dealer: int, **body: Any) -> dict[str, Any]:
    for seed in range(200):
        game = _ok(c.post("/v1/full-games", json={"seed": seed, **body}))
        if game["dealer"] == dealer:
            return game
    raise AssertionError(f"no seed below 200 deals first from seat {dealer}")


def test_illegal_human_bids_are_refused_with_a_clear_error_and_change_nothing(client: TestClient) -> None:
    game = _seed_with_dealer(client, 0, opponents="random:pass=0+heuristic", partner=PASSIVE)
    gid = game["id"]
    assert game["phase"] == "bid" and game["your_bid"] and game["auction"]["high"] >= 30  # Left always bids
    high = game["auction"]["high"]
    assert game["legal_bids"][0] == {"bid": 0, "name": "pass"}
    assert [b["seat"] for b in game["auction"]["bids"]] == [1, 2, 3]
    low = high if high < 42 else 42 * (high // 42)
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": low}), 422, "does not top the high bid")
    top = 42 * (max(high, 84) // 42 + 2)
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": top}), 422, "at most one mark above")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": 43}), 422, "43 is not a bid")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": 29}), 422, "29 is not a bid")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": "31"}), 400, "'bid': input should be a valid integer")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": True}), 400, "'bid'")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": 1000}), 400, "less than or equal to 294")
    _error(client.post(f"/v1/full-games/{gid}/bid", json={}), 400, "missing field 'bid'")
    _error(client.post(f"/v1/full-games/{gid}/bid", content=b"{oops", headers=JSON_TYPE), 400, "not valid JSON")
    _error(client.post(f"/v1/full-games/{gid}/declare", json={"decl": 3}), 409, "auction is on")
    _error(client.post(f"/v1/full-games/{gid}/play", json={"domino": game["hand"][0]}), 409, "auction is on")
    _error(client.post(f"/v1/full-games/{gid}/next"), 409, "hand is not over")
    _error(client.post("/v1/full-games/nope/bid", json={"bid": 0}), 404, "no full game with id")
    _error(client.get("/v1/full-games/nope"), 404, "no full game with id")
    assert _ok(client.get(f"/v1/full-games/{gid}")) == game, "a refused request changed the game"
    # A legal bid goes through: seat 0 speaks last, so it wins and names trumps.
    game = _ok(client.post(f"/v1/full-games/{gid}/bid", json={"bid": game["legal_bids"][1]["bid"]}))
    assert game["phase"] == "declare" and game["your_declaration"] and len(game["declarations"]) == 10
    _error(client.post(f"/v1/full-games/{gid}/bid", json={"bid": 0}), 409, "naming trumps")
    _error(client.post(f"/v1/full-games/{gid}/declare", json={"decl": 10}), 400, "less than or equal to 9")
    _error(client.post(f"/v1/full-games/{gid}/declare", json={"decl": "sixes"}), 400, "'decl'")
    game = _ok(client.post(f"/v1/full-games/{gid}/declare", json={"decl": 6}))
    assert game["phase"] == "play" and game["contract"]["bidder"] == 0 and game["contract"]["decl_name"] == "sixes"
    assert game["your_turn"] and len(game["hand"]) == 7 and game["n_plays"] == 0  # the winner leads
    not_held = next(d for d in range(28) if d not in game["hand"])
    _error(client.post(f"/v1/full-games/{gid}/play", json={"domino": not_held}), 422, "")
    _error(client.post(f"/v1/full-games/{gid}/play", json={"domino": 28}), 400, "'domino'")


def test_forced_bid_and_redeal(client: TestClient) -> None:
    """Bots that always pass: without forced_bid the human's pass redeals by the next dealer; with it the dealer
    (the human) may not pass."""
    game = _seed_with_dealer(client, 0, partner=PASSIVE, opponents=PASSIVE, target=1)
    assert [b["bid"] for b in game["auction"]["bids"]] == [0, 0, 0]
    assert all(b["explanation"] for b in game["auction"]["bids"])  # a plain line when the bidder gives none
    after = _ok(client.post(f"/v1/full-games/{game['id']}/bid", json={"bid": 0}))
    assert (after["hand_number"], after["dealer"], after["phase"]) == (2, 1, "bid")
    assert after["history"][0]["redeal"] and after["history"][0]["dealer"] == 0
    assert after["hand"] != game["hand"] and after["marks"] == [0, 0]
    assert [b["seat"] for b in after["auction"]["bids"]] == [2, 3]  # dealer 1: seats 2 and 3 spoke, now seat 0

    forced = _seed_with_dealer(client, 0, partner=PASSIVE, opponents=PASSIVE, forced_bid=True, target=1)
    assert forced["forced_bid"] and next(b["bid"] for b in forced["legal_bids"]) == 30
    _error(client.post(f"/v1/full-games/{forced['id']}/bid", json={"bid": 0}), 422, "forced_bid")
    final, acts = play_through_api(client, forced, lambda g: True)
    assert acts["declare"] == 1 and final["result"]["hands_played"] == 1  # one hand of a game to 1 mark
    replay_game(final)


def test_bad_new_games_get_a_400_and_the_players_list_the_bidders(client: TestClient) -> None:
    for body, fragment in [
        ({"target": 0}, "greater than or equal to 1"),
        ({"target": 22}, "less than or equal to 21"),
        ({"target": "7"}, "'target'"),
        ({"forced_bid": "yes"}, "'forced_bid'"),
        ({"seed": -1}, "'seed'"),
        ({"partner": "chess+heuristic"}, "unknown bidder 'chess'"),
        ({"partner": "random:foo=1+heuristic"}, "foo"),
        ({"opponents": "random+"}, "BIDDER+PLAYER"),
        ({"opponents": ""}, "non-empty"),
        ({"bots": {"0": "random"}}, "seat '0'"),
        ({"bots": ["random"]}, "'bots'"),
    ]:
        _error(client.post("/v1/full-games", json=body), 400, fragment)
    _error(client.post("/v1/full-games", content=b"[1]", headers=JSON_TYPE), 400, "JSON object")
    listing = _ok(client.get("/v1/players", params={"bidder": ["random:pass=0.9", "nope"]}))
    by_spec = {b["spec"]: b for b in listing["bidders"]}
    assert by_spec[listing["default_bidder"]]["default"] and by_spec["random"]["available"]
    assert by_spec["random:pass=0.9"]["available"] and not by_spec["nope"]["available"]
    assert "unknown bidder" in by_spec["nope"]["reason"]


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**31),
    junk=st.lists(
        st.tuples(
            st.sampled_from(["bid", "declare", "play", "next"]),
            st.one_of(st.integers(-5, 300), st.text(max_size=3), st.none(), st.booleans()),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_full_game_sessions_under_bad_requests_stay_consistent(
    client: TestClient, seed: int, junk: list[tuple[str, Any]]
) -> None:
    """Requests of any kind between good ones: each is a 200 (then legal by the view before it) or a 4xx with a
    reason that changes nothing."""
    game = _ok(client.post("/v1/full-games", json={"seed": seed, "target": 1, "opponents": "random+random"}))
    for route, value in junk:
        if game["done"]:
            break
        field = {"bid": "bid", "declare": "decl", "play": "domino"}.get(route)
        resp = client.post(f"/v1/full-games/{game['id']}/{route}", json={field: value} if field else None)
        if resp.status_code == 200:
            ok = {
                "bid": game["your_bid"] and value in [b["bid"] for b in game["legal_bids"]],
                "declare": game["your_declaration"] and value in range(10),
                "play": game["your_turn"] and game["phase"] == "play" and value in game["legal"],
                "next": game["phase"] == "hand_over",
            }[route]
            assert ok and not isinstance(value, bool), f"{route} {value!r} was accepted in {game['phase']}"
            game = resp.json()
        else:
            assert 400 <= resp.status_code < 500 and len(resp.json()["error"]) >= 10, resp.text
            assert _ok(client.get(f"/v1/full-games/{game['id']}")) == game, "a refused request changed the game"


# ---------------------------------------------------------------- the page in a real browser
def _state(driver: Any) -> str | bool:
    state = driver.find_element("tag name", "body").get_attribute("data-state")
    return state if state in ("your-bid", "your-decl", "your-turn", "hand-over", "done") else False


def test_play_a_full_game_in_the_browser(server: str, browser: Any) -> None:  # noqa: F811 - the fixtures
    """A game to 2 marks against the default bots, every decision a click: seat 0 deals first and so wins the
    first auction (the declaration picker), passes when not dealing, and plays every domino by clicking."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with httpx.Client(base_url=server, timeout=TIMEOUT) as http:
        seed = next(
            s for s in range(200) if http.post("/v1/full-games", json={"seed": s, "target": 2}).json()["dealer"] == 0
        )
    d = browser
    d.get(server + "/?mode=game")
    _wait(d, "the first game", _state)
    assert d.find_element(By.ID, "marks-board").is_displayed() and d.find_element(By.ID, "bidder").is_displayed()
    assert d.find_element(By.ID, "deal").text.startswith("New game")
    bidder = Select(d.find_element(By.ID, "bidder")).first_selected_option.get_attribute("value")
    table, game_id = _deal_seeded(d, "heuristic", "heuristic", {"seed": seed, "target": 2}, "the seeded game", _state)
    text = lambda el_id: d.find_element(By.ID, el_id).text
    assert text("dealer-name") == "You" and text("hand-number") == "1" and text("marks-0") == text("marks-1") == "0"

    ARTIFACTS.mkdir(exist_ok=True)
    clicks: Counter[str] = Counter()
    my_bids: list[int] = []
    for _ in range(200):
        state = _state(d)
        if state == "done":
            break
        before = table.get_attribute("data-n-actions")
        if state == "your-bid":
            explained = d.find_elements(By.CSS_SELECTOR, "#auction-log li .explain")
            spoken = d.find_elements(By.CSS_SELECTOR, "#auction-log li[data-seat]")
            assert len(explained) == len(spoken) and all(e.text.strip() for e in explained), "each bot explains"
            buttons = d.find_elements(By.CSS_SELECTOR, "#bidbox button[data-bid]")
            values = [int(b.get_attribute("data-bid")) for b in buttons]
            assert values and values == sorted(values)
            if text("dealer-name") == "You" or 0 not in values:
                pick = next(b for b in buttons if b.get_attribute("data-bid") != "0")
                if not clicks["bid"]:
                    d.save_screenshot(str(ARTIFACTS / "serve_fullgame_auction.png"))
                clicks["bid"] += 1
            else:
                pick = buttons[values.index(0)]
                assert pick.text == "Pass"
                clicks["pass"] += 1
            my_bids.append(int(pick.get_attribute("data-bid")))
            pick.click()
        elif state == "your-decl":
            decls = d.find_elements(By.CSS_SELECTOR, "#bidbox button[data-decl]")
            assert [b.text.lower() for b in decls][:2] == ["blanks", "ones"] and len(decls) == 10
            hand = [
                int(el.get_attribute("data-domino")) for el in d.find_elements(By.CSS_SELECTOR, "#hand [data-domino]")
            ]
            decls[_strongest_pip(hand)].click()
            clicks["declare"] += 1
        elif state == "your-turn":
            legal = d.find_elements(By.CSS_SELECTOR, '#hand [data-legal="true"]')
            assert legal and all(
                not el.is_enabled() for el in d.find_elements(By.CSS_SELECTOR, '#hand [data-legal="false"]')
            )
            legal[-1].click()
            clicks["play"] += 1
        else:  # hand-over: the marks board already shows the hand's marks
            record = httpx.get(f"{server}/v1/full-games/{game_id}", timeout=TIMEOUT).json()
            assert [int(text("marks-0")), int(text("marks-1"))] == record["marks"]
            last = record["history"][-1]
            assert d.find_element(By.ID, "result").is_displayed() and last["summary"] in text("result")
            assert text("result-contract") == ("made" if last["made"] else "set")
            shown = d.find_elements(By.CSS_SELECTOR, "#hand-history li")
            assert len(shown) == len(record["history"])
            d.find_element(By.CSS_SELECTOR, "#bidbox button.next").click()
            clicks["next"] += 1
        _wait(
            d,
            f"the bots after a {state}",
            lambda drv, before=before: table.get_attribute("data-n-actions") != before and _state(drv),
        )
    assert _state(d) == "done"
    d.save_screenshot(str(ARTIFACTS / "serve_fullgame_final.png"))
    record = httpx.get(f"{server}/v1/full-games/{game_id}", timeout=TIMEOUT).json()
    replay_game(record)
    assert record["target"] == 2 and record["bots"] == {str(s): f"{bidder}+heuristic" for s in (1, 2, 3)}
    result = d.find_element(By.ID, "result")
    assert result.is_displayed() and record["result"]["summary"] in result.text
    assert [int(result.get_attribute("data-marks0")), int(result.get_attribute("data-marks1"))] == record["marks"]
    assert [int(text("marks-0")), int(text("marks-1"))] == record["marks"]
    mine = [b["bid"] for h in record["history"] for b in h["bids"] if b["seat"] == 0]
    assert mine == my_bids, "the bids clicked are the bids the server recorded"
    mine_played = [dom for h in record["history"] if not h["redeal"] for s, dom in h["plays"] if s == 0]
    assert len(mine_played) == clicks["play"] == 7 * record["result"]["hands_played"]
    assert clicks["bid"] >= 1 and clicks["declare"] >= 1 and clicks["next"] == record["result"]["hands_played"] - 1
    for shot in ("serve_fullgame_auction.png", "serve_fullgame_final.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000
