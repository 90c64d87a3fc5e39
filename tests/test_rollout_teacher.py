"""The rollout teacher (issue 36): its labels recomputed independently (rollouts played move by move, the solver's
own move values), every move legal, the solver teacher's example layout, worlds weighted by the network's
likelihood of the other seats' plays, all games' rollouts sharing each forward, the solver-to-rollout schedule, and
a worker's rollout batch uploaded, ingested and trained on by a learner."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import random_plays
from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import N_PLAYS, GameState
from zeb_core.game.encoding import PLAY_OFFSET
from zeb_core.mcts.config import SearchConfig
from zeb_core.mcts.worlds import sample_worlds
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.players.inference import play_log_likelihood
from zeb_core.players.rollout import ROWS_PER_CHUNK
from zeb_core.selfplay.batch import SelfPlayBatch
from zeb_core.selfplay.rollout_teacher import final_values, play_rollout_selfplay, weighted_worlds
from zeb_core.selfplay.solver_teacher import play_solver_selfplay
from zeb_core.solver import solve_points, warm_up

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py
ROLLOUT = SearchConfig(teacher="rollout", worlds=2, solve_plays=12)


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


@pytest.fixture(scope="module")
def model() -> ZebNet:
    torch.manual_seed(3)
    return ZebNet(ModelConfig.preset("small")).eval()


def replay_games(batch: SelfPlayBatch, seed: int) -> list[GameState]:
    """The batch's games rebuilt from its examples, every move checked for legality: the deals are the seed's
    benchmark deals, the move of step t is the play token t of step t + 1's observation (the last one is forced).
    Returns the state before each of the 28 steps."""
    games = batch.games
    assert batch.examples == N_PLAYS * games, "every position of every game is an example, step by step"
    state = deal_benchmark(games, make_generator(seed))
    states = []
    for t in range(N_PLAYS):
        states.append(state.clone())
        legal = state.legal_mask()
        if t + 1 < N_PLAYS:
            moves = batch.obs[(t + 1) * games : (t + 2) * games, PLAY_OFFSET + t, 1].long() - 1
        else:
            assert bool((legal.sum(1) == 1).all())
            moves = legal.float().argmax(1)
        assert bool(legal[torch.arange(games), moves].all()), f"an illegal move at step {t}"
        state.apply(moves, check=True)
    assert bool(state.done().all())
    return states


def greedy_rollout_value(model: ZebNet, state: GameState, g: int, move: int, solve_plays: int) -> float:
    """Game g's move played out in its true deal by the greedy policy, seat by seat, one position at a time, until
    `solve_plays` plays are left, then solved: the mover's benchmark result (+1 / 0 / -1)."""
    policy = PolicyPlayer(model, torch.device("cpu"))
    s = state.index(torch.tensor([g]))
    team = int(s.current[0]) % 2
    s.apply(torch.tensor([move]), check=True)
    while N_PLAYS - int(s.n_plays[0]) > solve_plays:
        s.apply(policy.decide(s, s.legal_mask(), torch.tensor([0])).moves, check=True)
    mine = int(solve_points(s)[0, team])
    return 1.0 if mine > 21 else 0.0 if mine == 21 else -1.0


def test_labels_are_the_networks_rollouts_replayed_move_by_move(model: ZebNet) -> None:
    """One world (the true deal): each label of a choice is the rollout of that move by the greedy policy,
    recomputed here one game, one move and one play at a time with the engine checking every move, and the solver's
    exact finish; a forced move keeps the solver teacher's label, the true deal solved at once."""
    config = replace(ROLLOUT, worlds=1, solve_plays=12)
    batch = play_rollout_selfplay(model, 3, config, seed=11)
    states = replay_games(batch, seed=11)
    checked = 0
    for t in (1, 8, 15, 22):
        state = states[t]
        legal = state.legal_mask()
        for g in range(3):
            row = t * 3 + g
            hand = state.hand_of(state.current)[g]
            choice = bool(legal[g].sum() > 1)
            for slot in range(7):
                if bool(batch.legal[row, slot]):
                    solve_plays = config.solve_plays if choice else N_PLAYS
                    want = greedy_rollout_value(model, state, g, int(hand[slot]), solve_plays)
                    assert float(batch.q[row, slot]) == pytest.approx(want, abs=1e-6), (t, g, slot)
                    checked += int(choice)
                else:
                    assert float(batch.q[row, slot]) == 0.0
            assert float(batch.value[row]) == pytest.approx(float(batch.q[row][batch.legal[row]].max()))
    assert checked >= 10


def test_every_move_is_legal_and_the_batch_is_laid_out_like_the_solver_teachers(model: ZebNet) -> None:
    """The same seed plays the same games whoever labels them (the labels never steer the moves), with the solver
    teacher's shapes, dtypes and targets: policy softmax(4 q) over the legal slots, value the best q."""
    config = replace(ROLLOUT, worlds=2, rollout_candidates=2)
    batch = play_rollout_selfplay(model, 4, config, seed=5)
    solver = play_solver_selfplay(model, 4, replace(config, teacher="solver"), seed=5)
    replay_games(batch, seed=5)
    assert batch.q is not None and solver.q is not None
    for name in ("obs", "legal", "policy", "value", "q"):
        got, want = getattr(batch, name), getattr(solver, name)
        assert (got.shape, got.dtype) == (want.shape, want.dtype), name
    assert torch.equal(batch.obs, solver.obs) and torch.equal(batch.legal, solver.legal)
    assert bool((batch.q[~batch.legal] == 0).all()) and bool((batch.q.abs() <= 1).all())
    assert torch.allclose((batch.policy * batch.legal).sum(1), torch.ones(batch.examples), atol=1e-5)
    assert bool((batch.policy[~batch.legal] == 0).all())
    best = torch.where(batch.legal, batch.q, float("-inf")).max(1).values
    assert torch.equal(batch.value, best)
    searched = int((batch.legal.sum(1) > 1).sum())
    assert batch.stats["rollout_positions"] == searched > 0 and batch.stats["teacher"] == "rollout"
    assert not torch.equal(batch.q, solver.q), "rollouts are not pimc"
    # the time in the network counts the rollouts' and the likelihoods' forwards, not only the moves'
    assert batch.stats["forward_seconds"] > 3 * solver.stats["forward_seconds"]
    assert batch.stats["forward_share"] == pytest.approx(batch.stats["forward_seconds"] / batch.seconds)


@pytest.mark.parametrize("target", ["points", "points-margin", "contract", "contract-sign"])
def test_with_the_solver_finishing_every_rollout_the_labels_are_the_solver_teachers(model: ZebNet, target: str) -> None:
    """solve_plays=28 (no network play) and uniform worlds: the same worlds as the solver teacher, so the same move
    values on every value target, which is what lets the two teachers' labels mix. rollout_share=0: the solver
    teacher's labels exactly, with any solve_plays."""
    config = SearchConfig(teacher="rollout", worlds=3, solve_plays=28, rollout_candidates=1, value_target=target)
    solver = play_solver_selfplay(model, 2, replace(config, teacher="solver"), seed=7)
    rollout = play_rollout_selfplay(model, 2, config, seed=7)
    assert rollout.q is not None and solver.q is not None
    assert torch.allclose(rollout.q, solver.q, atol=1e-6)
    assert torch.allclose(rollout.value, solver.value, atol=1e-6)
    if target == "points":
        none = play_rollout_selfplay(model, 2, replace(config, solve_plays=12, rollout_share=0.0), seed=7)
        assert none.q is not None and torch.equal(none.q, solver.q) and none.stats["rollout_positions"] == 0
        half = play_rollout_selfplay(model, 2, replace(config, solve_plays=12, rollout_share=0.5), seed=7)
        searched = int((half.legal.sum(1) > 1).sum())
        assert 0.25 * searched < half.stats["rollout_positions"] < 0.75 * searched


@pytest.mark.parametrize("target", ["points", "points-margin", "contract", "contract-sign"])
def test_a_rollouts_final_points_score_what_the_engine_scores(target: str) -> None:
    """Every final tally (the mover's team 0..42 points), bid and side: the rollout's value is the engine's own
    training value of that finished hand for the mover's seat (GameState.target_values)."""
    mine = np.repeat(np.arange(43), 3 * 4)
    bid = np.tile(np.repeat([30, 35, 42], 4), 43)
    seats = np.tile(np.arange(4), 43 * 3)  # the bidder's seat; the mover is seat 0
    state = deal_benchmark(len(mine), make_generator(0))
    state.team_points = torch.as_tensor(np.stack([mine, 42 - mine], 1), dtype=state.team_points.dtype)
    state.bid = torch.as_tensor(bid, dtype=state.bid.dtype)
    state.bidder = torch.as_tensor(seats, dtype=state.bidder.dtype)
    want = state.target_values(target)[:, 0].double().numpy()
    got = final_values(mine, seats % 2 == 0, bid.astype(np.float64), target)
    assert np.allclose(got, want, atol=1e-6)


def test_the_full_games_hands_are_labelled_for_their_contract(model: ZebNet) -> None:
    """The full game hands the teacher its dealt and bid hands (`state`) with a contract target and worlds weighted
    by the auction too: the same games as the solver teacher, labels of their contract (+1 / -1)."""
    from zeb_core.fullgame.game import random_deals

    deals = random_deals(3, torch.Generator().manual_seed(8))
    fresh = GameState.from_deal(deals, torch.full((3,), 6), torch.full((3,), 2), torch.full((3,), 31))
    config = SearchConfig(teacher="rollout", worlds=3, value_target="contract-sign", auction_worlds=True,
                          rollout_candidates=2, solve_plays=16)  # fmt: skip
    batch = play_rollout_selfplay(model, 0, config, seed=2, state=fresh)
    solver = play_solver_selfplay(model, 0, replace(config, teacher="solver"), seed=2, state=fresh)
    assert torch.equal(batch.obs, solver.obs) and batch.games == 3 and batch.q is not None
    ends = (batch.q[batch.legal] * config.worlds).round()  # a mean of 3 worlds' +1 / -1
    assert bool((ends.abs() <= 3).all()) and bool((ends % 2 != 0).all())
    assert batch.stats["rollout_positions"] > 0


def test_worlds_are_the_true_deal_and_draws_weighted_by_the_other_seats_plays(model: ZebNet) -> None:
    """World 0 is the true deal; the others agree with what the mover knows and, drawn from 6 candidates each in
    proportion to the network's likelihood of the other seats' plays (sharpened: temperature 0.1), are far likelier
    than uniform worlds. One candidate per world: the uniform draws themselves."""
    gen = make_generator(4)
    state = deal_benchmark(6, gen)
    random_plays(state, 9, gen)
    games, w = torch.arange(6), 5
    config = SearchConfig(teacher="rollout", rollout_candidates=6, temperature=0.1)
    worlds = weighted_worlds(model, state, games, w, config, random.Random(2))
    rows = games.repeat_interleave(w)
    truth = state.index(rows)
    assert torch.equal(worlds.owner[::w], state.owner) and torch.equal(worlds.hands[::w], state.hands)
    known = truth.played | (truth.owner == truth.current.view(-1, 1))  # public, or the mover's own
    assert torch.equal(worlds.owner[known], truth.owner[known])
    for s in range(4):
        assert bool(((worlds.owner == s).sum(1) == 7).all()), "every seat was dealt 7"
    scored = torch.arange(4).view(1, -1) != worlds.current.view(-1, 1)
    kept = play_log_likelihood(model, worlds, scored, floor=0.05, sharpen=10.0).view(6, w)[:, 1:]
    uniform = sample_worlds(state, games, 24, random.Random(9))
    scored_u = torch.arange(4).view(1, -1) != uniform.current.view(-1, 1)
    base = play_log_likelihood(model, uniform, scored_u, floor=0.05, sharpen=10.0).view(6, 24)
    assert float(kept.mean() - base.mean()) > 1.0
    assert int((kept.mean(1) > base.mean(1)).sum()) >= 5
    flat = weighted_worlds(model, state, games, w, replace(config, rollout_candidates=1), random.Random(2))
    draws = sample_worlds(state, games, w - 1, random.Random(2))
    assert torch.equal(flat.owner.view(6, w, 28)[:, 1:].reshape(-1, 28), draws.owner)


def test_posterior_labels_are_the_exact_values_averaged_over_the_weighted_worlds(model: ZebNet) -> None:
    """teacher=posterior: each non-forced label is the mean, over the true deal and the draws weighted by the
    network's likelihood of the other seats' plays (search_worlds with the labeller's random stream), of every
    world's exact result, recomputed here one world and one move at a time (solve_points on the engine's own
    state); a forced position keeps the true deal's value. No rollouts; the games are the solver teacher's."""
    from zeb_core.selfplay.rollout_teacher import search_worlds

    config = SearchConfig(teacher="posterior", worlds=3, rollout_candidates=3, solve_plays=12)
    batch = play_rollout_selfplay(model, 2, config, seed=13)
    solver = play_solver_selfplay(model, 2, replace(config, teacher="solver"), seed=13)
    assert batch.q is not None and torch.equal(batch.obs, solver.obs)
    assert batch.stats["teacher"] == "posterior" and batch.stats["rollout_positions"] == 0
    states = replay_games(batch, seed=13)
    steps = [(t, (s.legal_mask().sum(1) > 1).nonzero().flatten()) for t, s in enumerate(states)]
    steps = [(t, g) for t, g in steps if g.numel()]
    worlds = search_worlds(model, [(states[t], g) for t, g in steps], 3, config, random.Random(13))
    checked = 0
    for (t, games), w in zip(steps, worlds, strict=True):
        for i, g in enumerate(games.tolist()):
            row, hand = t * 2 + g, states[t].hand_of(states[t].current)[g]
            block = w.index(torch.arange(i * 3, i * 3 + 3))
            assert torch.equal(block.owner[0], states[t].owner[g]), "world 0 is the true deal"
            for slot in range(7):
                if not bool(batch.legal[row, slot]):
                    continue
                results = []
                for k in range(3):
                    s = block.index(torch.tensor([k]))
                    team = int(s.current[0]) % 2
                    s.apply(hand[slot].view(1), check=True)
                    mine = int(solve_points(s)[0, team]) if not bool(s.done()[0]) else int(s.team_points[0, team])
                    results.append(1.0 if mine > 21 else 0.0 if mine == 21 else -1.0)
                assert float(batch.q[row, slot]) == pytest.approx(sum(results) / 3, abs=1e-6), (t, g, slot)
                checked += 1
    assert checked >= 20
    forced = batch.legal.sum(1) == 1
    assert torch.equal(batch.q[forced], solver.q[forced]), "a forced move: the true deal's value, as the solver's"
    weighted_rollouts = play_rollout_selfplay(model, 2, replace(config, teacher="rollout", rollout_share=0.0), seed=13)
    assert torch.equal(weighted_rollouts.q, batch.q), "the rollout teacher's solver share uses the same worlds"


def test_the_likelihood_evaluates_each_distinct_observation_once(model: ZebNet) -> None:
    """Late in a hand many worlds give a seat the same hand: `distinct=True` forwards each replayed observation
    once, for the same log-likelihoods."""
    gen = make_generator(6)
    state = deal_benchmark(3, gen)
    random_plays(state, 21, gen)
    pool = sample_worlds(state, torch.arange(3), 16, random.Random(1))
    scored = torch.arange(4).view(1, -1) != pool.current.view(-1, 1)
    rows: list[int] = []
    handle = model.register_forward_hook(lambda _m, args, _out: rows.append(int(args[0].shape[0])))
    try:
        every = play_log_likelihood(model, pool, scored, sharpen=2.0)
        counted = sum(rows)
        once = play_log_likelihood(model, pool, scored, sharpen=2.0, distinct=True)
    finally:
        handle.remove()
    assert torch.allclose(every, once, atol=1e-5)
    assert sum(rows) - counted < counted / 2


def _forward_count(model: ZebNet, games: int, config: SearchConfig) -> tuple[int, SelfPlayBatch]:
    calls = [0]
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        batch = play_rollout_selfplay(model, games, config, seed=3)
    finally:
        handle.remove()
    return calls[0], batch


def test_the_rollouts_of_every_position_share_one_forward_per_play(model: ZebNet) -> None:
    """Network calls do not grow with the games or positions of a batch: one forward per step picks every game's
    move; the games over, one forward per rollout play serves every (position, move, world) of the batch (as many
    as the longest rollout needs), and the likelihood of every position's candidate worlds is one replay, one
    forward per replayed play (as many as the latest position has plays)."""
    config = replace(ROLLOUT, worlds=2, solve_plays=20, rollout_candidates=1)
    for games in (2, 4):
        calls, batch = _forward_count(model, games, config)
        choice = [t for t in range(N_PLAYS) if bool((batch.legal[t * games : (t + 1) * games].sum(1) > 1).any())]
        longest = max(N_PLAYS - t - 1 - config.solve_plays for t in choice)
        assert batch.stats["rollout_rows"] <= ROWS_PER_CHUNK  # one run of rows
        assert calls == N_PLAYS + longest, games
        weighed, _ = _forward_count(model, games, replace(config, rollout_candidates=2))
        assert calls < weighed <= calls + max(choice), games


def test_the_schedule_hands_over_from_the_solver_to_rollouts_at_the_games_threshold(model: ZebNet) -> None:
    from zeb_core.mcts.evaluator import Evaluator
    from zeb_core.selfplay.games import play_selfplay

    schedule = SearchConfig(teacher="schedule", handover_games=500, worlds=2, solve_plays=20, rollout_candidates=1)
    assert [schedule.active_teacher(n) for n in (0, 499, 500, 10**6)] == ["solver", "solver", "rollout", "rollout"]
    assert SearchConfig().handover_games == 15_000 and SearchConfig(teacher="rollout").active_teacher(0) == "rollout"
    assert SearchConfig(teacher="solver").active_teacher(10**6) == "solver"
    to_posterior = replace(schedule, handover_teacher="posterior")
    assert [to_posterior.active_teacher(n) for n in (499, 500)] == ["solver", "posterior"]
    evaluator = Evaluator(model, "cpu")
    early = play_selfplay(evaluator, 2, schedule, seed=1, trained_games=499)
    late = play_selfplay(evaluator, 2, schedule, seed=1, trained_games=500)
    assert early.stats["teacher"] == "solver" and late.stats["teacher"] == "rollout"
    assert early.q is not None and torch.equal(early.q, play_solver_selfplay(model, 2, schedule, seed=1).q)
    for bad in (
        {"teacher": "oracle"},
        {"rollout_share": 1.5},
        {"rollout_share": -0.1},
        {"rollout_candidates": 0},
        {"handover_games": -1},
        {"handover_teacher": "mcts"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SearchConfig(**bad)  # type: ignore[arg-type]


def test_a_workers_rollout_batch_is_uploaded_ingested_and_trained_on(tmp_path: Path) -> None:
    """teacher=schedule end to end: the worker labels with the solver while the learner's weights were trained on
    fewer than handover_games games, with rollouts once a push says more; the learner ingests that batch (its q
    values in the replay buffer) and trains on it."""
    from zeb_core.formats.examples import decode_examples
    from zeb_core.learn.learner import Learner, LearnerSettings
    from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings
    from zeb_core.store import open_store

    url = f"file://{tmp_path / 'store'}"
    learner = Learner(
        LearnerSettings(store=url, size="small", min_buffer_size=100, training_steps_per_cycle=2, batch_size=32,
                        replay_buffer_size=1000, device="cpu", promote=False, learner_id="learner-T")
    )  # fmt: skip
    learner.start()
    try:
        search = SearchConfig(teacher="schedule", handover_games=4, worlds=2, solve_plays=16)
        worker = SelfPlayWorker(
            WorkerSettings(store=url, device="cpu", games_per_batch=4, seed=2, worker_id="w-rt",
                           outbox=str(tmp_path / "outbox"), search=search)
        )  # fmt: skip
        reports, trained = [], []
        for _ in range(2):
            worker.refresh_weights()  # the learner's newest push: its weights and the games they were trained on
            _path, report = worker.generate()
            reports.append(worker.upload(report))
            assert learner.ingest()["files"] == 1
            before = {k: v.clone() for k, v in learner.model.state_dict().items()}
            trained.append(learner.train())
            assert any(not torch.equal(v, learner.model.state_dict()[k]) for k, v in before.items())
            assert learner.push()
        assert [r.teacher for r in reports] == ["solver", "rollout"]
        assert worker.trained_games == 4 and learner.total_games == 8
        store = open_store(url)
        files = {decode_examples(store.examples.read(r.uploaded)).manifest["settings"]["active_teacher"]: r.uploaded
                 for r in reports}  # fmt: skip
        assert set(files) == {"solver", "rollout"}
        rollout = decode_examples(store.examples.read(files["rollout"]))
        assert rollout.q is not None and rollout.examples == 4 * N_PLAYS
        assert torch.equal(learner.buffer.q[rollout.examples : 2 * rollout.examples], rollout.q)
        assert all(m is not None and np.isfinite(m["train/q_loss"]) for m in trained)
    finally:
        learner.close(push=False)


def test_the_worker_settings_and_commands_take_the_teacher(tmp_path: Path) -> None:
    """prefect.yaml's worker `settings.search`, `zeb worker`'s options and `zeb train --teacher` take the new
    teachers and their settings; a teacher that does not exist is a clear error before anything starts."""
    import typer.main
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from zeb_cli.main import app
    from zeb_core.selfplay.worker import WorkerSettings

    search = {"teacher": "schedule", "worlds": 8, "handover_games": 15_000, "rollout_share": 0.5}
    settings = WorkerSettings.model_validate({"store": "file:///x", "search": {**search, "rollout_candidates": 2}})
    assert settings.search.active_teacher(15_000) == "rollout" and settings.search.rollout_candidates == 2
    with pytest.raises(ValidationError, match="teacher must be one of"):
        WorkerSettings.model_validate({"store": "file:///x", "search": {"teacher": "oracle"}})
    worker = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    options = {p.name for p in worker.params}
    assert {
        "teacher",
        "rollout_share",
        "rollout_candidates",
        "handover_games",
        "handover_teacher",
        "solve_plays",
    } <= options
    runs = tmp_path / "runs"
    bad = CliRunner().invoke(app, ["train", "--name", "t", "--runs-dir", str(runs), "--teacher", "oracle"])
    assert bad.exit_code == 2 and "teacher must be one of mcts, solver, posterior, rollout, schedule" in bad.output
    assert not runs.exists()
