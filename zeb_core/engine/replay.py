"""Replay recorded hands (the golden JSONL format) through the batched engine and report every disagreement.

All records are replayed together as one batch: one `legal_mask`/`apply` per play index for every hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zeb_core.engine.state import N_PLAYS, GameState, InvalidDealError

VALUE_TOLERANCE = 5e-6


@dataclass
class ReplayResult:
    total: int = 0
    failures: dict[int, list[str]] = field(default_factory=dict)  # record index -> differences

    @property
    def passed(self) -> int:
        return self.total - len(self.failures)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


def load_records(path: Path) -> tuple[list[dict], dict[int, list[str]]]:
    """Parse a JSONL file; a line that is not a complete record is reported, not raised."""
    records: list[dict] = []
    problems: dict[int, list[str]] = {}
    required = ("hands", "decl", "bidder", "bid", "steps")
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        idx = len(records)
        try:
            rec = json.loads(line)
            missing = [k for k in required if k not in rec]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            if len(rec["steps"]) != N_PLAYS:
                raise ValueError(f"{len(rec['steps'])} steps, expected {N_PLAYS}")
        except (ValueError, TypeError) as exc:
            problems[idx] = [f"line {lineno}: not a valid record: {exc}"]
            rec = None
        rec_entry = rec if rec is not None else {}
        rec_entry["_line"] = lineno
        records.append(rec_entry)
    return records, problems


def check_records(records: list[dict], device: str = "cpu") -> ReplayResult:
    result = ReplayResult(total=len(records))
    good = [i for i, r in enumerate(records) if "steps" in r]
    for i, r in enumerate(records):
        if "steps" not in r:
            result.failures[i] = [f"line {r.get('_line')}: not a valid record"]
    if not good:
        return result
    recs = [records[i] for i in good]

    def fail(j: int, msg: str) -> None:
        result.failures.setdefault(good[j], []).append(f"line {recs[j]['_line']}: {msg}")

    try:
        state = GameState.from_deal(
            torch.tensor([r["hands"] for r in recs], device=device),
            torch.tensor([r["decl"] for r in recs], device=device),
            torch.tensor([r["bidder"] for r in recs], device=device),
            torch.tensor([r["bid"] for r in recs], device=device),
            torch.tensor([r.get("leader", r["bidder"]) for r in recs], device=device),
        )
    except (InvalidDealError, ValueError, TypeError) as exc:
        if len(recs) == 1:
            fail(0, f"invalid deal: {exc}")
            return result
        # Fall back to one record at a time so a single bad deal only fails its own line.
        return _check_one_by_one(records, device, result)

    alive = torch.ones(len(recs), dtype=torch.bool)
    for step in range(N_PLAYS):
        legal = state.legal_mask().cpu()
        current = state.current.cpu()
        moves = torch.full((len(recs),), -1, dtype=torch.int64)
        for j, r in enumerate(recs):
            if not alive[j]:
                continue
            s = r["steps"][step]
            ours = sorted(legal[j].nonzero().flatten().tolist())
            if int(current[j]) != s["player"]:
                fail(j, f"play {step + 1}: engine says seat {int(current[j])} moves, record says {s['player']}")
            if ours != sorted(s["legal"]):
                fail(j, f"play {step + 1}: legal {ours} != recorded {sorted(s['legal'])}")
            moves[j] = s["play"]
            if not (0 <= s["play"] < 28) or not legal[j, s["play"]]:
                fail(j, f"play {step + 1}: recorded play {s['play']} is illegal here; hand abandoned")
                alive[j] = False
        moves = torch.where(alive, moves, torch.full_like(moves, -1))
        # Abandoned hands are finished off by marking them done so the batch keeps going.
        if not bool(alive.all()):
            state.n_plays[~alive.to(state.device)] = N_PLAYS
        state.apply(moves.to(state.device), check=False)

    winners, points = state.trick_winners.cpu(), state.trick_points.cpu()
    team_points, values = state.team_points.cpu(), state.values().cpu()
    for j, r in enumerate(recs):
        if not alive[j]:
            continue
        for k, trick in enumerate(r.get("tricks", [])):
            if int(winners[j, k]) != trick["winner"] or int(points[j, k]) != trick["points"]:
                fail(
                    j,
                    f"trick {k + 1}: winner {int(winners[j, k])} with {int(points[j, k])} points"
                    f" != recorded winner {trick['winner']} with {trick['points']}",
                )
        if "team_points" in r and team_points[j].tolist() != r["team_points"]:
            fail(j, f"team points {team_points[j].tolist()} != recorded {r['team_points']}")
        if "outcome" in r:
            diff = (values[j].double() - torch.tensor(r["outcome"], dtype=torch.float64)).abs().max()
            if float(diff) > VALUE_TOLERANCE:
                fail(j, f"values {[round(v, 6) for v in values[j].tolist()]} != recorded {r['outcome']}")
    return result


def _check_one_by_one(records: list[dict], device: str, result: ReplayResult) -> ReplayResult:
    for i, r in enumerate(records):
        if "steps" not in r:
            continue
        sub = check_records([r], device)
        if sub.failures:
            result.failures[i] = sub.failures[0]
    return result


def check_file(path: Path, device: str = "cpu") -> ReplayResult:
    records, problems = load_records(path)
    result = check_records(records, device)
    for i, msgs in problems.items():
        result.failures[i] = msgs
    return result
