"""The web page in a real headless Chromium: deal a seeded hand, play it by clicking legal dominoes, and check the
points the page shows against the engine replaying the same moves. Chromium comes from tests/browser_setup.sh.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.browser import headless_chromium
from zeb_core.engine import GameState, deal_benchmark, domino_name, make_generator

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
SEED = 4242
TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import uvicorn

    from zeb_core.serve.app import create_app

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium("--window-size=1400,1200", timeout_s=TIMEOUT) as driver:
        yield driver


def _wait(driver: object, what: str, cond: object) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(cond)
    except Exception:  # noqa: BLE001 - say what we waited for, with the page's status line
        status = driver.find_element("id", "status").text
        raise AssertionError(f"timed out waiting for {what}; page status: {status!r}") from None


def _ready(driver: object) -> str | bool:
    state = driver.find_element("tag name", "body").get_attribute("data-state")
    return state if state in ("your-turn", "done") else False


def _deal_seeded(
    d: Any, partner: str, opponents: str, boxes: dict[str, int], what: str, ready: Callable[[Any], object]
) -> tuple[Any, str]:
    """Pick the bots, fill the number boxes (`seed` among them), click Deal and wait until the page shows that
    seed's game and `ready` holds; the table element and the game's id."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(d.find_element(By.ID, "partner")).select_by_value(partner)
    Select(d.find_element(By.ID, "opponents")).select_by_value(opponents)
    for box_id, value in boxes.items():
        box = d.find_element(By.ID, box_id)
        box.clear()
        box.send_keys(str(value))
    d.find_element(By.ID, "deal").click()
    table = d.find_element(By.ID, "table")
    seed = str(boxes["seed"])
    _wait(d, what, lambda drv: table.get_attribute("data-seed") == seed and ready(drv))
    return table, table.get_attribute("data-game-id")


def test_play_a_seeded_hand_in_the_browser(server: str, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = browser
    d.get(server + "/")
    _wait(d, "the first hand", _ready)
    opts = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#partner option")]
    assert {"random", "heuristic"} <= set(opts)

    table, game_id = _deal_seeded(d, "random", "heuristic", {"seed": SEED}, "the seeded deal", _ready)
    dealt = deal_benchmark(1, make_generator(SEED))
    shown_hand = [
        int(el.get_attribute("data-domino")) for el in d.find_elements(By.CSS_SELECTOR, "#hand [data-domino]")
    ]
    assert sorted(shown_hand) == sorted(dealt.hands[0, 0].tolist()), "the page shows seat 0's dealt hand"
    assert d.find_element(By.CSS_SELECTOR, "#contract .big").text == str(int(dealt.bid[0]))

    hand = d.find_elements(By.CSS_SELECTOR, "#hand [data-domino]")
    assert hand and all(el.find_elements(By.CSS_SELECTOR, "svg circle, svg rect") for el in hand), "dominoes are drawn"
    ARTIFACTS.mkdir(exist_ok=True)
    clicked: list[int] = []
    for turn in range(7):
        if turn == 3:
            thinking = d.find_elements(By.CSS_SELECTOR, "#log .thinking")
            assert thinking and not any(el.is_displayed() for el in thinking)
            d.find_element(By.ID, "show-thinking").click()
            assert all(el.is_displayed() for el in thinking), "the toggle shows the bots' policy"
            d.save_screenshot(str(ARTIFACTS / "serve_browser_midhand.png"))
        if _ready(d) == "done":
            break
        before = table.get_attribute("data-n-plays")
        legal = d.find_elements(By.CSS_SELECTOR, '#hand [data-legal="true"]')
        assert legal, "it is our turn, so some domino must be legal"
        illegal = d.find_elements(By.CSS_SELECTOR, '#hand [data-legal="false"]')
        assert all(not el.is_enabled() for el in illegal)
        pick = legal[-1]
        clicked.append(int(pick.get_attribute("data-domino")))
        if turn == 0:  # the keyboard: a digit focuses that domino, Enter plays it
            d.find_element(By.TAG_NAME, "body").send_keys(pick.get_attribute("data-index"))
            assert d.switch_to.active_element.get_attribute("data-domino") == str(clicked[-1])
            d.switch_to.active_element.send_keys(Keys.ENTER)
        else:
            pick.click()
        _wait(
            d,
            "the bots' replies",
            lambda drv, before=before: table.get_attribute("data-n-plays") != before and _ready(drv),
        )
    assert _ready(d) == "done"
    result = d.find_element(By.ID, "result")
    assert result.is_displayed() and d.find_element(By.ID, "replay").is_displayed()
    shown = [int(d.find_element(By.ID, f"team{t}-points").text) for t in (0, 1)]
    logged = [li.find_element(By.CSS_SELECTOR, ".nm").text for li in d.find_elements(By.CSS_SELECTOR, "#log li")]

    d.save_screenshot(str(ARTIFACTS / "serve_browser_final.png"))
    for shot in ("serve_browser_midhand.png", "serve_browser_final.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000

    # The moves as the server recorded them, replayed by the engine on the same seeded deal.
    import httpx

    record = httpx.get(f"{server}/v1/games/{game_id}", timeout=TIMEOUT).json()
    assert record["bots"] == {"1": "heuristic", "2": "random", "3": "heuristic"}
    moves = [p["domino"] for p in record["plays"]]
    assert len(moves) == 28
    assert [p["domino"] for p in record["plays"] if p["seat"] == 0] == clicked
    replay = GameState.from_deal(dealt.hands, dealt.decl, dealt.bidder, dealt.bid, dealt.leader)
    for m in moves:
        replay.apply(torch.tensor([m]))
    assert logged == [domino_name(m) for m in moves], "the page's play log is the hand the engine replayed"
    expected = replay.team_points[0].tolist()
    assert shown == expected
    assert sum(shown) == 42
    made = bool(replay.contract_made()[0])
    assert result.find_element(By.ID, "result-contract").text == ("made" if made else "set")
