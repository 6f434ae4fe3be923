"""The run's progress on a terminal: live bars, for the run and each flow, with the count, the time left and
the tally so far (rich),
with every row that did not pass said above it. Elsewhere (CI, a pipe) the command line prints plain,
ordered lines instead, each with its ``[n/total]``."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["LiveDisplay"]


class LiveDisplay:
    """A bar for the whole run and one per flow; rows arrive from the checks' threads and the workers' queue."""

    def __init__(self, flows: dict[str, int], console: Console | None = None) -> None:
        self._tally: dict[str, dict[str, int]] = {f: {"passed": 0, "failed": 0, "skipped": 0} for f in [*flows, ""]}
        self._lock = threading.Lock()
        self._progress = Progress(TextColumn("{task.fields[name]:<20}"), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                  console=console or Console(highlight=False), transient=True)
        self._tasks = {"": self._progress.add_task(self._describe(""), total=sum(flows.values()), name="all flows")}
        for flow, total in flows.items():
            self._tasks[flow] = self._progress.add_task(self._describe(flow), total=total, name=flow)

    def _describe(self, flow: str) -> str:
        t = self._tally[flow]
        return f"{t['passed']:>3} passed, [red]{t['failed']:>2} failed[/], {t['skipped']:>2} skipped"

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def advance(self, flow: str, status: str) -> None:
        with self._lock:
            for key in ("", flow) if flow in self._tasks else ("",):
                self._tally[key][status] = self._tally[key].get(status, 0) + 1
                self._progress.update(self._tasks[key], advance=1, description=self._describe(key))

    def say(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)

    def counts(self, flow: str = "") -> tuple[int, int]:
        """(rows done, rows in all) of a flow, or of the run."""
        task = self._progress.tasks[self._progress.task_ids.index(self._tasks[flow])]
        return int(task.completed), int(task.total or 0)
