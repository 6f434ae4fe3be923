"""Comparing runs: what changed since a baseline (an earlier ``results.json``, or a folder of them).

A QA lead's question before a release is "what changed since the last one": each row of this run is marked
against the baseline as a new failure, fixed, still failing or newly skipped, and a folder of earlier results
gives a small trend of the pass counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Baseline", "BaselineError", "compare", "load_baseline"]

MARKS = ("new failure", "fixed", "still failing", "newly skipped")
TREND_RUNS = 10


class BaselineError(ValueError):
    """A baseline that cannot be read (said in one line by the command line)."""


@dataclass
class Baseline:
    """The earlier run compared against, and the earlier runs' counts for the trend (oldest first)."""

    path: str
    statuses: dict[tuple[str, str], str]
    trend: list[tuple[str, dict[str, int]]] = field(default_factory=list)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from None
    if not isinstance(data, dict) or "flows" not in data or "summary" not in data:
        raise BaselineError(f"{path}: not a talkcheck results.json (no 'flows' and 'summary')")
    return data


def _statuses(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(str(f["id"]), str(c["id"])): str(c["status"]) for f in data["flows"] for c in f.get("checks", [])}


def load_baseline(path: str) -> Baseline:
    """A results.json, or a folder holding earlier runs' results.json files (any depth): the newest is the
    baseline, and up to ten of them make the trend."""
    where = Path(path)
    if where.is_dir():
        files = sorted(where.rglob("results.json"), key=lambda p: p.stat().st_mtime)
        if not files:
            raise BaselineError(f"{where}: no results.json in this folder")
        runs = [(p, _read(p)) for p in files[-TREND_RUNS:]]
        newest_path, newest = runs[-1]
        trend = [(str(p.parent.relative_to(where)) if p.parent != where else p.name,
                  {k: int(d["summary"].get(k, 0)) for k in ("passed", "failed", "skipped")}) for p, d in runs]
        return Baseline(str(newest_path), _statuses(newest), trend)
    data = _read(where)
    return Baseline(str(where), _statuses(data))


def mark(now: str, before: str | None) -> str:
    """How a row changed: one of MARKS, or "" when it did not change in a way worth saying."""
    if now == "failed":
        return "still failing" if before == "failed" else "new failure"
    if before == "failed" and now == "passed":
        return "fixed"
    if now == "skipped" and before in ("passed", "failed"):
        return "newly skipped"
    return ""


def compare(rows: list[tuple[str, str, str]], baseline: Baseline) -> dict[tuple[str, str], str]:
    """(flow, check, status) of this run -> the mark of each row that changed (or still fails)."""
    out = {}
    for flow, check, status in rows:
        label = mark(status, baseline.statuses.get((flow, check)))
        if label:
            out[(flow, check)] = label
    return out
