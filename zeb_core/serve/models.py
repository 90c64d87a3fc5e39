"""The models `zeb serve` offers its clients: the operator names them on the command line, a client by name.

`zeb serve --models DIR` offers every weights bundle under DIR (`NAME-config.json` beside `NAME.safetensors`, two
folders deep at most), named by its path below DIR without `.safetensors` (a folder's `model` or `bidnet` bundle
by the folder alone: `runs/x/model.safetensors` under `runs` is `x`); `--model NAME=PATH` offers one more by the
name given. A client's spec says `model=NAME` (`policy:model=x`, `net:model=x` for a BidNet), never a path, so the
server reads only what the operator offered, and what a client is told never shows where it lies on disk
(`scrub`). The list is read once at start: a file added later is offered after a restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zeb_core.formats.safe_io import load_json, read_bounded
from zeb_core.formats.weights import DEFAULT_NAME, MAX_JSON_FILE_BYTES, weights_filenames
from zeb_core.players.interface import SpecError

BIDNET_KIND = "bidnet"  # fullgame.bidnet's config `kind` (not imported: that module pulls in the auction)
BIDNET_NAME = "bidnet"
PLAY, BID = "play", "bid"  # a ZebNet (players: policy, mcts, rollout, pimc infer/prior) or a BidNet (net bidder)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")  # nothing a spec uses (, = + : space)
MAX_MODELS = 1000  # a folder with more is cut here: the list must stay readable and quick to build
MAX_DEPTH = 2


@dataclass(frozen=True)
class OfferedModel:
    """One model a client may name: where it lies (never told to a client), what it is, and its training step."""

    name: str
    path: Path  # the bundle's NAME.safetensors
    kind: str  # PLAY or BID
    step: int | None

    def entry(self) -> dict[str, Any]:
        """What GET /v1/players says of it."""
        what = "a play network" if self.kind == PLAY else "a BidNet (the full game's bidder)"
        step = f", step {self.step}" if self.step is not None else ""
        return {"name": self.name, "kind": self.kind, "description": f"{what}{step}"}


def _bundle_info(weights: Path) -> tuple[str, int | None]:
    """(kind, step) from the bundle's config and state JSON; FileNotFoundError/FormatError if it is not one."""
    files = weights_filenames(weights.name.removesuffix(".safetensors"))
    config = load_json(read_bounded(weights.parent / files["config"], MAX_JSON_FILE_BYTES, files["config"]), "config")
    kind = BID if isinstance(config, dict) and config.get("kind") == BIDNET_KIND else PLAY
    step = None
    try:
        state = load_json(read_bounded(weights.parent / files["state"], MAX_JSON_FILE_BYTES, files["state"]), "state")
        if isinstance(state, dict) and isinstance(state.get("step"), int):
            step = state["step"]
    except (OSError, ValueError):
        pass  # no state JSON: the step is unknown, the model still plays
    return kind, step


def _weights_file(path: Path) -> Path:
    """The NAME.safetensors of a bundle given as that file or as its folder (one `model` or `bidnet` bundle)."""
    if path.is_dir():
        for name in (DEFAULT_NAME, BIDNET_NAME):
            if (path / f"{name}.safetensors").is_file():
                return path / f"{name}.safetensors"
        found = sorted(path.glob("*-config.json"))
        if len(found) == 1:
            return path / f"{found[0].name.removesuffix('-config.json')}.safetensors"
        raise FileNotFoundError(f"{path} holds no single weights bundle (name its NAME.safetensors)")
    return path


def scan(folder: Path) -> dict[str, Path]:
    """name -> NAME.safetensors for every bundle under `folder` (MAX_DEPTH folders deep, MAX_MODELS at most)."""
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        depth = len(here.relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        for fname in sorted(files):
            stem = fname.removesuffix("-config.json")
            if stem == fname or not (here / f"{stem}.safetensors").is_file():
                continue
            rel = here.relative_to(folder)
            alone = stem in (DEFAULT_NAME, BIDNET_NAME) and depth > 0
            name = rel.as_posix() if alone else (rel / stem).as_posix()
            if NAME_RE.match(name) and name not in found and len(found) < MAX_MODELS:
                found[name] = here / f"{stem}.safetensors"
    return found


class OfferedModels:
    """The operator's models by name; `resolve` is the only way from a client's name to a file."""

    def __init__(self, named: Mapping[str, str | Path] | None = None, folders: list[str | Path] | None = None) -> None:
        """Bundles under each of `folders`, then `named` (a name given twice: the named one). SpecError for a
        folder or a named model that is not there: the operator's mistake, said at start."""
        paths: dict[str, Path] = {}
        for folder in folders or []:
            if not Path(folder).is_dir():
                raise SpecError(f"--models {folder}: no such folder")
            paths.update(scan(Path(folder)))
        for name, path in (named or {}).items():
            if not NAME_RE.match(name):
                raise SpecError(f"model name {name!r}: use letters, digits and . _ / - (no , = + : or spaces)")
            paths[name] = Path(path)
        self.models: dict[str, OfferedModel] = {}
        for name, path in paths.items():
            try:
                weights = _weights_file(path)
                kind, step = _bundle_info(weights)
            except (OSError, ValueError) as exc:
                raise SpecError(f"model {name!r} at {path}: not a weights bundle ({exc})") from None
            self.models[name] = OfferedModel(name, weights, kind, step)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, m in self.models.items() if kind is None or m.kind == kind)

    def resolve(self, name: str, kind: str) -> OfferedModel:
        """The model a client named, of `kind`; a SpecError that lists what is offered (names only) otherwise."""
        model = self.models.get(name)
        if model is None:
            offered = ", ".join(self.names(kind)) or "none (the operator offers them with zeb serve --models DIR)"
            raise SpecError(f"this server offers no model {name!r}; models offered: {offered}")
        if model.kind != kind:
            need = "a play network (policy, mcts, rollout, pimc)" if kind == PLAY else "a BidNet (net:model=NAME)"
            raise SpecError(f"model {name!r} is not {need}")
        return model

    def scrub(self, text: str) -> str:
        """`text` with every offered model's location replaced by its name: what a client may be told."""
        for model in self.models.values():
            text = text.replace(str(model.path), f"<model {model.name}>")
        for folder in sorted({str(m.path.parent) for m in self.models.values()}, key=len, reverse=True):
            text = text.replace(folder, "<a model's folder>")
        return text
