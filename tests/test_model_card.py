"""The Hub's cards (zeb_core.store.cards): the learner writes the model card in each promotion's commit and the dataset
card once, against the test Hub (tests/hf_hub_server.py); both read back with huggingface_hub's own loaders, and
the dataset card describes the fields real example files have."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_hub_server import HfHubServer
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.repocard import metadata_load, model_index_to_eval_results
from safetensors import safe_open

from zeb_core.formats.bid_examples import TENSORS as BID_TENSORS
from zeb_core.formats.bid_examples import encode_bid_examples
from zeb_core.formats.examples import encode_examples
from zeb_core.formats.safe_io import MANIFEST_KEY
from zeb_core.learn.learner import Learner, LearnerSettings
from zeb_core.learn.promotion import push_promotion
from zeb_core.learn.state import LearnerState
from zeb_core.model.checkpoint import bundle_from_model
from zeb_core.model.config import ModelConfig
from zeb_core.model.net import ZebNet
from zeb_core.store import RetryPolicy, Store, StoreError, StoreUnavailable, open_store
from zeb_core.store.cards import CARD_PATH, HubCards, eval_rows, render_dataset_card, render_model_card
from zeb_core.store.hf import HfBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread", "clean_hub")  # conftest.py
BEST_PUSH = "[zeb] push name=model which=best"


def hub_store(hub: HfHubServer) -> Store:
    unique = uuid.uuid4().hex[:8]
    weights = HfBackend(f"tester/zeb{unique}", endpoint=hub.endpoint, token=hub.token)
    examples = HfBackend(f"tester/zeb{unique}-examples", repo_type="dataset", endpoint=hub.endpoint, token=hub.token)
    store = Store(weights, examples, RetryPolicy.fast())
    store.ensure()
    return store


def example_file(n: int, seed: int, q: bool = False) -> tuple[bytes, dict[str, Any]]:
    """A real encoded example file of `n` synthetic examples (with solver Q values when `q`)."""
    g = torch.Generator().manual_seed(seed)
    legal = torch.rand(n, 7, generator=g) < 0.6
    legal[:, 0] = True
    policy = torch.rand(n, 7, generator=g) * legal
    obs = torch.randint(0, 4, (n, 36, 8), generator=g).to(torch.int8)
    value = torch.rand(n, generator=g) * 2 - 1
    qs = (torch.rand(n, 7, generator=g) * 2 - 1) * legal if q else None
    return encode_examples(
        obs, legal, policy / policy.sum(1, keepdim=True), value, model_step=0, worker_id="w1", games=n // 10, q=qs
    )


def learner(store: Store) -> Learner:
    settings = LearnerSettings(
        store=store.url,
        size="small",
        min_buffer_size=100,
        training_steps_per_cycle=2,
        batch_size=32,
        replay_buffer_size=5_000,
        eval_games=20,
        device="cpu",
        learner_id="carded",
    )
    lrn = Learner(settings, store=store)
    lrn.start()
    for seed in range(2):
        store.upload_examples(*example_file(80, seed))
    lrn.ingest()
    assert lrn.train() is not None
    return lrn


def evaluation(step: int, rate: float, half_width: float, games: int) -> dict[str, float]:
    """An evaluation with the same win rate against random and heuristic."""
    out: dict[str, float] = {"step": step}
    for opp in ("random", "heuristic"):
        out |= {f"eval/vs_{opp}_win_rate": rate, f"eval/vs_{opp}_ci_low": rate - half_width}
        out |= {f"eval/vs_{opp}_ci_high": rate + half_width, f"eval/vs_{opp}_games": games}
    return out


def clearly_better(step: int) -> dict[str, float]:
    """An evaluation whose benchmark score is far above any 20-game one (promotion.benchmark_gain)."""
    return evaluation(step, 0.985, 0.005, 4000)


def read_card(backend: HfBackend, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The repo's README and its front matter, parsed by huggingface_hub's metadata loader."""
    text = backend.read(CARD_PATH).decode()
    path = tmp_path / f"{uuid.uuid4().hex}.md"
    path.write_text(text)
    return text, metadata_load(path) or {}


def check_model_index(meta: dict[str, Any], last_eval: dict[str, float]) -> None:
    """The card's model-index holds exactly the promoted state's evaluation: rates, 95% intervals, game counts."""
    _, results = model_index_to_eval_results(meta["model-index"])
    by_opponent = {r.dataset_config: r for r in results}
    assert set(by_opponent) == {"random", "heuristic"}
    for opp, r in by_opponent.items():
        assert r.metric_type == "win_rate" and r.task_type == "reinforcement-learning"
        assert r.metric_value == round(last_eval[f"eval/vs_{opp}_win_rate"], 4)
        assert r.metric_args == {
            "ci95_low": round(last_eval[f"eval/vs_{opp}_ci_low"], 4),
            "ci95_high": round(last_eval[f"eval/vs_{opp}_ci_high"], 4),
        }
        assert r.dataset_args["games"] == last_eval[f"eval/vs_{opp}_games"]
        assert r.dataset_args["step"] == last_eval["step"]


def readme_commits(hub: HfHubServer, repo_id: str, repo_type: str = "model") -> list[str]:
    """Titles of the commits that changed README.md, oldest first."""
    commits = hub.commits(repo_id, repo_type)
    files = [hub.files(repo_id, repo_type, c.id).get(CARD_PATH) for c in commits]
    return [c.title for c, before, after in zip(commits[1:], files[:-1], files[1:], strict=True) if before != after]


def test_promotions_write_the_model_card_in_their_commit_and_the_dataset_card_once(
    hub: HfHubServer, tmp_path: Path
) -> None:
    store = hub_store(hub)
    weights, examples = store.weights, store.examples
    assert isinstance(weights, HfBackend) and isinstance(examples, HfBackend)
    lrn = learner(store)
    try:
        lrn.evaluate(games=20)
        assert lrn.maybe_promote().decision == "first"
        best = LearnerState.from_json(store.peek_state("model", "best"))
        assert best.last_eval["eval/vs_random_games"] == 20, "the evaluation's game count reaches the state"

        text, meta = read_card(weights, tmp_path)
        assert readme_commits(hub, weights.repo_id) == [hub.commits(weights.repo_id)[-1].title]
        assert readme_commits(hub, weights.repo_id)[0].startswith(BEST_PUSH), "the card rides the promotion commit"
        assert meta["library_name"] == "zeb" and meta["license"] == "other" and "texas-42" in meta["tags"]
        assert meta["datasets"] == [examples.repo_id]
        check_model_index(meta, best.last_eval)
        assert f"zeb serve --store hf://{weights.repo_id}" in text and f"step {best.step}" in text
        assert f"{best.total_games:,}" in text and f"{ModelConfig.preset('small').num_parameters():,}" in text
        assert ModelCard(text).data.to_dict()["library_name"] == "zeb"

        dataset_text, dataset_meta = read_card(examples, tmp_path)
        assert dataset_meta["viewer"] is False and "texas-42" in dataset_meta["tags"]
        assert DatasetCard(dataset_text).data.to_dict()["pretty_name"].startswith("Zeb self-play examples")
        assert len(readme_commits(hub, examples.repo_id, "dataset")) == 1

        lrn.last_eval = clearly_better(lrn.step)  # a second promotion, by benchmark gain
        assert lrn.train() is not None
        assert lrn.maybe_promote().decision == "benchmark"
        best = LearnerState.from_json(store.peek_state("model", "best"))
        text, meta = read_card(weights, tmp_path)
        titles = readme_commits(hub, weights.repo_id)
        assert len(titles) == 2 and all(t.startswith(BEST_PUSH) for t in titles)
        check_model_index(meta, best.last_eval)
        assert f"step {best.step}" in text and "benchmark" in text
        assert len(readme_commits(hub, examples.repo_id, "dataset")) == 1, "the dataset card is written once"
    finally:
        lrn.close(push=False)
    commits = len(hub.commits(examples.repo_id, "dataset"))
    assert HubCards(store).write_dataset_card(), "a restarted learner finds the dataset card current"
    assert len(hub.commits(examples.repo_id, "dataset")) == commits, "and commits nothing"


def test_a_card_the_hub_refuses_never_stops_a_promotion(hub: HfHubServer, tmp_path: Path) -> None:
    """The Hub validates a README's metadata and refuses a commit with a bad one: the promotion goes in without
    the card (which the next promotion carries again)."""
    store = hub_store(hub)
    weights = store.weights
    assert isinstance(weights, HfBackend)
    bundle = bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 3}, None)
    card = {CARD_PATH: b"---\nlicense: not-a-license\n---\n"}
    with hub.failing(400, match=f"/api/models/{weights.repo_id}/commit/"):
        push_promotion(store, bundle, "model", "first", card)
    assert store.latest_step("model", "best") == 3 and CARD_PATH not in hub.files(weights.repo_id)
    hub.fail_next(503, count=20, match=f"/api/models/{weights.repo_id}/commit/")  # past the store's retries
    with pytest.raises(StoreUnavailable):
        push_promotion(store, bundle, "model", "again", card)  # an outage is the caller's to handle, as ever
    hub.clear_faults()
    assert CARD_PATH not in hub.files(weights.repo_id), "and it is not taken for a refused card"
    push_promotion(store, bundle, "model", "with its card", card)
    assert hub.files(weights.repo_id)[CARD_PATH] == card[CARD_PATH]


def test_a_dataset_card_that_fails_is_written_at_the_next_promotion(hub: HfHubServer, tmp_path: Path) -> None:
    store = hub_store(hub)
    examples = store.examples
    assert isinstance(examples, HfBackend)
    lrn = learner(store)
    try:
        lrn.last_eval = evaluation(lrn.step, 0.6, 0.05, 400)
        with hub.failing(503, match=f"/api/datasets/{examples.repo_id}/commit/"):
            assert lrn.maybe_promote().decision == "first"
        assert store.latest_step("model", "best") == lrn.step, "promoted all the same"
        assert CARD_PATH not in hub.files(examples.repo_id, "dataset")
        check_model_index(read_card(store.weights, tmp_path)[1], lrn.last_eval)

        lrn.last_eval = clearly_better(lrn.step + 1)
        assert lrn.train() is not None
        assert lrn.maybe_promote().decision == "benchmark"
        assert read_card(examples, tmp_path)[1]["viewer"] is False
        check_model_index(read_card(store.weights, tmp_path)[1], lrn.last_eval)
    finally:
        lrn.close(push=False)


def test_the_dataset_card_describes_every_field_real_example_files_have(tmp_path: Path) -> None:
    """Checked against encoded files (their safetensors header and manifest), not against a list kept here."""
    text = render_dataset_card(weights_repo="tester/zeb")
    g = torch.Generator().manual_seed(0)
    bids = {
        name: torch.zeros((3 if count == "bid_examples" else 2, *tail), dtype=dtype)
        for name, (dtype, tail, count) in BID_TENSORS.items()
    }
    bids["bid_x"] = torch.randint(0, 4, (3, 14), generator=g).to(torch.int8)
    files = {
        "play": example_file(5, seed=1, q=True)[0],
        "bid": encode_bid_examples(bids, model_step=3, worker_id="w1", hands=2)[0],
    }
    play_part, bid_part = text.split("## Bid-example files")
    sections = {"play": play_part.split("## Example files")[1], "bid": bid_part.split("## Reading")[0]}
    for kind, data in files.items():
        section = sections[kind]
        path = tmp_path / f"{kind}.safetensors"
        path.write_bytes(data)
        with safe_open(str(path), "pt") as f:  # safetensors' own reader, not ours
            manifest = json.loads(f.metadata()[MANIFEST_KEY])
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - a safe_open is no dict
        for key in manifest:
            assert f"| `{key}` |" in section, f"the {kind} manifest field {key!r} is not described"
        for name, tensor in tensors.items():
            rows = "N" if kind == "play" or tensor.shape[0] == 3 else "M"
            shape = "[" + ", ".join([rows, *map(str, tensor.shape[1:])]) + "]"
            dtype = str(tensor.dtype).removeprefix("torch.")
            assert f"| `{name}` | {dtype} | {shape} |" in section, f"the {kind} tensor {name} is not described as it is"
    assert f'`"{MANIFEST_KEY}"`' in text


def test_the_model_card_shows_every_measured_opponent_and_leaves_out_what_was_not(tmp_path: Path) -> None:
    last_eval: dict[str, float] = {"step": 7}
    for opp, rate in (("heuristic", 0.6), ("pimc:worlds=16", 0.41), ("random", 0.7)):
        last_eval |= {f"eval/vs_{opp}_win_rate": rate, f"eval/vs_{opp}_ci_low": rate - 0.05}
        last_eval |= {f"eval/vs_{opp}_ci_high": rate + 0.05}
    last_eval |= {"eval/vs_random_games": 400, "eval/vs_broken_win_rate": math.nan, "eval/vs_broken_ci_low": 0.1}
    rows = eval_rows(last_eval)
    assert [r.opponent for r in rows] == ["random", "heuristic", "pimc:worlds=16"]
    assert [r.games for r in rows] == [400, None, None]
    state = LearnerState(step=7, total_games=1234, last_eval=last_eval)
    text = render_model_card("tester/zeb", "exp2", ModelConfig.preset("small"), state, {"full_game": True})
    path = tmp_path / "README.md"
    path.write_text(text)
    name, results = model_index_to_eval_results(metadata_load(path)["model-index"])
    assert name == "zeb-exp2" and [r.dataset_config for r in results] == ["random", "heuristic", "pimc:worlds=16"]
    assert results[2].metric_value == 0.41 and "games" not in results[2].dataset_args
    assert "| `pimc:worlds=16` | 41.0% | 36.0%..46.0% | n/a |" in text
    assert "store:url=hf://tester/zeb,name=exp2,which=best" in text and "exp2-bid.safetensors" in text
    assert "datasets" not in metadata_load(path), "no examples repo on the Hub: no dataset to link"

    bare = render_model_card("tester/zeb", "model", ModelConfig.preset("small"), LearnerState())
    path.write_text(bare)
    assert "model-index" not in metadata_load(path) and "Not evaluated yet." in bare


def test_no_cards_off_the_hub_and_no_extra_file_over_the_push(tmp_path: Path) -> None:
    """A local (or S3) store gets no README: nothing renders its front matter there."""
    store = open_store(f"file://{tmp_path / 'store'}")
    store.ensure()
    cards = HubCards(store)
    assert cards.model_card_files("model", ModelConfig.preset("small"), LearnerState()) == {}
    assert cards.write_dataset_card()
    assert not any(p.name == CARD_PATH for p in (tmp_path / "store").rglob("*"))
    bundle = bundle_from_model(ZebNet(ModelConfig.preset("small")), {"step": 1}, None)
    with pytest.raises(StoreError, match="would overwrite"):
        store.promote(bundle, extra={"model-best-state.json": b"{}"})
    store.promote(bundle, extra={"NOTES.md": b"kept beside the weights"})
    assert (tmp_path / "store" / "weights" / "NOTES.md").read_bytes() == b"kept beside the weights"
