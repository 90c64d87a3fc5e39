"""The value target follows the measured objective: engine values, example manifests, the learner's refusal of
files labelled for another target, and the Q-head loss for per-move values."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import tied_hands
from zeb_core.engine.deal import deal_benchmark, make_generator
from zeb_core.engine.state import VALUE_TARGETS
from zeb_core.formats.examples import decode_examples, encode_examples
from zeb_core.formats.safe_io import FormatError
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.step import q_losses
from zeb_core.mcts.config import SearchConfig
from zeb_core.store import open_store


def _played_out(n: int = 256, seed: int = 3):
    gen = make_generator(seed, "cpu")
    state = deal_benchmark(n, gen, "cpu")
    while not bool(state.done().all()):
        legal = state.legal_mask()
        state.apply(torch.multinomial(legal.float() + 1e-9 * ~legal, 1, generator=gen).squeeze(1), check=True)
    return state


def test_points_target_has_the_sign_of_the_benchmark_result() -> None:
    state = _played_out()
    pts = state.team_points
    for target in ("points", "points-margin"):
        v = state.target_values(target)
        for seat in range(4):
            mine, theirs = pts[:, seat % 2], pts[:, 1 - seat % 2]
            assert torch.equal(torch.sign(v[:, seat]), torch.sign((mine - theirs).float()))
        assert bool((v.abs() <= 1).all())
    plain = state.target_values("points")
    assert set(plain.unique().tolist()) <= {-1.0, 0.0, 1.0}
    margin = state.target_values("points-margin")
    m0 = (pts[:, 0] - pts[:, 1]).float()
    won = m0 != 0
    assert torch.allclose(margin[won, 0].abs(), 0.5 + 0.5 * m0[won].abs() / 42)
    assert torch.equal(state.target_values("contract"), state.values())
    # The contract target disagrees with the benchmark's sign on a real share of random hands (spec: a third).
    disagree = (torch.sign(state.values()[:, 0]) != torch.sign(plain[:, 0])) & (plain[:, 0] != 0)
    assert 0.15 < float(disagree.float().mean()) < 0.5
    with pytest.raises(ValueError, match="unknown value target"):
        state.target_values("margin")


def test_a_hand_tied_at_21_21_is_worth_0_to_both_teams_on_the_points_objective() -> None:
    """Real tied hands, replayed move by move through the engine (each move checked): "points" and "points-margin"
    give every seat 0 and each team half a win; the contract targets still say whether the bid was made."""
    hands = tied_hands()
    assert len(hands) >= 3  # about one random hand in 500 ends 21-21
    for deal, plays in hands:
        state = deal.clone()
        for domino in plays:
            state.apply(torch.tensor([domino]), check=True)
        assert bool(state.done()[0]) and state.team_points[0].tolist() == [21, 21]
        for target in ("points", "points-margin"):
            assert state.target_values(target).tolist() == [[0.0] * 4], target
        assert state.team_wins().tolist() == [[0.5, 0.5]]
        made = 1.0 if bool(state.contract_made()[0]) else -1.0
        bidder_team = int(state.bidder[0]) % 2
        signs = [made if seat % 2 == bidder_team else -made for seat in range(4)]
        assert state.target_values("contract-sign").tolist() == [signs]


def test_search_config_checks_the_value_target_and_teacher() -> None:
    assert SearchConfig().value_target == "points"
    with pytest.raises(ValueError, match="value_target"):
        SearchConfig(value_target="bid")
    with pytest.raises(ValueError, match="teacher"):
        SearchConfig(teacher="oracle")
    assert SearchConfig(teacher="solver", value_target="contract").value_target == "contract"  # the full game


def _example_bytes(target: str, q: bool = False, n: int = 5, step: int = 0):
    obs = torch.zeros(n, 36, 8, dtype=torch.int8)
    obs[:, 0, 0] = 1
    legal = torch.zeros(n, 7, dtype=torch.bool)
    legal[:, :3] = True
    policy = legal.float() / 3
    value = torch.linspace(-1, 1, n) / (1 + step)
    qt = torch.where(legal, torch.tensor([1.0, -1.0, 0.0, 0, 0, 0, 0]), 0.0) if q else None
    return encode_examples(obs, legal, policy, value, model_step=0, worker_id="w1", games=1, value_target=target, q=qt)


def test_example_files_record_the_target_and_carry_q() -> None:
    data, manifest = _example_bytes("points", q=True)
    assert manifest["value_target"] == "points"
    ex = decode_examples(data)
    assert ex.value_target == "points" and ex.q is not None and ex.q.shape == (5, 7)
    plain = decode_examples(_example_bytes("contract")[0])
    assert plain.value_target == "contract" and plain.q is None
    with pytest.raises(FormatError, match="value_target"):
        _example_bytes("bid")
    bad_q = torch.ones(5, 7)  # nonzero on illegal slots
    with pytest.raises(FormatError, match="q targets"):
        encode_examples(
            torch.zeros(5, 36, 8, dtype=torch.int8),
            torch.eye(7, dtype=torch.bool)[:5],
            torch.eye(7)[:5],
            torch.zeros(5),
            model_step=0,
            worker_id="w",
            games=1,
            q=bad_q,
        )


def test_learner_refuses_and_counts_files_of_another_target(tmp_path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.ensure()
    for i, target in enumerate(("points", "contract", "points")):
        data, manifest = _example_bytes(target, q=target == "points", step=i)
        store.upload_examples(data, manifest)
    lrn = Learner(
        LearnerSettings(
            store=f"file://{tmp_path}",
            size="small",
            min_buffer_size=0,
            device="cpu",
            value_target="points",
            eval_games=2,
        )
    )
    lrn.start()
    try:
        lrn.ingest()
        assert len(lrn.buffer) == 10 and lrn.dropped_other_target == 5
        assert bool(lrn.buffer.has_q[:10].all())
        lrn.push()
    finally:
        lrn.close()
    state = store.peek_state()
    assert state["examples_dropped_other_target"] == 5 and state["value_target"] == "points"
    assert store.pull_weights().config["value_target"] == "points"
    with pytest.raises(ValueError, match="value-target"):
        LearnerSettings(store="file:///x", value_target="bid")


def test_q_loss_is_shift_invariant_and_zero_on_forced_rows() -> None:
    legal = torch.tensor([[True, True, True, False, False, False, False], [True] + [False] * 6])
    q = torch.tensor([[1.0, -1.0, 0.0, 0, 0, 0, 0], [0.5] + [0.0] * 6])
    logits = torch.where(legal, 4.0 * q + 3.0, float("-inf"))  # q_scale * q plus a constant: a perfect fit
    assert torch.allclose(q_losses(logits, legal, q, 4.0), torch.zeros(2))
    wrong = torch.where(legal, -4.0 * q, float("-inf"))
    loss = q_losses(wrong, legal, q, 4.0)
    assert float(loss[0]) > 0.5 and float(loss[1]) == 0.0


@pytest.mark.parametrize("target", VALUE_TARGETS)
def test_every_target_is_known_to_the_model_config(target: str) -> None:
    from zeb_core.model.config import ModelConfig

    assert ModelConfig.preset("small").model_copy(update={"value_target": target}).value_target == target
    ModelConfig.model_validate({**ModelConfig.preset("small").model_dump(), "value_target": target})
