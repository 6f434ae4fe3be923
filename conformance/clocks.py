"""Both systems' clocks, as a check stages "this edit is later than that one" (or "at the same instant").

On the mocks the clocks are stopped and moved through their admin planes, so the order of two edits is
exact (Exact's modification times have millisecond precision). A sandbox keeps real time: a later edit is
staged by waiting long enough for both systems' modification times to tell the edits apart, and edits at
the very same instant cannot be staged at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from conformance.systems import Systems

__all__ = ["Clocks"]

SYSTEMS = ("exact", "customcrm")


class Clocks:
    """The clocks as one check sees them. Checks side by side share the mocks' clocks: the first to stop them
    stops them, the last to let them go lets them go, a check's jump moves them for all (a later edit stays
    later), and writes staged at one instant hold them so that no other check moves them in between."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems

    def freeze(self) -> None:
        """Stop both mocks' clocks at one instant (already stopped by another check: they stay so)."""
        if self.systems.safe:
            return
        with self.systems.clock_lock:
            if self.systems.clock_holds == 0:
                now = datetime.now(UTC).replace(microsecond=0)
                for system in SYSTEMS:
                    self.systems.admin(system, "clock", {"set": now.isoformat(), "frozen": True})
            self.systems.clock_holds += 1

    @contextmanager
    def same_instant(self) -> Iterator[None]:
        """Writes at one instant: no other check moves the stopped clocks until they are done."""
        with self.systems.clock_lock:
            yield

    @property
    def can_stage_same_instant(self) -> bool:
        return not self.systems.safe

    def advance(self, seconds: float) -> None:
        """Let time pass between two edits: the mocks' clocks jump; against a sandbox, a real wait."""
        if self.systems.safe:
            time.sleep(1.1)
            return
        with self.systems.clock_lock:
            for system in SYSTEMS:
                self.systems.admin(system, "clock", {"advance": seconds})

    def release(self) -> None:
        """Back to real time on both mocks alike (a shared offset would drift by the time between the two
        calls, and "which edit is later" across the systems would then depend on it)."""
        if self.systems.safe:
            return
        with self.systems.clock_lock:
            self.systems.clock_holds = max(0, self.systems.clock_holds - 1)  # a freeze that failed held none
            if self.systems.clock_holds == 0:
                for system in SYSTEMS:
                    self.systems.admin(system, "clock", {"reset": True})
