"""A clock the admin plane can set and advance, so tests cover time rules without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["MockClock"]


class MockClock:
    """Real time plus an offset, or frozen at a set instant; always timezone-aware UTC.

    Frozen time lets a test stage "this edit is later than that one" exactly; an offset lets a
    server run in real time while a test jumps past a token lifetime or a rate-limit window.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, instant: datetime, *, frozen: bool = True) -> None:
        if instant.tzinfo is None:
            raise ValueError("the clock takes timezone-aware instants")
        with self._lock:
            if frozen:
                self._frozen = instant.astimezone(UTC)
            else:
                self._frozen = None
                self._offset = instant.astimezone(UTC) - datetime.now(UTC)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
                return self._frozen
            self._offset += timedelta(seconds=seconds)
            return datetime.now(UTC) + self._offset

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None

    def describe(self) -> dict[str, object]:
        with self._lock:
            frozen = self._frozen is not None
        return {"now": self.now().isoformat(), "frozen": frozen}
