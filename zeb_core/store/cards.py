"""The Hub's cards: a model card (README.md) in the weights repo and a dataset card in the examples repo.

People (and the Hub's pages, search and leaderboards) read a repo by its README: the YAML front matter
(library_name, tags, license, datasets, `model-index` with the evaluation) and the Markdown below it. The render
functions here are pure (data in, text out) and build the metadata with huggingface_hub's own `ModelCardData`,
`EvalResult` and `DatasetCardData`, so the YAML is the Hub's format by construction.

`HubCards` is the learner's side: the model card rides each promotion's commit (`Store.promote(extra=...)`, no
commit of its own), and the dataset card, which changes only with the file format, is written once per learner
process when the examples repo's README differs from it (at most one commit, usually none). Only Hub stores get
cards: nothing renders a README's front matter in a local folder or an S3 prefix (`zeb store status` tells the
same there), and a README in a local or S3 weights folder would be copied into every push's history copy. A card
that fails to render or write is logged and tried again at the next promotion: it never stops training.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zeb_core.evaluation.strength import EVAL_SEED, eval_rate, interval_text, percent
from zeb_core.formats import bid_examples, examples
from zeb_core.formats.safe_io import MANIFEST_KEY
from zeb_core.formats.weights import DEFAULT_NAME, weights_filenames
from zeb_core.game.encoding import OBS_FEATURES
from zeb_core.learn.promotion import PromotionResult
from zeb_core.learn.state import LearnerState
from zeb_core.model.config import ModelConfig
from zeb_core.store.backend import Backend, NotFound, StoreError, TooLarge
from zeb_core.store.store import TAG, Store, bid_namespace

log = logging.getLogger("zeb.cards")
CARD_PATH = "README.md"
MAX_CARD_BYTES = 1 << 20  # a README larger than this is not ours: read no further, write ours over it
DEFAULT_LICENSE = "other"  # the project names no license (HubCards takes another)
LIBRARY = "zeb"
TAGS = ["zeb", "texas-42", "dominoes", "alphazero", "self-play", "reinforcement-learning", "safetensors"]
TASK = "reinforcement-learning"  # a Hub task id
BASELINE_ORDER = ("random", "heuristic")  # rows first in this order, any other opponent (pimc:...) after

# What each tensor and manifest field of an example file holds. tests/test_model_card.py holds these to the fields
# a real encoded file has, so a new field without a line here fails there.
EXAMPLE_TENSORS = {
    "obs": "the mover's observation: one token per row, `OBS_FEATURES` categorical features (zeb_core.game.encoding)",
    "legal": "which of the mover's 7 hand slots are legal plays",
    "policy": "search visit distribution over the slots: >= 0, zero on illegal slots, sums to 1 over legal ones",
    "value": "the position's value for the mover under the file's `value_target`, in [-1, 1]",
    "q": "optional: each legal slot's exact value for the mover (solver labels), in [-1, 1], zero on illegal slots",
}
EXAMPLE_MANIFEST = {
    "format_version": f"the example-file format version (this card: {examples.EXAMPLES_FORMAT_VERSION})",
    "model_step": "the learner step of the weights that played the games",
    "worker_id": "the self-play worker that wrote the file (letters, digits, `.` and `-`)",
    "games": "self-play games the examples come from",
    "examples": "N, the examples in the file",
    "shapes": "each tensor's shape, as a list",
    "sha256": "SHA-256 of the tensor contents (names, dtypes, shapes, bytes); its first 16 hex digits name the file",
    "created": "when the worker wrote the file, seconds since the epoch",
    "settings": "the worker's search settings (simulations, worlds, temperature, ...)",
    "value_target": "what `value` measures: one of points, points-margin, contract, contract-sign",
}
BID_TENSORS = {
    "bid_x": "a seat's encoded view at its turn to bid",
    "bid_action": "the bid it made, 0..19",
    "bid_marks": "the marks its team then won (negative: lost), a whole number in -7..7",
    "decl_x": "the auction winner's view when it declared",
    "decl_points": "its team's final points under each declaration, 0..42 (-1: not played)",
}
BID_MANIFEST = {
    "kind": f'always "{bid_examples.KIND}"',
    "format_version": f"the bid-example format version (this card: {bid_examples.BID_EXAMPLES_FORMAT_VERSION})",
    "model_step": "the BidNet step that bid",
    "worker_id": "the worker that wrote the file",
    "hands": "hands played",
    "bid_examples": "N, the bid examples (rows of `bid_*`)",
    "decl_examples": "M, the declaration examples (rows of `decl_*`)",
    "shapes": "each tensor's shape, as a list",
    "sha256": "SHA-256 of the tensor contents; its first 16 hex digits name the file",
    "created": "when the worker wrote the file, seconds since the epoch",
    "settings": "the worker's settings",
}
SETTINGS_SHOWN = {  # LearnerSettings fields the model card shows, with their labels
    "lr": "learning rate (AdamW)",
    "warmup_steps": "warm-up steps",
    "cosine_steps": "cosine decay by step",
    "batch_size": "batch size",
    "training_steps_per_cycle": "gradient steps per learner step",
    "replay_buffer_size": "replay buffer (examples)",
    "eval_games": "games per evaluation match",
    "full_game": "full game (bidding too)",
}


@dataclass(frozen=True)
class EvalRow:
    """One evaluation match: the greedy policy against `opponent` (a player spec)."""

    opponent: str
    win_rate: float
    ci_low: float
    ci_high: float
    games: int | None  # None: a state from before the learner recorded it


def eval_rows(last_eval: Mapping[str, Any]) -> list[EvalRow]:
    """The matches recorded in a learner state's `last_eval` (strength.eval_metrics' keys, plus
    `eval/vs_OPPONENT_games`): random and heuristic first, any other opponent (e.g. pimc) after. Entries that are
    not numbers in [0, 1] are left out."""
    specs = [k[len("eval/vs_") : -len("_win_rate")] for k in last_eval if k.startswith("eval/vs_")]
    specs = [s for s in specs if s and f"eval/vs_{s}_win_rate" in last_eval]
    specs.sort(key=lambda s: (BASELINE_ORDER.index(s) if s in BASELINE_ORDER else len(BASELINE_ORDER), s))
    rows = []
    for spec in specs:
        try:
            rate = eval_rate(dict(last_eval), spec)
        except (TypeError, ValueError):
            continue
        if rate is None or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in rate):
            continue
        rows.append(EvalRow(spec, *rate, _count(last_eval.get(f"eval/vs_{spec}_games"))))
    return rows


def _count(value: object) -> int | None:
    """A positive whole number of games, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if value > 0 and value == int(value) else None


def _eval_results(rows: list[EvalRow], step: int | None) -> list[Any]:
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type=TASK,
            task_name="Texas 42: playing the hand",
            dataset_type="zeb-texas42-deals",
            dataset_name=f"Texas 42 deals, team-symmetric, vs {r.opponent}",
            dataset_config=r.opponent,
            dataset_args={
                "opponent": r.opponent,
                **({"games": r.games} if r.games is not None else {}),
                **({"step": step} if step is not None else {}),
            },
            metric_type="win_rate",
            metric_name=f"win rate vs {r.opponent}",
            metric_value=round(r.win_rate, 4),
            metric_args={"ci95_low": round(r.ci_low, 4), "ci95_high": round(r.ci_high, 4)},
        )
        for r in rows
    ]


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _promotion_text(promotion: Mapping[str, Any] | None) -> str:
    if not promotion:
        return "no record"
    try:
        return PromotionResult(**promotion).summary()
    except (TypeError, ValueError):
        return str(promotion.get("decision", "no record"))


def render_model_card(
    repo_id: str,
    name: str,
    config: ModelConfig,
    state: LearnerState,
    settings: Mapping[str, Any] | None = None,
    examples_repo: str | None = None,
    license: str = DEFAULT_LICENSE,
) -> str:
    """The weights repo's README.md for the promoted model of namespace `name`: Hub metadata (with the
    evaluation as `model-index`), the evaluation table, the model, its training and how to play it."""
    from huggingface_hub import ModelCard, ModelCardData

    settings = settings or {}
    rows = eval_rows(state.last_eval)
    eval_step = state.last_eval.get("step")
    eval_step = eval_step if isinstance(eval_step, int) else None
    model_name = repo_id.split("/")[-1] + ("" if name == DEFAULT_NAME else f"-{name}")
    data = ModelCardData(
        model_name=model_name,
        library_name=LIBRARY,
        license=license,
        tags=list(TAGS),
        pipeline_tag=TASK,
        datasets=[examples_repo] if examples_repo else None,
        eval_results=_eval_results(rows, eval_step) or None,
    )
    url = f"hf://{repo_id}"
    files = weights_filenames(f"{name}-best")
    store_spec = f"store:url={url}" + ("" if name == DEFAULT_NAME else f",name={name}") + ",which=best"
    serve = f"zeb serve --store {url}" + ("" if name == DEFAULT_NAME else f" --player {store_spec}")
    if rows:
        evaluation = _table(
            ("opponent", "win rate", "95% interval", "games"),
            [
                (
                    f"`{r.opponent}`",
                    percent(r.win_rate),
                    interval_text(r.ci_low, r.ci_high),
                    f"{r.games:,}" if r.games is not None else "n/a",
                )
                for r in rows
            ],
        )
        evaluation += (
            f"\n\nThe greedy policy (no search) against each opponent on fresh deals (seed {EVAL_SEED:,} + the "
            f"step), every deal played twice with the teams swapped; the interval is the normal 95% interval of "
            f"the per-deal-pair scores. Measured at step {eval_step if eval_step is not None else 'n/a'}."
        )
    else:
        evaluation = "Not evaluated yet."
    model_rows = [
        ("architecture", config.architecture),
        ("size preset", config.size),
        ("d_model / layers / heads / d_ff", f"{config.d_model} / {config.n_layers} / {config.n_heads} / {config.d_ff}"),
        ("parameters", f"{config.num_parameters():,}"),
        ("value target", config.value_target),
        ("weights", f"`{files['weights']}` (safetensors), `{files['config']}`, `{files['state']}`"),
        ("latest (not promoted)", f"`{name}.safetensors` and its config and state, pushed every few cycles"),
    ]
    if settings.get("full_game"):
        model_rows.append(("BidNet", f"`{bid_namespace(name)}.safetensors` (the auction's network)"))
    training_rows: list[tuple[str, Any]] = [
        ("learner steps", f"{state.step:,}"),
        ("optimizer steps", f"{state.optimizer_step:,}"),
        ("self-play games ingested", f"{state.total_games:,}"),
        ("examples ingested", f"{state.examples_ingested:,}"),
        ("examples refused (stale / other value target)",
         f"{state.examples_dropped_stale:,} / {state.examples_dropped_other_target:,}"),
        ("value target", state.value_target),
    ]  # fmt: skip
    training_rows += [(label, settings[key]) for key, label in SETTINGS_SHOWN.items() if settings.get(key) is not None]
    if examples_repo:
        training_rows.append(("examples", f"[{examples_repo}](/datasets/{examples_repo})"))
    body = f"""
# {model_name}: a Zeb model for Texas 42

A policy and value network for Texas 42 (the partnership dominoes game) trained by Zeb with
AlphaZero-style self-play: workers play games with search and upload examples, the learner trains on them and
promotes a model when it beats the one before. This is namespace `{name}`'s promoted model, step {state.step:,},
promoted {_when(state.time)}: {_promotion_text(state.promotion)}.

This card is written by the Zeb learner at each promotion; edits to it are overwritten.

## Evaluation

{evaluation}

## Model

{_table(("", ""), model_rows)}

## Training

{_table(("", ""), training_rows)}

## Use

With the Zeb project installed (`pip install -e .` in its checkout) and, for a private repo, a Hub token
(`HF_TOKEN` or `hf auth login`):

```bash
# play it in the browser (http://127.0.0.1:8042), following new promotions as they land
{serve}
# a team-symmetric match against the heuristic player
zeb eval {store_spec} vs heuristic --games 2000
```

In Python:

```python
from zeb_core.model.checkpoint import model_from_bundle
from zeb_core.store import open_store

bundle = open_store("{url}").pull_weights("{name}", "best")  # validated: checksums, shapes, config
model = model_from_bundle(bundle, "cpu")
```
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def _tensor_rows(tensors: Mapping[str, tuple[Any, ...]], docs: Mapping[str, str], rows_of: Any) -> list[tuple]:
    out = []
    for tname, spec in tensors.items():
        dtype, tail = spec[0], spec[1]
        shape = "[" + ", ".join([rows_of(spec), *map(str, tail)]) + "]"
        out.append((f"`{tname}`", str(dtype).removeprefix("torch."), shape, docs.get(tname, "")))
    return out


def render_dataset_card(license: str = DEFAULT_LICENSE, weights_repo: str | None = None) -> str:
    """The examples repo's README.md: the layout and the example-file formats (from zeb_core.formats' own
    tensor specs). It depends on nothing that changes while training, so it is written once."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license=license, pretty_name="Zeb self-play examples (Texas 42)", tags=list(TAGS), viewer=False
    )
    play = _tensor_rows({**examples.TENSORS, **examples.OPTIONAL_TENSORS}, EXAMPLE_TENSORS, lambda _: "N")
    bids = _tensor_rows(bid_examples.TENSORS, BID_TENSORS, lambda s: "N" if s[2] == "bid_examples" else "M")
    fields = ("field", "meaning")
    model = f" The model trained on them is [{weights_repo}](/{weights_repo})." if weights_repo else ""
    body = f"""
# Zeb self-play examples (Texas 42)

Training examples written by Zeb's self-play workers and read by its learner.{model} Files come and go: the
learner ingests each once and prunes old ones, so this repo holds a recent window of self-play, not a fixed
dataset. This card is written by the Zeb learner; edits to it are overwritten.

## Layout

| path | what |
|---|---|
| `YYYYMMDD_HH/WORKER_TIMESTAMP_HASH16.safetensors` | example files of the default namespace (`{DEFAULT_NAME}`) |
| `NAME/YYYYMMDD_HH/WORKER_TIMESTAMP_HASH16.safetensors` | example files of namespace NAME |
| `NAME-bid/...` | bid-example files of NAME's full game (below) |
| `quarantine/...` | files that failed validation, each beside a `.reason.json` saying why |

TIMESTAMP is the upload time (UTC, `YYYYMMDDTHHMMSSmmmZ`) and HASH16 the first 16 hex digits of the file's
`sha256`, so the same content is stored once. `YYYYMMDD_HH` is the hour folder of the upload (UTC; a later one
when the uploader's clock is behind the newest folder), marked by an `hour.json`; files directly in a namespace's
folder were written before hour folders.

## Example files (format version {examples.EXAMPLES_FORMAT_VERSION})

A [safetensors](https://huggingface.co/docs/safetensors) file (no pickle) of N examples, each a position where
a player chose a move:

{_table(("tensor", "dtype", "shape", "meaning"), play)}

with `OBS_FEATURES` = {OBS_FEATURES}. The manifest is a JSON object in the safetensors metadata under
the key `"{MANIFEST_KEY}"`:

{_table(fields, [(f"`{k}`", v) for k, v in EXAMPLE_MANIFEST.items()])}

## Bid-example files (format version {bid_examples.BID_EXAMPLES_FORMAT_VERSION})

The full game's auction, under `NAME-bid/`, with the same file names:

{_table(("tensor", "dtype", "shape", "meaning"), bids)}

Manifest, under the same key:

{_table(fields, [(f"`{k}`", v) for k, v in BID_MANIFEST.items()])}

## Reading

```python
import json
from safetensors.torch import load_file
from safetensors import safe_open

path = "WORKER_TIMESTAMP_HASH16.safetensors"
tensors = load_file(path)  # obs, legal, policy, value (and q)
with safe_open(path, "pt") as f:
    manifest = json.loads(f.metadata()["{MANIFEST_KEY}"])

# or validated (dtypes, shapes, ranges, checksum), as the learner reads them:
from zeb_core.formats.examples import decode_examples
example_file = decode_examples(open(path, "rb").read())
```
"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def hub_repo(backend: Backend) -> str | None:
    """OWNER/REPO when `backend` is a Hub repo (also inside a fault-injecting wrapper; the first of sharded
    examples repos, whose url adds " (+K shards)"), else None."""
    url = backend.url.split(" ", 1)[0]
    return url.removeprefix("hf://") if url.startswith("hf://") else None


class HubCards:
    """The learner's cards on a Hub store: the model card for each promotion's commit and the dataset card, once
    per process. Off the Hub it does nothing."""

    def __init__(self, store: Store, license: str = DEFAULT_LICENSE) -> None:
        self.store = store
        self.license = license
        self.model_repo = hub_repo(store.weights)
        self.examples_repo = hub_repo(store.examples)
        self.dataset_card_current = self.examples_repo is None  # nothing to write off the Hub

    def model_card_files(
        self, name: str, config: ModelConfig, state: LearnerState, settings: Mapping[str, Any] | None = None
    ) -> dict[str, bytes]:
        """{"README.md": the card} to add to the promotion's commit; {} off the Hub or when it cannot be rendered
        (logged: the promotion goes on without it, and the next one tries again)."""
        if self.model_repo is None:
            return {}
        try:
            text = render_model_card(self.model_repo, name, config, state, settings, self.examples_repo, self.license)
        except Exception:  # a card must never stop a promotion
            log.warning("could not render the model card; promoting without it", exc_info=True)
            return {}
        return {CARD_PATH: text.encode()}

    def write_dataset_card(self) -> bool:
        """Write the dataset card to the examples repo unless it holds it already (one read; a commit only when
        it differs); done once per process. False (logged) when it failed: the next promotion tries again. One
        attempt, no retries: this runs between training cycles."""
        if self.dataset_card_current:
            return True
        try:
            text = render_dataset_card(self.license, self.model_repo).encode()
            try:
                current: bytes | None = self.store.examples.read(CARD_PATH, None, MAX_CARD_BYTES)
            except (NotFound, TooLarge):
                current = None
            if current != text:
                self.store.examples.commit({CARD_PATH: text}, (), f"{TAG} dataset card", False)
        except (StoreError, OSError) as exc:
            log.warning("could not write the dataset card to %s (%s); trying again at the next promotion",
                        self.store.examples.url, exc)  # fmt: skip
            return False
        except Exception:  # a card must never stop training
            log.warning("could not render the dataset card; trying again at the next promotion", exc_info=True)
            return False
        self.dataset_card_current = True
        return True


__all__ = [
    "CARD_PATH",
    "EvalRow",
    "HubCards",
    "eval_rows",
    "hub_repo",
    "render_dataset_card",
    "render_model_card",
]
