"""Exact Online's API limits: 60 calls a minute and 5,000 a day per app and division (reference §2.10).

Windows are the calendar minute and the UTC day of the mock's clock. Every division-scoped answer carries
the six ``X-RateLimit-*`` headers with resets in epoch milliseconds; a 429 for the minute omits the daily
headers and vice versa. Calls without a division (``current/Me``, OAuth) are neither counted nor marked.
The counters are state, free of HTTP; `app.py` puts them in front of the routes with the shared
rate-limit middleware (`mocks.common.ratelimit`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["RateLimits"]


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


@dataclass
class RateLimits:
    enabled: bool = False
    minutely: int = 60
    daily: int = 5000
    _minute: dict[tuple[str, int, int], int] = field(default_factory=dict)
    _day: dict[tuple[str, int, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, enabled: bool | None = None, minutely: int | None = None, daily: int | None = None) -> None:
        with self._lock:
            self.enabled = self.enabled if enabled is None else bool(enabled)
            self.minutely = self.minutely if minutely is None else int(minutely)
            self.daily = self.daily if daily is None else int(daily)

    def clear(self) -> None:
        with self._lock:
            self._minute.clear()
            self._day.clear()

    def hit(self, app: str, division: int, now: datetime) -> tuple[bool, dict[str, str]]:
        """Count one call; returns whether it is allowed and the headers to send."""
        minute_start = now.replace(second=0, microsecond=0)
        day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        minute_key = (app, division, int(minute_start.timestamp()) // 60)
        day_key = (app, division, day_start.date().isoformat())
        with self._lock:
            used_minute = self._minute.get(minute_key, 0)
            used_day = self._day.get(day_key, 0)
            daily_headers = {"X-RateLimit-Limit": str(self.daily),
                             "X-RateLimit-Reset": str(_ms(day_start + timedelta(days=1)))}
            minute_headers = {"X-RateLimit-Minutely-Limit": str(self.minutely),
                              "X-RateLimit-Minutely-Reset": str(_ms(minute_start + timedelta(minutes=1)))}
            if used_day >= self.daily:
                return False, daily_headers | {"X-RateLimit-Remaining": "0"}
            if used_minute >= self.minutely:
                return False, minute_headers | {"X-RateLimit-Minutely-Remaining": "0"}
            self._minute[minute_key] = used_minute + 1
            self._day[day_key] = used_day + 1
            return True, daily_headers | minute_headers | {
                "X-RateLimit-Remaining": str(self.daily - used_day - 1),
                "X-RateLimit-Minutely-Remaining": str(self.minutely - used_minute - 1)}
