"""The rating ladder's players: which weights of a namespace (newest, best, earlier promoted models) and which
baselines play the round robin, each set of weights once however many roles it has, with labels that tell them
apart. `tasks.ladder` and `flows.ladder` run the matches and the fit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import torch

from zeb_core.formats.weights import WeightsBundle
from zeb_core.model.checkpoint import model_from_bundle
from zeb_core.players import make_player
from zeb_core.players.builtin import PolicyPlayer
from zeb_core.store import Store, StoreError

log = logging.getLogger("zeb.ladder")


@dataclass
class LadderEntry:
    label: str
    kind: str  # "baseline" or "weights"
    spec: str = ""  # baseline spec
    step: int | None = None
    sha: str | None = None
    roles: list[str] = field(default_factory=list)
    bundle: WeightsBundle | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("bundle")
        return d


def ladder_entries(
    store: Store | None, name: str, past_best: int, baselines: list[str], warn: Callable[..., None] = log.warning
) -> list[LadderEntry]:
    """The newest weights, the best, up to `past_best` earlier promoted models, then the baselines; the same
    weights under two roles (newest = best) play once. A promoted push that cannot be read is skipped (`warn`)."""
    entries: list[LadderEntry] = []
    by_sha: dict[str, LadderEntry] = {}

    def add(role: str, bundle: WeightsBundle | None) -> None:
        if bundle is None:
            return
        sha = bundle.state.get("weights_sha256")
        if sha and sha in by_sha:
            by_sha[sha].roles.append(role)
            return
        entry = LadderEntry("", "weights", step=bundle.step, sha=sha, roles=[role], bundle=bundle)
        entries.append(entry)
        if sha:
            by_sha[sha] = entry

    if store is not None:
        add("newest", store.pull_weights(name))
        add("best", store.pull_weights(name, "best"))
        pushes = store.history(name, which="best", limit=past_best + 1)
        for push in pushes[1 : past_best + 1]:  # the first is the current best
            try:
                bundle = store.pull_weights(name, "best", revision=push.revision)
            except StoreError as exc:
                warn("skipping promoted push %s: %s", push.revision, exc)
                continue
            when = datetime.fromtimestamp(push.time, UTC).strftime("%Y-%m-%d %H:%M")
            add(f"promoted {when}", bundle)
    for entry in entries:
        entry.label = f"{name}@{entry.step} ({', '.join(entry.roles)})"
    for spec in baselines:
        entries.append(LadderEntry(spec, "baseline", spec=spec, roles=["baseline"]))
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):  # two different weights at one step: tell them apart
        for e in entries:
            if e.kind == "weights" and labels.count(e.label) > 1:
                e.label = f"{e.label} {(e.sha or '')[:6]}"
    return entries


def ladder_player(entry: LadderEntry, device: str, seed: int) -> Any:
    """The player an entry stands for: its baseline spec, or its weights' greedy policy."""
    if entry.kind == "baseline":
        return make_player(entry.spec, device, seed)
    assert entry.bundle is not None
    return PolicyPlayer(model_from_bundle(entry.bundle, device), torch.device(device), name=entry.label)


__all__ = ["LadderEntry", "ladder_entries", "ladder_player"]
