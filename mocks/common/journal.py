"""The request journal of a mock: the last requests it answered, and counts since it started.

Plain data, no HTTP: the mocks' states hold one, and the admin plane (``mocks.common.admin``) serves it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

__all__ = ["READS", "Journal", "JournalEntry"]

READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class JournalEntry:
    at: str
    method: str
    path: str
    query: str
    status: int


@dataclass
class Journal:
    """The last requests a mock answered, for tests and for counting the calls a run made."""

    limit: int = 10_000
    entries: deque[JournalEntry] = field(default_factory=deque)
    # Every request since the mock started, by method; a reset clears the entries but not these counts,
    # so a run that resets the mock between examples can still report the calls it made.
    totals: dict[str, int] = field(default_factory=dict)
    # The entries that are not reads, also on their own (numbered in the order they came): a check that asks
    # which writes a record had scans these (their paths lowered once), a fraction of the journal, not every
    # read of the run.
    _writes: deque[tuple[int, str, JournalEntry]] = field(default_factory=deque)
    _added: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: JournalEntry) -> None:
        with self._lock:
            self.totals[entry.method] = self.totals.get(entry.method, 0) + 1
            self._added += 1
            self.entries.append(entry)
            while len(self.entries) > self.limit:
                self.entries.popleft()
            if entry.method not in READS:
                self._writes.append((self._added, entry.path.lower(), entry))
            oldest = self._added - len(self.entries)  # entries numbered up to this one have left the journal
            while self._writes and self._writes[0][0] <= oldest:
                self._writes.popleft()

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._writes.clear()

    def snapshot(self, *, path_contains: str = "", methods: frozenset[str] = frozenset()) -> list[JournalEntry]:
        """The entries, oldest first; only those whose path holds `path_contains` (ignoring case) and whose
        method is one of `methods`, when given. A check that asks about one record reads its own requests,
        not a copy of the whole journal that grows with every call of the run."""
        needle = path_contains.lower()
        with self._lock:
            if methods and not methods & READS:
                return [e for _n, path, e in self._writes if e.method in methods and needle in path]
            # The method first: most entries are reads, and a set lookup costs less than lowering a path.
            return [e for e in self.entries if (not methods or e.method in methods)
                    and (not needle or needle in e.path.lower())]
