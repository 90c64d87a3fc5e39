"""`zeb train`, the README's main command: a short run end to end (learner and worker processes, budget, report),
continuing the same run, and one `zeb train` per run folder."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.prefect_server import MARKER_VAR, processes_with_marker
from zeb_cli.train_presets import TINY_TRAIN_FLAGS, with_flag
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.players.base import make_player

pytestmark = pytest.mark.usefixtures("no_orphans")  # zeb train children left by a timeout are killed
ZEB = str(Path(sys.executable).with_name("zeb"))
TINY = [*with_flag(TINY_TRAIN_FLAGS, "--final-eval-games", "40"), "--device", "cpu"]


def _train(runs: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [ZEB, "train", "--name", "t", "--runs-dir", str(runs), "--games", "96", *TINY, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _state(runs: Path) -> dict:
    return json.loads((runs / "t" / "weights" / "model-state.json").read_text())


@pytest.mark.long
def test_zeb_train_runs_reports_and_continues(tmp_path: Path) -> None:
    first = _train(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "final evaluation" in first.stdout and "random" in first.stdout and "heuristic" in first.stdout
    assert "strongest weights (" in first.stdout
    assert "pimc:worlds=16" in first.stdout, "the report measures the strongest against the exact-solver expert too"
    assert (tmp_path / "t" / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = _state(tmp_path)
    assert state["total_games"] >= 96 and state["step"] > 0
    assert not list((tmp_path / "t" / "outbox").glob("**/*.safetensors")), "every batch was uploaded"

    second = _train(tmp_path)  # the budget counts games of this invocation: it continues, it does not restart
    assert second.returncode == 0, second.stdout + second.stderr
    assert "continuing from step" in second.stderr
    again = _state(tmp_path)
    assert again["step"] > state["step"] and again["total_games"] >= state["total_games"] + 96


@pytest.mark.long
def test_zeb_train_full_game_reports_full_games_and_a_servable_bot(tmp_path: Path) -> None:
    result = _train(
        tmp_path, "--full-game", "--games", "32", "--bid-hands-per-batch", "16", "--full-game-eval-games", "4"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "full games to 7 marks" in result.stdout and "baseline+heuristic" in result.stdout
    play = re.search(r"play it: +zeb serve --player (\S+) --bidder (\S+)", result.stdout)
    assert play, result.stdout
    assert re.search(r"match it: +zeb eval net:path=\S+ vs baseline\+heuristic --full-game --games 200", result.stdout)
    player_spec, bidder_spec = play.groups()
    assert player_spec.startswith("rollout:path=") and bidder_spec.startswith("net:path=")  # the strongest play
    player, bidder = make_player(player_spec), make_bidder(bidder_spec)  # what `zeb serve` builds from them
    assert player.name and bidder.name.startswith("net:")
    assert (tmp_path / "t" / "weights" / "model-bid.safetensors").exists()


def test_a_second_zeb_train_on_the_same_run_refuses(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    with open(tmp_path / "t" / ".zeb-train.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running `zeb train` (or its orphans) holds
        result = _train(tmp_path, timeout=120)
    assert result.returncode == 2
    assert "still running" in result.stderr
    assert not (tmp_path / "t" / "weights").exists(), "nothing was started"


@pytest.mark.long
def test_ctrl_c_stops_everything_cleanly_and_leaves_nothing_behind(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex  # on every process zeb train starts: learner, worker, the run's Prefect server
    env = {**os.environ, "COLUMNS": "200", MARKER_VAR: marker}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [ZEB, "train", "--name", "t", "--runs-dir", str(tmp_path), "--minutes", "30", *TINY, "--teacher", "mcts"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 400
        state_file = tmp_path / "t" / "weights" / "model-state.json"
        while not (state_file.exists() and json.loads(state_file.read_text()).get("step", 0) >= 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training never pushed"
            time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "stopping" in err and "final evaluation" in out and "stopped early by Ctrl-C" in out
    lease = json.loads((tmp_path / "t" / "weights" / "model-lease.json").read_text())
    assert lease["holder"] is None, "the learner released its lease"
    assert not list((tmp_path / "t" / "outbox").glob("**/*.safetensors")), "every finished batch was uploaded"
    with open(tmp_path / "t" / ".zeb-train.lock") as lock:  # no learner or worker is left holding the run
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert "Prefect UI:" in err, "the run had its own Prefect server"
    assert not processes_with_marker(marker), "no learner, worker or Prefect server is left running"


def test_bad_flags_get_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    for flags, message in (
        (["--policy-target", "best"], "policy_target must be visits or improved"),
        (["--sims", "0"], "simulations must be >= 1"),
        (["--minutes", "-1"], "must be positive"),
        (["--full-game", "--bid-hands-per-batch", "0"], "bid hands per batch must be >= 1"),  # WorkerSettings
        (["--eval-games", "0"], "--eval-games must be >= 1"),  # LearnerSettings
        (["--full-game", "--bid-replay-ratio", "0"], "--bid-replay-ratio must be > 0"),
        (["--teacher", "schedule", "--rollout-share", "2"], "rollout_share must be in [0, 1]"),  # SearchConfig
        (["--teacher", "rollout", "--rollout-candidates", "0"], "rollout_candidates must be >= 1"),
    ):
        result = subprocess.run(
            [ZEB, "train", "--name", "t", "--runs-dir", str(tmp_path), *flags],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "t").exists()
