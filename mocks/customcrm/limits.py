"""Configurable rate limiting per tenant: a fixed one-minute window, 429 with Retry-After when exceeded.

The counters are state, free of HTTP; `app.py` puts them in front of the routes with the shared rate-limit
middleware (`mocks.common.ratelimit`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["TenantRateLimit"]


@dataclass
class TenantRateLimit:
    enabled: bool = False
    per_minute: int = 600
    _used: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, enabled: bool | None = None, per_minute: int | None = None) -> None:
        with self._lock:
            self.enabled = self.enabled if enabled is None else bool(enabled)
            self.per_minute = self.per_minute if per_minute is None else int(per_minute)

    def clear(self) -> None:
        with self._lock:
            self._used.clear()

    def hit(self, tenant: str, now_s: float) -> tuple[bool, int, int]:
        """Count a call; returns (allowed, remaining, seconds until the window resets)."""
        window = int(now_s // 60)
        reset_in = max(1, int((window + 1) * 60 - now_s))
        with self._lock:
            used = self._used.get((tenant, window), 0)
            if used >= self.per_minute:
                return False, 0, reset_in
            self._used[(tenant, window)] = used + 1
            return True, self.per_minute - used - 1, reset_in
