"""Both systems' clocks, as a check stages "this edit is later than that one" (or "at the same instant").

On the mocks the clocks are stopped and moved through their admin planes, so the order of two edits is
exact (Exact's modification times have millisecond precision). A sandbox keeps real time: a later edit is
staged by waiting long enough for both systems' modification times to tell the edits apart, and edits at
the very same instant cannot be staged at all.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from conformance.systems import Systems

__all__ = ["Clocks"]

SYSTEMS = ("exact", "customcrm")


class Clocks:
    def __init__(self, systems: Systems) -> None:
        self.systems = systems

    def freeze(self) -> datetime:
        """Stop both mocks' clocks at one instant."""
        now = datetime.now(UTC).replace(microsecond=0)
        if self.systems.safe:
            return now
        for system in SYSTEMS:
            self.systems.admin(system, "clock", {"set": now.isoformat(), "frozen": True})
        return now

    @property
    def can_stage_same_instant(self) -> bool:
        return not self.systems.safe

    def advance(self, seconds: float) -> None:
        """Let time pass between two edits: the mocks' clocks jump; against a sandbox, a real wait."""
        if self.systems.safe:
            time.sleep(1.1)
            return
        for system in SYSTEMS:
            self.systems.admin(system, "clock", {"advance": seconds})

    def release(self) -> None:
        """Back to real time on both mocks alike (a shared offset would drift by the time between the two
        calls, and "which edit is later" across the systems would then depend on it)."""
        if self.systems.safe:
            return
        for system in SYSTEMS:
            self.systems.admin(system, "clock", {"reset": True})
