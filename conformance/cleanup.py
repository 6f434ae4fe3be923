"""``talkcheck cleanup``: remove what sandbox runs left behind, from their manifests.

A run that was killed, crashed or ran out of calls keeps its manifest (see :mod:`conformance.manifest`).
Its clean-up is the run's own clean-up, taken up again from where the run began: every Exact record
created since then in the collections it noted, dependants first, and every Customcrm record the run
created (those it wrote down, and any created since its start of the change feed). Calls are paced within
the sandbox's limits and guarded like a run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.manifest import RunManifest, manifest_dir, pending_runs
from conformance.sandbox import SandboxSettings
from conformance.systems import Systems
from sync.service import scrub

__all__ = ["CleanupResult", "cleanup_runs"]


@dataclass
class CleanupResult:
    run_id: str
    removed: int = 0
    left: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


def cleanup_runs(settings: SandboxSettings, run_id: str | None = None,
                 out: Callable[[str], None] = print) -> list[CleanupResult]:
    """Clean up after every run with a manifest beside the config (or only `run_id`'s)."""
    results: list[CleanupResult] = []
    for path in pending_runs(manifest_dir(settings.source), run_id):
        record = RunManifest.read(path)
        systems = Systems.sandbox(settings, record.run_id)
        scope = systems.scope
        assert scope is not None
        scope.manifest = None  # the clean-up writes nothing new into the run's manifest
        try:
            scope.restore(record)
            systems.cleanup(final=True)
        finally:
            systems.close()
        result = CleanupResult(record.run_id, scope.removed, [scrub(t, settings.secrets) for t in scope.left],
                               dict(systems.calls))
        RunManifest(path.parent, record.run_id).finish(left=len(result.left))
        out(f"run {record.run_id}: {result.removed} records removed, {len(result.left)} left "
            f"({', '.join(f'{k} {v}' for k, v in sorted(result.calls.items()))} calls)")
        for text in result.left:
            out(f"  left: {text}")
        results.append(result)
    return results
