"""Prefect's API authentication on the servers Zeb starts (issue 35, item 13).

A Prefect server lets whoever reaches its API read the Secret blocks and run any deployment, so one that listens
beyond 127.0.0.1 must require PREFECT_SERVER_API_AUTH_STRING, and the processes it serves must send the same
string as PREFECT_API_AUTH_STRING. One real `prefect server start` (on 127.0.0.1, with a given auth string, as
`zeb train` starts it) checks that a request without the credential, or with a wrong one, is refused (401), that
a Prefect client with the children's setting works, and that the UI asks for the password.
"""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import httpx
import pytest
import typer

from tests.prefect_server import MARKER_VAR, kill_marked
from zeb_cli.prefect_server import AUTH_USER, LocalPrefectServer, is_loopback
from zeb_cli.train_cmd import _prefect


def _basic(auth: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def test_a_server_beyond_loopback_is_never_open_and_hands_its_password_to_its_clients(tmp_path: Path) -> None:
    """No server start: what a `zeb train --prefect-host 0.0.0.0` server would be started with."""
    wide = LocalPrefectServer(tmp_path / "wide", port=4999, host="0.0.0.0")
    assert wide.auth_string and wide.auth_string.startswith(f"{AUTH_USER}:") and len(wide.auth_string) > 30
    assert LocalPrefectServer(tmp_path / "other", port=4999, host="0.0.0.0").auth_string != wide.auth_string
    env = wide.env({})
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == env["PREFECT_API_AUTH_STRING"] == wide.auth_string
    assert env["PREFECT_SERVER_API_HOST"] == "0.0.0.0"
    assert wide.api_url == "http://127.0.0.1:4999/api", "its own processes reach it on loopback"
    assert env["PREFECT_UI_API_URL"] == f"{wide.ui_url}/api" and "0.0.0.0" not in wide.ui_url
    given = LocalPrefectServer(tmp_path / "given", port=4999, host="10.1.2.3", auth_string="ops:s3cret")
    assert given.auth_string == "ops:s3cret" and given.ui_url == "http://10.1.2.3:4999"
    assert given.api_url == "http://10.1.2.3:4999/api"

    local = LocalPrefectServer(tmp_path / "local", port=4999)
    assert local.auth_string is None and "PREFECT_SERVER_API_AUTH_STRING" not in local.env({})
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3", "gpu-box")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_the_api_refuses_requests_without_the_password_and_the_children_setting_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    marker = uuid.uuid4().hex
    auth = f"ops:{uuid.uuid4().hex}"
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", auth)  # given: `zeb train` uses it rather than a new one
    run = tmp_path / "run"
    env = {**os.environ, MARKER_VAR: marker}
    server, ui, _ = _prefect(run, env, -1, 120.0)
    try:
        assert server is not None and server.owned and ui == server.ui_url
        # what zeb train gives its learner and workers
        assert env["PREFECT_API_URL"] == server.api_url and env["PREFECT_API_AUTH_STRING"] == auth
        said = capsys.readouterr().err
        assert "requires a password" in said and auth in said

        api = server.api_url
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200, "probes need no password"
        assert httpx.post(f"{api}/flows/filter", json={}, timeout=10).status_code == 401
        assert httpx.post(f"{api}/flows/filter", json={}, headers=_basic("ops:wrong"), timeout=10).status_code == 401
        assert httpx.post(f"{api}/block_documents/filter", json={}, timeout=10).status_code == 401
        assert httpx.post(f"{api}/flows/filter", json={}, headers=_basic(auth), timeout=10).status_code == 200
        settings = httpx.get(f"{server.ui_url}/ui-settings", timeout=10).json()
        assert settings["auth"] == "BASIC", "the UI asks for the password"

        # a Prefect client with the children's settings (PREFECT_API_URL + PREFECT_API_AUTH_STRING) works
        updates = {PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}
        with temporary_settings(updates=updates), get_client(sync_client=True) as client:
            flow_id = client.create_flow_from_name("zeb-auth-check")
            assert client.read_flow(flow_id).name == "zeb-auth-check"
        refused = pytest.raises(httpx.HTTPStatusError, match="401")
        with temporary_settings(updates={PREFECT_API_URL: api}), refused, get_client(sync_client=True) as client:
            client.create_flow_from_name("no-password")

        # the record keeps the password for a `zeb train` that finds this server, readable by this user only
        record = server.home / "server.json"
        assert stat.S_IMODE(record.stat().st_mode) == 0o600 and auth in record.read_text()
        again: dict[str, str] = {}
        reused, _, _ = _prefect(run, again, -1, 5.0)
        assert reused is not None and not reused.owned and again["PREFECT_API_AUTH_STRING"] == auth
        with pytest.raises(typer.Exit):  # asked for another address than the live server's: said, not ignored
            _prefect(run, {}, -1, 5.0, host="0.0.0.0")
        assert "is up already on 127.0.0.1" in capsys.readouterr().err
    finally:
        if server is not None:
            server.stop()
        left = kill_marked(marker)
    assert not left, "the server was stopped"
