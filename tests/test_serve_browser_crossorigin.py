"""Issue 35 item 10 in a real headless Chromium: another site's page cannot drive `zeb serve` on 127.0.0.1, by
no-cors POSTs (text/plain, no body, a form) nor by DNS rebinding (its name pointed at 127.0.0.1, Chromium's
--host-resolver-rules); the server's own page still works, with a token too (item 12). Chromium comes from
tests/browser_setup.sh, as for tests/test_serve_browser.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.browser import headless_chromium
from tests.test_serve_browser import TIMEOUT, _ready, _wait
from tests.test_serve_guard import TOKEN, _games, _strict, serving

REBIND = "rebind.test"  # another site's name, pointed at 127.0.0.1 as a rebinding DNS server would

ATTACK_PAGE = """<!doctype html><title>attack</title>
<iframe name="sink"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="TARGET/v1/games">
  <input name='{"seed": 7, "x": "' value='"}'>
</form>
<script>
const target = "TARGET";
const shots = [
  fetch(target + "/v1/games", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                               body: JSON.stringify({seed: 7})}),
  fetch(target + "/v1/games", {method: "POST", mode: "no-cors"}),
  fetch(target + "/v1/full-games", {method: "POST", mode: "no-cors", body: "{}"}),
];
document.getElementById("form").submit();
Promise.allSettled(shots).then((r) => { document.title = "sent " + r.map((x) => x.status).join(","); });
</script>"""
SHOTS = 4  # three fetches and the form


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium that resolves REBIND to 127.0.0.1."""
    with headless_chromium(f"--host-resolver-rules=MAP {REBIND} 127.0.0.1", timeout_s=TIMEOUT) as driver:
        yield driver


@pytest.fixture(scope="module")
def zeb() -> Iterator[tuple[str, Any]]:
    """The server as `zeb serve --host 127.0.0.1` guards it."""
    with serving(_strict()) as served:
        yield served


@pytest.fixture
def attacker(zeb: tuple[str, Any]) -> Iterator[str]:
    """Another site: a plain HTTP server on 127.0.0.2 (another origin) whose page attacks the zeb server."""
    page = ATTACK_PAGE.replace("TARGET", zeb[0]).encode()
    hits: list[str] = []

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.2", 0), Page)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{srv.server_address[1]}/attack.html"
    finally:
        srv.shutdown()
        srv.server_close()
    assert hits, "Chromium never loaded the attacking page"


def _decision(driver: Any) -> bool:
    """The page shows a game at seat 0's decision (a bid, the declaration, a play) or its end."""
    state = driver.find_element("tag name", "body").get_attribute("data-state")
    return state in ("your-bid", "your-decl", "your-turn", "hand-over", "done")


def _fetch(driver: Any, path: str, body: str | None) -> list[Any]:
    """A fetch from the current page's origin, as its own script would: [status, text] (or ["failed", why])."""
    return driver.execute_async_script(
        """const [path, body, done] = arguments;
        const init = body === null ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body};
        fetch(path, init).then((r) => r.text().then((t) => done([r.status, t])))
          .catch((e) => done(["failed", String(e)]));
        """,
        path,
        body,
    )


def test_another_sites_page_cannot_drive_the_server(browser: Any, zeb: tuple[str, Any], attacker: str) -> None:
    """No-cors POSTs and a text/plain form from http://127.0.0.2:PORT reach the server and are refused by Origin
    (counted), and no game is made."""
    _, app = zeb
    games, refused = _games(app), app.state.refusals["origin"]
    browser.get(attacker)
    deadline = time.monotonic() + TIMEOUT
    while not browser.title.startswith("sent ") or app.state.refusals["origin"] + _games(app) < refused + games + SHOTS:
        assert time.monotonic() < deadline, f"the attack page's {SHOTS} requests did not all reach the server"
        time.sleep(0.05)
    assert _games(app) == games, "another site's page made a game"
    assert app.state.refusals["origin"] == refused + SHOTS, "each request reached the server and was refused"


def test_a_rebound_name_cannot_reach_or_read_the_server(browser: Any, zeb: tuple[str, Any]) -> None:
    """DNS rebinding: a page of rebind.test, whose name now points at 127.0.0.1, fetches its own origin; the
    server refuses that Host, so the page neither acts nor reads. The same script on the server's own page does
    both (the control)."""
    base, app = zeb
    port = base.rsplit(":", 1)[1]
    games = _games(app)
    browser.get(f"http://{REBIND}:{port}/")
    assert "does not answer to the Host 'rebind.test'" in browser.page_source
    for path, body in (("/v1/games", "{}"), ("/v1/players", None)):
        status, text = _fetch(browser, path, body)
        assert status == 400 and "Host" in text, (path, status, text)
    assert _games(app) == games, "a page of another name made a game"

    browser.get(base + "/")
    _wait(browser, "the page's first hand", _ready)
    games = _games(app)
    status, text = _fetch(browser, "/v1/games", '{"seed": 3}')
    assert status == 200 and '"seed":3' in text.replace(" ", ""), text
    assert _games(app) == games + 1


def test_the_page_works_with_a_token_given_once(browser: Any) -> None:
    """Item 12: /#token=TOKEN once; the page keeps it for the tab, sends it, and drops it from the address bar."""
    with serving(_strict(token=TOKEN)) as (base, app):
        browser.get(base + "/")
        _wait(browser, "the page's error", lambda d: "wants its token" in d.find_element("id", "status").text)
        games = _games(app)
        browser.get(f"{base}/?mode=game#token={TOKEN}")
        _wait(browser, "the first decision of a full game", _decision)
        assert browser.current_url == f"{base}/?mode=game", "the token left the address bar"
        assert _games(app) == games + 1
        browser.refresh()
        _wait(browser, "the page after a reload", _decision)
        assert _games(app) == games + 2
        assert httpx.get(f"{base}/v1/players", timeout=10).status_code == 401
