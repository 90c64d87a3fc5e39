"""Issue 35 follow-up: the BidNet's learner (`BidLearning`, namespace NAME-bid) keeps the play learner's rules.
A store error in the middle of its ingest (a real HTTP 403 from a local Hub) must not make a restart count a
bid-example file twice, and a restart must give it back the replay buffer it had (both parts: the bid examples
and the declaration examples), whatever its prune and the operator's removed."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import torch
from hf_hub_server import HfHubServer

from zeb_core.engine.deal import make_generator
from zeb_core.formats.bid_examples import encode_bid_examples
from zeb_core.fullgame.bid_learning import BidLearning, examples_to_tensors
from zeb_core.fullgame.bidnet import BidNet
from zeb_core.fullgame.bidtrain import BidBuffer
from zeb_core.fullgame.selfplay import HandExamples, play_hands
from zeb_core.learn.state import prune_sparing_buffer, pushed_buffer_floor
from zeb_core.players.base import make_player
from zeb_core.store import RetryPolicy, Store, StoreError, open_store
from zeb_core.store.hf import HfBackend
from zeb_core.store.local import LocalBackend
from zeb_core.store.store import bid_namespace

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

BIDS = bid_namespace("model")
FILES = 12
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def played() -> HandExamples:
    """Real self-play of 48 hands (a small BidNet bids, the heuristic plays): 192 bid and 96 declaration examples."""
    torch.manual_seed(0)
    ex, _ = play_hands(BidNet(16), make_player("heuristic"), 48, make_generator(3))
    assert len(ex) >= 2 * FILES and ex.decl_x.shape[0] >= 2 * FILES
    return ex


def upload(store: Store, played: HandExamples, i: int) -> tuple[int, int, int]:
    """Bid-example file `i`: its own slice of the played examples (so no two files hold the same rows) and its
    own hand count 3 + 2i (so a count that reads a file twice cannot come out right). Returns (hands, bid
    examples, declaration examples)."""
    bid, decl = len(played) // FILES, played.decl_x.shape[0] // FILES
    tensors = examples_to_tensors(played)
    part = {k: v[i * decl : (i + 1) * decl] if k.startswith("decl") else v[i * bid : (i + 1) * bid]
            for k, v in tensors.items()}  # fmt: skip
    data, manifest = encode_bid_examples(part, model_step=0, worker_id="w-bid", hands=3 + 2 * i)
    store.upload_examples(data, manifest, BIDS)
    time.sleep(0.002)  # distinct millisecond stamps: the listing order is the upload order
    return manifest["hands"], bid, decl


def contents(buffer: BidBuffer) -> tuple[Counter[bytes], Counter[bytes]]:
    """The bid and the declaration examples a buffer holds, each as a multiset of rows."""
    d = buffer.data
    assert d is not None

    def rows(*tensors: torch.Tensor) -> Counter[bytes]:
        return Counter(
            hashlib.sha256(b"".join(t.numpy().tobytes() for t in row)).digest() for row in zip(*tensors, strict=True)
        )

    return rows(d.bid_x, d.bid_action, d.bid_marks), rows(d.decl_x, d.decl_points)


def test_a_store_error_mid_bid_ingest_counts_every_hand_once_after_a_restart(
    hub: HfHubServer, played: HandExamples, tmp_path: Path
) -> None:
    repo = f"tester/bids-{uuid.uuid4().hex[:8]}"

    def store() -> Store:  # weights in a folder, examples in a dataset repo of the local Hub
        examples = HfBackend(repo, repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
        return Store(LocalBackend(tmp_path / "weights"), examples, RetryPolicy.fast())

    st = store()
    st.ensure()  # what the learner's start does: creates the dataset repo
    bids = BidLearning(st, "model", CPU)
    bids.restore()  # a fresh BidNet, pushed
    sent = [upload(st, played, i) for i in range(2)]
    assert bids.ingest() == sum(b for _, b, _ in sent)
    sent += [upload(st, played, i) for i in range(2, 5)]
    refs = st.list_examples(BIDS)
    refused = refs[3].name  # the second of the three new files: one new file is read before the error
    with hub.failing(403, match=refused), pytest.raises(StoreError, match="HTTP 403"):
        bids.ingest()
    assert bids.push()  # the learner's final push (flows/learner.py's `finally`: Learner.close pushes the BidNet)

    state = st.peek_state(BIDS)
    assert state is not None
    read = set(state["cursor"]["seen"])
    assert refused not in read and refs[2].name in read, "the file read before the error is recorded as read"
    assert state["total_games"] == sum(h for (h, _, _), r in zip(sent, refs, strict=True) if r.name in read), (
        "the pushed hand count is that of the files the pushed cursor says were read"
    )

    again = BidLearning(store(), "model", CPU)
    again.restore()
    again.ingest()
    assert again.cursor.seen == {r.name for r in refs}
    assert again.hands == sum(h for h, _, _ in sent), "hands counted equal hands sent: none read twice, none lost"
    assert len(again.buffer) == sum(b for _, b, _ in sent)


def test_a_restarted_bid_learner_gets_its_full_buffer_back(played: HandExamples, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    st = open_store(url)
    st.ensure()
    per_bid, per_decl = len(played) // FILES, played.decl_x.shape[0] // FILES
    capacity = 3 * per_decl  # the declaration part refills from three files, the bid part from fewer
    assert 2 * per_bid >= capacity
    bids = BidLearning(st, "model", CPU, buffer_size=capacity, min_examples=1, replay_ratio=None)
    bids.restore()
    for i in range(0, FILES, 2):  # the learner's cycles: ingest -> train -> push -> prune, two new files each
        upload(st, played, i)
        upload(st, played, i + 1)
        bids.ingest()
        assert bids.train()
        assert bids.push()
        bids.prune(keep=1)  # the count rule alone would leave one file: the buffer's need must win
    held = contents(bids.buffer)
    assert sum(held[0].values()) == sum(held[1].values()) == capacity, "both parts of the buffer are full"
    listed = st.list_examples(BIDS)
    assert len(listed) == 3, "the prune kept what the buffer needs, and removed the rest"
    floor = pushed_buffer_floor(st, BIDS)
    assert floor == listed[0].name

    # The operator's prune (`zeb store prune`, the prune flow: the floor of the last push) spares them too.
    assert prune_sparing_buffer(st, BIDS, keep=0, max_age_s=None, floor=floor).removed == []

    again = BidLearning(open_store(url), "model", CPU, buffer_size=capacity, min_examples=1, replay_ratio=None)
    again.restore()
    assert contents(again.buffer) == held, "the restart refilled the buffer it had, both parts, with its examples"
    assert again.train()
