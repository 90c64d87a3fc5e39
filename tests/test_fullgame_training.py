"""Learning to bid: the view encoding, self-play examples, the BidNet's training step, its files, the net bidder."""

from __future__ import annotations

import pytest
import torch

from zeb_core.engine.deal import make_generator
from zeb_core.formats.bid_examples import decode_bid_examples, encode_bid_examples
from zeb_core.formats.examples import decode_examples
from zeb_core.formats.safe_io import FormatError
from zeb_core.fullgame.auction import PASS, AuctionState, hand_marks, legal_bids
from zeb_core.fullgame.bid_learning import BidLearning, bid_namespace, examples_from_file, examples_to_tensors
from zeb_core.fullgame.bidders import make_bidder
from zeb_core.fullgame.bidnet import VIEW_FEATURES, BidNet, encode_view, load_bidnet, save_bidnet
from zeb_core.fullgame.bidtrain import BidTrainer, TrainConfig, bid_losses, train_standalone
from zeb_core.fullgame.selfplay import SelfPlayConfig, bidder_points, deal_hands, play_hands, realised_marks
from zeb_core.fullgame.views import auction_view
from zeb_core.players.base import make_player
from zeb_core.players.interface import SpecError
from zeb_core.store import open_store


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: the small net gains nothing from more, and on a busy 2-core machine spinning threads
    make it many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def heuristic():
    return make_player("heuristic")


@pytest.fixture(scope="module")
def batch(heuristic):
    torch.manual_seed(0)
    return play_hands(BidNet(32), heuristic, 96, make_generator(3))


def _auction_midway(n: int, seed: int):
    gen = make_generator(seed)
    hands, dealer, marks = deal_hands(n, gen, torch.device("cpu"))
    auction = AuctionState.start(dealer)
    for _ in range(2):
        legal = auction.legal_mask()
        auction.apply_bids(torch.multinomial(legal.float(), 1, generator=gen).squeeze(1))
    return hands, auction, marks


def test_view_encoding_hides_other_hands():
    hands, auction, marks = _auction_midway(64, 1)
    games = torch.arange(64)
    seat = auction.current
    x = encode_view(auction_view(auction, hands, games, marks))
    assert x.shape == (64, VIEW_FEATURES) and x.dtype == torch.int64
    # shuffle the dominoes of the three other seats among themselves: the seat's view must not change
    other = hands.clone()
    gen = torch.Generator().manual_seed(5)
    for g in range(64):
        rest = [s for s in range(4) if s != int(seat[g])]
        pool = hands[g, rest].flatten()[torch.randperm(21, generator=gen)]
        other[g, rest] = pool.view(3, 7).sort(dim=1).values
    assert not torch.equal(other, hands)
    assert torch.equal(encode_view(auction_view(auction, other, games, marks)), x)
    # and it does depend on the seat's own hand, the bids and the score
    assert torch.equal(x[:, :7], hands[games, seat])
    assert not torch.equal(encode_view(auction_view(auction, hands, games, marks.flip(1))), x)


def test_encoding_layout_bids_by_relative_seat():
    auction = AuctionState.start(torch.tensor([0]))
    hands = torch.arange(28).view(1, 4, 7)
    auction.apply_bids(torch.tensor([PASS]))  # seat 1 passes
    auction.apply_bids(torch.tensor([3]))  # seat 2 bids 32
    x = encode_view(auction_view(auction, hands, torch.tensor([0]), torch.tensor([[2, 9]])))
    # seat 3 speaks: itself not yet, left (seat 0) not yet, partner (seat 1) passed, right (seat 2) bid action 3
    assert x[0, 7:11].tolist() == [0, 0, 1, 4]
    assert x[0, 11].item() == 3  # third to speak
    assert x[0, 12:14].tolist() == [7, 2]  # seat 3 is team 1 (9 clipped to 7), team 0 has 2


def test_examples_targets_are_the_hands_real_outcomes(batch, heuristic):
    ex, rec = batch
    assert len(ex) == 4 * 96
    won = rec.bidder >= 0
    assert bool(won.any())
    # the declared hand, replayed, gives the recorded points, and hand_marks the recorded marks
    g = won.nonzero().flatten()
    pts = bidder_points(rec.hands[g], rec.decl[g], rec.bidder[g], rec.value[g], heuristic)
    team = rec.bidder[g] % 2
    assert torch.equal(rec.team_points[g].gather(1, team.view(-1, 1)).squeeze(1), pts)
    assert torch.equal(rec.team_points[g].sum(1), torch.full_like(pts, 42))
    assert torch.equal(hand_marks(rec.team_points[g], rec.bidder[g], rec.value[g]), rec.gained[g])
    assert int(rec.gained[~won].abs().sum()) == 0
    # bid targets: the marks of the seat's own team, from its side
    expect = realised_marks(rec, rec.bid_game, rec.bid_seat).float()
    assert torch.equal(ex.bid_marks, expect)
    for i in range(len(ex)):
        game, seat = int(rec.bid_game[i]), int(rec.bid_seat[i])
        b = int(rec.bidder[game])
        if b < 0:
            assert ex.bid_marks[i] == 0
        else:
            made = int(rec.gained[game, b % 2]) > 0
            sign = 1 if made == (seat % 2 == b % 2) else -1
            assert ex.bid_marks[i] == sign * (int(rec.value[game]) // 42 if rec.value[game] >= 42 else 1)
    # bid actions are the recorded auction, and every one was legal
    assert torch.equal(rec.bids[rec.bid_game, rec.bid_seat], ex.bid_action)
    # declaration labels: every declaration played; the declared one is the hand's result
    k = int(won.sum())
    assert ex.decl_x.shape[0] == 2 * k
    assert bool((ex.decl_points >= 0).all()) and bool((ex.decl_points <= 42).all())
    declared = ex.decl_points[:k].gather(1, rec.decl[g].view(-1, 1)).squeeze(1)
    assert torch.equal(declared, pts)
    assert torch.equal(ex.decl_x[:k, :7].long(), rec.hands[g, rec.bidder[g]])
    other_d = (rec.decl[g] + 1) % 10
    assert torch.equal(ex.decl_points[:k].gather(1, other_d.view(-1, 1)).squeeze(1),
                       bidder_points(rec.hands[g], other_d, rec.bidder[g], rec.value[g], heuristic))  # fmt: skip


def test_one_decl_labels_only_the_declared(heuristic):
    ex, _ = play_hands(BidNet(16), heuristic, 32, make_generator(4), SelfPlayConfig(all_decls=False))
    assert bool(((ex.decl_points >= 0).sum(1) == 1).all())


def test_auction_in_selfplay_is_legal_and_replays(batch):
    _, rec = batch
    auction = AuctionState.start(rec.dealer)
    for _ in range(4):
        a = rec.bids.gather(1, auction.current.view(-1, 1)).squeeze(1)
        auction.apply_bids(a, check=True)  # raises on an illegal bid
    assert torch.equal(auction.high_bidder, rec.bidder)


def test_training_steps_lower_the_loss_on_a_fixed_batch(batch):
    ex, _ = batch
    torch.manual_seed(1)
    net = BidNet(32)
    trainer = BidTrainer(net, TrainConfig(lr=3e-3))
    with torch.no_grad():
        before = {k: float(v) for k, v in bid_losses(net, ex).items()}
    for _ in range(60):
        trainer.step(ex)
    with torch.no_grad():
        after = {k: float(v) for k, v in bid_losses(net, ex).items()}
    assert after["decl"] < 0.9 * before["decl"]
    assert after["q"] < 0.8 * before["q"]


def test_bidnet_forward_equals_the_token_mlp_on_every_token(batch):
    """The forward runs the token MLP once per (declaration, domino) pair and sums by a multi-hot product; it must
    equal the direct formula (the MLP on each of the [n, 10, 7] tokens, summed), in value and in every gradient."""
    ex, _ = batch
    torch.manual_seed(3)
    net = BidNet(24).double()
    x = ex.bid_x[:40].long()

    def direct(n: BidNet) -> tuple[torch.Tensor, torch.Tensor]:
        hand = x[:, :7]
        ctx = (
            n.bid(x[:, 7:11] + torch.arange(4) * 21).sum(1)
            + n.position(x[:, 11])
            + n.marks(x[:, 12:14] + torch.tensor([0, 8])).sum(1)
        )
        pair = torch.arange(10).view(1, -1, 1) * 28 + hand.unsqueeze(1)
        tok = n.domino(hand).unsqueeze(1) + n.domino_decl(pair)  # [n, 10, 7, h]
        z = n.decl_mlp(n.token_mlp(tok).sum(2) + n.decl(torch.arange(10)) + ctx.unsqueeze(1))
        points = n.points_head(z)
        summary = torch.cat([z.max(1).values, z.mean(1), ctx], dim=1)
        return points, n.q_head(n.bid_mlp(summary)) + n.make_prior(points.detach())

    grads = []
    for forward in (net, direct):
        net.zero_grad()
        points, q = forward(x) if forward is net else direct(net)
        (points.square().mean() + q.square().mean()).backward()
        grads.append(({k: p.grad.clone() for k, p in net.named_parameters()}, points.detach(), q.detach()))
    (fast, fast_points, fast_q), (slow, slow_points, slow_q) = grads
    assert fast_points.shape == (40, 10, 43) and fast_q.shape == (40, 20)
    assert torch.allclose(fast_points, slow_points, atol=1e-10) and torch.allclose(fast_q, slow_q, atol=1e-10)
    assert set(fast) == set(slow)
    for k in fast:
        assert torch.allclose(fast[k], slow[k], atol=1e-10), k
    assert fast["token_mlp.0.weight"].abs().sum() > 0  # the token MLP is trained through the new path


def test_save_load_round_trip_and_corruption_refused(tmp_path):
    net = BidNet(24)
    save_bidnet(net, tmp_path)
    loaded, state = load_bidnet(tmp_path)
    hands, auction, marks = _auction_midway(5, 2)
    x = encode_view(auction_view(auction, hands, torch.arange(5), marks))
    for a, b in zip(net.eval()(x), loaded(x), strict=True):
        assert torch.equal(a, b)
    assert "weights_sha256" in state
    assert load_bidnet(tmp_path / "bidnet.safetensors")[0].hidden == 24
    raw = bytearray((tmp_path / "bidnet.safetensors").read_bytes())
    raw[-3] ^= 0x55
    (tmp_path / "bidnet.safetensors").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="SHA-256"):
        load_bidnet(tmp_path)
    with pytest.raises(SpecError, match="SHA-256"):
        make_bidder(f"net:path={tmp_path}")
    with pytest.raises(SpecError, match="no BidNet"):
        make_bidder(f"net:path={tmp_path / 'nothing'}")


def test_load_refuses_a_foreign_shape(tmp_path):
    net = BidNet(24)
    save_bidnet(net, tmp_path)
    cfg = (tmp_path / "bidnet-config.json").read_text().replace('"hidden": 24', '"hidden": 32')
    (tmp_path / "bidnet-config.json").write_text(cfg)
    with pytest.raises(FormatError, match="expected"):
        load_bidnet(tmp_path)


def test_net_bidder_bids_legally_and_explains(tmp_path):
    save_bidnet(BidNet(24), tmp_path)
    for spec in (f"net:path={tmp_path}", f"net:path={tmp_path},temp=1.0"):
        bidder = make_bidder(spec)
        gen = make_generator(9)
        hands, dealer, marks = deal_hands(200, gen, torch.device("cpu"))
        auction = AuctionState.start(dealer, forced_bid=True)
        games = torch.arange(200)
        for _ in range(4):
            view = auction_view(auction, hands, games, marks)
            decision = bidder.bid(view)
            assert bool(view.legal.gather(1, decision.actions.view(-1, 1)).all())
            assert len(decision.explanations) == 200 and "P(make" in decision.explanations[0]
            auction.apply_bids(decision.actions, check=True)
        assert not bool(auction.all_passed().any())  # forced dealer always bids
        won = auction.needs_declaration().nonzero().flatten()
        dview = auction_view(auction, hands, won, marks, declaring=True)
        d = bidder.declare(dview)
        assert bool(((d.decls >= 0) & (d.decls < 10)).all())
        assert "P(make" in d.explanations[0]
        auction.declare(d.decls, check=True)
        assert bool(auction.done().all())


def test_net_bidder_margin_passes_unless_a_bid_promises_more_marks(tmp_path):
    """margin=M turns every bid of expected marks <= M into a pass, except the forced dealer's."""
    save_bidnet(BidNet(24), tmp_path)
    hands, dealer, marks = deal_hands(200, make_generator(3), torch.device("cpu"))
    auction = AuctionState.start(dealer, forced_bid=True)
    plain_bidder, timid_bidder = make_bidder(f"net:path={tmp_path}"), make_bidder(f"net:path={tmp_path},margin=50")
    for _ in range(3):  # the three seats before the dealer, who may all pass
        view = auction_view(auction, hands, torch.arange(200), marks)
        plain, timid = plain_bidder.bid(view), timid_bidder.bid(view)
        assert bool(view.legal.gather(1, timid.actions.view(-1, 1)).all())
        assert bool((timid.actions == PASS).all()) and len(timid.explanations) == 200
        auction.apply_bids(plain.actions, check=True)
    with pytest.raises(SpecError, match=r"margin=-1\.0 must be finite"):
        make_bidder(f"net:path={tmp_path},margin=-1")


def test_forced_dealer_never_passes_in_legal_bids():
    legal = legal_bids(torch.tensor([0]), torch.tensor([True]))
    assert not bool(legal[0, PASS]) and bool(legal[0, 1])


def test_standalone_loop_saves_a_loadable_net(tmp_path):
    res = train_standalone(0.02, tmp_path, hands_per_round=32, hidden=16, log=lambda _: None)
    assert res["steps"] >= 1 and res["hands"] >= 32
    _, state = load_bidnet(tmp_path)
    assert state["step"] == res["steps"] and state["play_player"] == "heuristic"
    res2 = train_standalone(0.01, tmp_path, hands_per_round=32, hidden=16, log=lambda _: None)
    assert res2["steps"] > res["steps"]  # resumed


# ---------------------------------------------------------------- the pipeline: bid-example files, worker, learner
def _bid_file(batch, step: int = 2):
    ex, _ = batch
    return encode_bid_examples(examples_to_tensors(ex), model_step=step, worker_id="w-bid", hands=96)


def test_bid_example_file_round_trip_and_refusals(batch):
    data, manifest = _bid_file(batch)
    f = decode_bid_examples(data)
    assert f.model_step == 2 and manifest["bid_examples"] == 4 * 96
    back = examples_from_file(f)
    assert torch.equal(back.bid_marks, batch[0].bid_marks) and torch.equal(back.decl_points, batch[0].decl_points)
    tensors = examples_to_tensors(batch[0])
    bad_cases = {
        "outside their columns": {**tensors, "bid_x": tensors["bid_x"].clone().fill_(27)},
        "0..19": {**tensors, "bid_action": tensors["bid_action"] + 20},
        "whole marks": {**tensors, "bid_marks": tensors["bid_marks"] + 0.5},
        "0..42": {**tensors, "decl_points": tensors["decl_points"] + 43},
    }
    for reason, bad in bad_cases.items():
        with pytest.raises(FormatError, match=reason):
            encode_bid_examples(bad, model_step=0, worker_id="w", hands=1)
    raw = bytearray(data)
    raw[-5] ^= 0x01
    with pytest.raises(FormatError, match="SHA-256"):
        decode_bid_examples(bytes(raw))
    with pytest.raises(FormatError):  # a bid file is not a play-example file
        decode_examples(data)


def test_store_quarantines_a_bad_bid_file(tmp_path, batch):
    store = open_store(f"file://{tmp_path}")
    store.ensure()
    data, manifest = _bid_file(batch)
    path = store.upload_examples(data, manifest, bid_namespace("model"))
    assert path.startswith("model-bid/")
    [ref] = store.list_examples(bid_namespace("model"))
    assert store.list_examples() == []  # the play examples' folder does not list bid files
    assert store.read_examples(ref, decode=decode_bid_examples).manifest["sha256"] == manifest["sha256"]
    store.examples.commit({ref.path: data[:-8] + b"\0" * 8}, (), "tamper", False)
    assert store.read_examples(ref, decode=decode_bid_examples) is None
    assert store.list_examples(bid_namespace("model")) == [] and len(store.list_quarantine()) == 1


def test_bidnet_steps_follow_the_examples_received_not_the_learner_cycles(tmp_path, batch):
    """At replay ratio 4, 384 examples a file allow 3 steps of 512 samples: the learner's cycles wait for data."""
    store = open_store(f"file://{tmp_path}")
    store.ensure()
    bids = BidLearning(store, "model", torch.device("cpu"), steps_per_cycle=8, replay_ratio=4.0)
    bids.restore()

    def receive(*shifts: int) -> None:  # files of 384 examples each, told apart by the order of their rows
        for k in shifts:
            tensors = {name: t.roll(k, 0) for name, t in examples_to_tensors(batch[0]).items()}
            data, manifest = encode_bid_examples(tensors, model_step=0, worker_id="w-bid", hands=96)
            store.upload_examples(data, manifest, bid_namespace("model"))
        assert bids.ingest() == 384 * len(shifts)

    receive(2, 3)  # 768 examples: 3,072 samples, six steps
    assert "train/bid_q_loss" in bids.train() and bids.trainer.steps == 6 and bids.step == 1
    assert bids.train() == {} and bids.trainer.steps == 6 and bids.step == 1  # nothing new: no step, no new weights
    receive(4)
    bids.train()
    assert bids.trainer.steps == 9 and bids.samples_trained == 9 * 512 <= 4 * bids.buffer.total_added
    receive(5, 6, 7, 8, 9, 10)  # credit for 18 steps: at most steps_per_cycle a cycle
    bids.train()
    assert bids.trainer.steps == 17
    bids.replay_ratio = None  # without a ratio, every cycle takes steps_per_cycle
    bids.train()
    bids.train()
    assert bids.trainer.steps == 33


def test_solver_contract_labels_match_the_engine_at_the_end():
    from zeb_core.engine.deal import deal_benchmark
    from zeb_core.selfplay.solver_teacher import mover_values

    state = deal_benchmark(6, make_generator(11))
    heuristic = make_player("heuristic")
    for _ in range(27):  # to the last play: one legal move each, whose value is the hand's result
        legal = state.legal_mask()
        state.apply(heuristic.decide(state, legal, torch.arange(6)).moves)
    legal = state.legal_mask()
    q = mover_values(state, "contract")
    last = state.clone()
    last.apply(legal.float().argmax(1))
    expect = last.values().gather(1, state.current.view(-1, 1)).squeeze(1)
    assert torch.allclose(q[legal], expect)


def test_full_game_worker_and_learner_train_the_bidnet(tmp_path):
    from zeb_core.learn.learner import Learner, LearnerSettings
    from zeb_core.mcts.config import SearchConfig
    from zeb_core.selfplay.worker import SelfPlayWorker, WorkerSettings

    url = f"file://{tmp_path / 'store'}"
    with pytest.raises(ValueError, match="contract"):
        LearnerSettings(store=url, full_game=True)
    lrn = Learner(LearnerSettings(store=url, size="small", min_buffer_size=50, training_steps_per_cycle=2,
                                  batch_size=16, device="cpu", promote=False, value_target="contract",
                                  full_game=True, bid_steps_per_cycle=3, bid_replay_ratio=16))  # fmt: skip
    lrn.start()
    try:
        store = lrn.store
        assert store.latest_step(bid_namespace("model")) == 0  # a fresh BidNet, pushed for the workers
        search = SearchConfig(simulations=4, worlds=1, max_nodes=8, solve_plays=0, value_target="contract")
        worker = SelfPlayWorker(WorkerSettings(store=url, device="cpu", games_per_batch=4, bid_hands_per_batch=24,
                                               seed=3, worker_id="w-full", outbox=str(tmp_path / "outbox"),
                                               search=search, full_game=True))  # fmt: skip
        _, report = worker.generate()
        worker.upload(report)
        [bid_ref] = store.list_examples(bid_namespace("model"))
        [play_ref] = store.list_examples()
        bids = store.read_examples(bid_ref, decode=decode_bid_examples)
        assert bids.manifest["hands"] == 24 and bids.manifest["bid_examples"] == 96 and bids.model_step == 0
        play = store.read_examples(play_ref)
        assert play.value_target == "contract" and play.manifest["games"] == report.games <= 4
        # the played hands carry real bids: the context token's bid feature is bid - 29 (1..13)
        assert bool((play.obs[:, 0, 4] >= 1).all()) and bool((play.obs[:, 0, 4] <= 13).all())
        lrn.ingest()
        assert len(lrn.bids.buffer) == 96
        metrics = lrn.train()
        assert metrics is not None and metrics["train/bid_q_loss"] >= 0 and lrn.bids.step == 1
        assert lrn.push()
        state = store.peek_state(bid_namespace("model"))
        assert state["step"] == 1 and state["total_games"] == 24 and bid_ref.name in state["cursor"]["seen"]
        net, _ = load_bidnet(tmp_path / "store" / "weights" / "model-bid.safetensors")
        bidder = make_bidder(f"net:path={tmp_path / 'store' / 'weights' / 'model-bid.safetensors'}")
        assert bidder.name.startswith("net:") and net.hidden == 96
    finally:
        lrn.close()
    again = Learner(LearnerSettings(store=url, size="small", min_buffer_size=50, device="cpu", promote=False,
                                    value_target="contract", full_game=True))  # fmt: skip
    again.start()
    try:
        assert again.bids.step == 1 and not again.bids.cursor.is_new(bid_ref.name)  # resumed, nothing read twice
        assert again.bids.ingest() == 0 and again.bids.hands == 24
        assert len(again.bids.buffer) == 96  # the buffer rebuilt from the files already read
    finally:
        again.close(push=False)


def test_a_round_where_every_auction_is_passed_plays_nothing_and_does_not_fail() -> None:
    """An empty batch of won hands (all four seats passed everywhere) gives no labels instead of an error."""
    from zeb_core.engine.state import GameState
    from zeb_core.fullgame.selfplay import bidder_points
    from zeb_core.players.base import make_player

    empty = torch.zeros(0, dtype=torch.int64)
    points = bidder_points(torch.zeros(0, 4, 7, dtype=torch.int64), empty, empty, empty, make_player("heuristic"))
    assert points.shape == (0,)
    state = GameState.from_deal(torch.zeros(0, 4, 7, dtype=torch.int64), empty, empty, empty)
    assert state.batch_size == 0 and not bool(state.legal_mask().any())


def _random_positions(n: int, plays: int, seed: int):
    """n benchmark deals after `plays` uniformly random legal plays (real bids 30..42)."""
    from zeb_core.engine.deal import deal_benchmark

    gen = make_generator(seed)
    state = deal_benchmark(n, gen)
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(torch.multinomial(legal.float(), 1, generator=gen).squeeze(1), check=True)
    return state


@pytest.mark.parametrize("plays", [4, 12, 20])
def test_contract_sign_labels_are_the_sign_of_the_exact_contract_labels(plays):
    """The threshold searches (one per move at the bid) agree with the exact points' contract value on every legal
    move: +1 exactly where the shaped value is positive, never 0."""
    from zeb_core.selfplay.solver_teacher import mover_values

    state = _random_positions(24, plays, seed=plays)
    legal = state.legal_mask()
    shaped = mover_values(state, "contract")
    sign = mover_values(state, "contract-sign")
    assert torch.equal(sign[legal], torch.sign(shaped[legal])) and bool((sign[legal] != 0).all())
    assert bool((sign[~legal] == 0).all())
    assert 0 < int((sign[legal] > 0).sum()) < int(legal.sum())  # both results occur: the check can fail


def test_contract_sign_target_and_leaf_values_are_the_contract_sign():
    from zeb_core.mcts.leaves import exact_team0_values

    state = _random_positions(32, 16, seed=5)
    v = exact_team0_values(state, "contract-sign")
    shaped = exact_team0_values(state, "contract")
    assert torch.equal(v, torch.sign(shaped)) and set(v.unique().tolist()) <= {-1.0, 1.0}
    done = _random_positions(64, 28, seed=6)
    assert torch.equal(done.target_values("contract-sign"), torch.sign(done.values()))
    assert bool((done.target_values("contract-sign") != 0).all())


def test_full_game_settings_take_either_contract_target(tmp_path):
    from zeb_core.learn.learner import LearnerSettings
    from zeb_core.mcts.config import SearchConfig
    from zeb_core.selfplay.worker import WorkerSettings

    url = f"file://{tmp_path / 'store'}"
    assert LearnerSettings(store=url, full_game=True, value_target="contract-sign").value_target == "contract-sign"
    search = SearchConfig(teacher="solver", value_target="contract-sign")
    assert WorkerSettings(store=url, search=search, full_game=True).search.value_target == "contract-sign"
    with pytest.raises(ValueError, match="contract or contract-sign"):
        WorkerSettings(store=url, search=SearchConfig(value_target="points-margin"), full_game=True)
    with pytest.raises(ValueError, match="contract or contract-sign"):
        LearnerSettings(store=url, full_game=True, value_target="points")


def test_bid_hands_per_batch_is_checked(tmp_path):
    """A set value is kept; below 1 is refused with the setting's name."""
    from zeb_core.mcts.config import SearchConfig
    from zeb_core.selfplay.worker import WorkerSettings

    url = f"file://{tmp_path / 'store'}"
    search = SearchConfig(value_target="contract")
    assert WorkerSettings(store=url, search=search, full_game=True, bid_hands_per_batch=7).bid_hands_per_batch == 7
    with pytest.raises(ValueError, match="bid hands per batch must be >= 1"):
        WorkerSettings(store=url, search=search, full_game=True, bid_hands_per_batch=0)
