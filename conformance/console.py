"""The run's progress on a terminal: a live bar with the count, the time left and the tally so far (rich),
with every row that did not pass said above it. Elsewhere (CI, a pipe) the command line prints plain,
ordered lines instead, each with its ``[n/total]``."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["LiveDisplay"]


class LiveDisplay:
    """One bar for the whole run; rows arrive from the checks' threads and the workers' queue."""

    def __init__(self, total: int) -> None:
        self._tally = {"passed": 0, "failed": 0, "skipped": 0}
        self._lock = threading.Lock()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                  console=Console(highlight=False), transient=True)
        self._task = self._progress.add_task(self._describe(), total=total)

    def _describe(self) -> str:
        t = self._tally
        return f"{t['passed']} passed, [red]{t['failed']} failed[/], {t['skipped']} skipped"

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def advance(self, status: str) -> None:
        with self._lock:
            self._tally[status] = self._tally.get(status, 0) + 1
            self._progress.update(self._task, advance=1, description=self._describe())

    def say(self, line: str) -> None:
        self._progress.console.print(line, markup=False)
