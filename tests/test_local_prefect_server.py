"""The run's local Prefect server (zeb_cli/prefect_server.py) and how `zeb train` picks its Prefect: a real
`prefect server start`, found again through its record by `zeb ui` and `zeb train`; one that fails (its port taken)
or is not healthy in time gives one clear sentence, leaves no process, and `zeb train` goes on without it; a
PREFECT_API_URL of the user's is used as it is."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer

from tests.prefect_server import MARKER_VAR, processes_with_marker
from zeb_cli.prefect_server import (
    LocalPrefectServer,
    PrefectServerError,
    free_port,
    healthy,
    standalone_api,
    ui_url_for,
)
from zeb_cli.train_cmd import _prefect

ZEB = str(Path(sys.executable).with_name("zeb"))


def _env(marker: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, MARKER_VAR: marker}


def test_ui_urls_follow_prefects_rule() -> None:
    assert ui_url_for("http://127.0.0.1:4321/api") == "http://127.0.0.1:4321"
    assert ui_url_for("https://prefect.example.org/api/") == "https://prefect.example.org"
    assert (
        ui_url_for("https://api.prefect.cloud/api/accounts/a1/workspaces/w2")
        == "https://app.prefect.cloud/account/a1/workspace/w2"
    )


def test_a_server_is_found_by_its_record_reused_and_stopped(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    home = tmp_path / "run" / "prefect" / "server"
    server = LocalPrefectServer(home)
    taken = LocalPrefectServer(tmp_path / "other", port=server.port)  # its /health is not the new one's
    server.start(base_env=_env(marker))
    try:
        assert healthy(server.api_url) and server.database.is_file()
        found = LocalPrefectServer.running(home)
        assert found is not None and found.port == server.port and not found.owned

        env: dict[str, str] = {}
        reused, ui, homes = _prefect(tmp_path / "run", env, -1, 5.0)  # zeb train beside a `zeb ui`: reuse it
        assert reused is not None and not reused.owned and ui == server.ui_url and homes
        assert env["PREFECT_API_URL"] == server.api_url

        shown = subprocess.run(
            [ZEB, "ui", "--name", "run", "--runs-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(marker),
        )
        assert shown.returncode == 0 and "its server is up already" in shown.stdout, shown.stdout + shown.stderr
        assert f"{server.ui_url}/runs" in shown.stdout

        with pytest.raises(PrefectServerError, match=f"port {server.port} on 127.0.0.1 is in use"):
            taken.start(timeout_s=120, base_env=_env(marker))
        assert not (tmp_path / "other").exists()
    finally:
        taken.stop()  # a no-op unless it started after all
        server.stop()
    assert not healthy(server.api_url)
    assert LocalPrefectServer.running(home) is None and not (home / "server.json").exists()
    assert not processes_with_marker(marker)


def test_a_server_that_exits_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    broken = {
        **_env(marker),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db",
    }
    server = LocalPrefectServer(tmp_path / "home")
    with pytest.raises(PrefectServerError, match=r"exited with \d+ \(.*unable to open database file.*\); see "):
        server.start(timeout_s=120, base_env=broken)
    assert server.proc is None and not processes_with_marker(marker)
    assert not (tmp_path / "home" / "server.json").exists()


def test_a_server_not_healthy_in_time_is_stopped_and_zeb_train_goes_on_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    marker = uuid.uuid4().hex
    env = _env(marker)
    server, ui, homes = _prefect(tmp_path / "run", env, -1, 0.5)
    assert (server, ui, homes) == (None, None, True) and "PREFECT_API_URL" not in env
    said = capsys.readouterr().err
    assert "no Prefect UI for this run" in said and "not healthy within 0.5s" in said
    assert "going on without a server" in said
    assert not processes_with_marker(marker), "the server that was too slow is stopped"


def test_a_users_prefect_api_url_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "https://api.prefect.cloud/api/accounts/a1/workspaces/w2")
    env: dict[str, str] = {}
    server, ui, homes = _prefect(tmp_path / "run", env, -1, 120.0)
    assert server is None and ui == "https://app.prefect.cloud/account/a1/workspace/w2"
    assert not homes, "the user's Prefect home (their profile, their key) stays"
    assert env["PREFECT_API_URL"] == os.environ["PREFECT_API_URL"]
    assert not (tmp_path / "run" / "prefect").exists(), "no server was started"


def test_a_users_prefect_api_url_that_does_not_answer_stops_zeb_train_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    with pytest.raises(typer.Exit) as stopped:
        _prefect(tmp_path / "run", {}, -1, 120.0)
    assert stopped.value.exit_code == 2 and "does not answer" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_zeb_ui_without_a_history_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [ZEB, "ui", "--name", "none", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2 and "has no Prefect history" in result.stderr, result.stderr
    assert not (tmp_path / "none").exists()


def test_a_standalone_command_whose_server_cannot_start_falls_back_to_prefects_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`zeb learner` / `zeb worker` with no API configured: when their own `prefect server start` cannot even be
    launched (no `prefect` beside this Python), they say so and go on with Prefect's temporary server."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("ZEB_PREFECT_TEMPORARY", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # no bin/prefect there
    said: list[str] = []
    with standalone_api("worker", said.append) as server:
        assert server is None
    assert said[0].startswith("starting a Prefect server for this worker")
    assert "no Prefect server of its own" in said[-1] and "Prefect's temporary one instead" in said[-1], said
