"""Flows run on Prefect without a server (an ephemeral API in an isolated PREFECT_HOME)."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(300)
def test_evaluate_flow_runs_and_reports_matches() -> None:
    from flows.evaluate import evaluate

    results = evaluate(player="heuristic", opponents=["random"], games=400, seed=1)
    assert len(results) == 1
    assert results[0]["games"] == 400 and results[0]["player_b"] == "random"
    assert results[0]["ci_low"] > 0.5 and results[0]["avg_margin"] > 0, results[0]  # the heuristic beats random
    from zeb_core.evaluation.match import play_match
    from zeb_core.players import make_player

    direct = play_match(make_player("heuristic", "cpu", 1), make_player("random", "cpu", 2), 400, seed=1)
    assert (results[0]["win_rate"], results[0]["avg_margin"]) == (direct.win_rate, direct.avg_margin)


def test_zeb_core_never_imports_prefect() -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib, pkgutil, zeb_core\n"
        "for m in pkgutil.walk_packages(zeb_core.__path__, 'zeb_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('prefect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.timeout(300)
def test_credentials_come_from_prefect_secret_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from tasks.credentials import load_credentials

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    Secret(value="hf_secret_from_block").save("zeb-hf-token", overwrite=True)
    Secret(value="should-not-win").save("zeb-aws-access-key-id", overwrite=True)
    used = load_credentials()
    import os

    assert os.environ["HF_TOKEN"] == "hf_secret_from_block" and "zeb-hf-token" in used
    assert os.environ["AWS_ACCESS_KEY_ID"] == "from-env"  # the environment wins
    monkeypatch.delenv("HF_TOKEN")
