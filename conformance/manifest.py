"""The run manifest: what a sandbox run has created, on disk before the run goes on, so that a run that
crashed, was killed or ran out of calls can still be cleaned up afterwards (``talkcheck cleanup``).

A manifest is a file of JSON lines beside the sandbox config (``.talkcheck-runs/RUN_ID.jsonl``), appended
and flushed to disk entry by entry:

- ``begin``: where every Exact sync collection and the Customcrm change feed stood when the run began, and
  when it began. Everything created in either system after that point is the run's (a sandbox run assumes
  nobody else creates records there meanwhile, as the README says), so even a record whose creation was
  answered after the kill is found again;
- ``created``: a record the checklist created itself, by system, collection and id;
- ``left``: the run's own clean-up could not remove everything (out of calls, say). A run that left
  nothing behind removes its manifest.

It holds record ids and positions, never a credential.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ManifestError", "RunManifest", "RunRecord", "manifest_dir", "pending_runs"]

SUFFIX = ".jsonl"


class ManifestError(ValueError):
    """A manifest that cannot be read: named with its path and line."""


def manifest_dir(config_path: str | Path) -> Path:
    """Where a sandbox config's runs keep their manifests."""
    return Path(config_path).resolve().parent / ".talkcheck-runs"


@dataclass
class RunRecord:
    """What a manifest says about one run."""

    run_id: str
    started: str = ""
    exact_marks: dict[str, int] = field(default_factory=dict)
    crm_cursor: str = ""
    created: list[tuple[str, str, str]] = field(default_factory=list)  # (system, collection, id)


class RunManifest:
    """The manifest of one run, written as the run goes."""

    def __init__(self, directory: Path, run_id: str) -> None:
        self.directory = directory
        self.run_id = run_id
        self.path = directory / f"{run_id}{SUFFIX}"

    def _append(self, entry: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def begin(self, started: str, exact_marks: dict[str, int], crm_cursor: str) -> None:
        self._append({"kind": "begin", "run_id": self.run_id, "started": started, "exact_marks": exact_marks,
                      "crm_cursor": crm_cursor})

    def created(self, system: str, collection: str, record_id: str) -> None:
        self._append({"kind": "created", "system": system, "collection": collection, "id": record_id})

    def finish(self, *, left: int) -> None:
        """The run's clean-up is over: with nothing left, the manifest goes; else it stays for `cleanup`."""
        if left == 0:
            self.path.unlink(missing_ok=True)
        else:
            self._append({"kind": "left", "count": left})

    @staticmethod
    def read(path: Path) -> RunRecord:
        """A manifest as written; a last line cut short by a kill is ignored, anything else malformed is not."""
        record = RunRecord(path.name.removesuffix(SUFFIX))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read the run manifest: {exc.strerror or exc}") from exc
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # the run was killed while writing this line
                raise ManifestError(f"{path}:{number}: not a manifest entry") from None
            kind = entry.get("kind")
            if kind == "begin":
                record.started = str(entry["started"])
                record.exact_marks = {str(k): int(v) for k, v in entry["exact_marks"].items()}
                record.crm_cursor = str(entry["crm_cursor"])
            elif kind == "created":
                record.created.append((str(entry["system"]), str(entry["collection"]), str(entry["id"])))
        if not record.started:
            raise ManifestError(f"{path}: the run never began (no 'begin' entry)")
        return record


def pending_runs(directory: Path, run_id: str | None = None) -> list[Path]:
    """The manifests of runs that may have left records behind (one run's, when `run_id` is given)."""
    if run_id is not None:
        path = directory / f"{run_id}{SUFFIX}"
        return [path] if path.exists() else []
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
