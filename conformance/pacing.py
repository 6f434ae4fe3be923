"""Living within a vendor's rate limits: read what the answers say is left, wait instead of failing.

Exact Online allows 60 calls a minute and 5,000 a day per app and division, and says after every call how
many are left (``X-RateLimit-Minutely-Remaining``, ``X-RateLimit-Remaining``) and when each window starts
again (``X-RateLimit-Minutely-Reset``, ``X-RateLimit-Reset``, epoch milliseconds). Customcrm answers a 429
with ``Retry-After`` (seconds). A checklist run against a sandbox is a long series of calls, so for it a
limit is a design constraint: :class:`Pacer` holds back the next call until the window opens again when
the last answer said none is left, waits out a 429 and sends the call again, and stops the run cleanly
(:class:`DailyLimitReached`) when the day's calls are gone. It never turns a 429 into a crash.

The waiting itself is a pure function of the headers (:func:`wait_after`), so it is tested on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from conformance.sandbox import BudgetExhausted

__all__ = ["DailyLimitReached", "LimitState", "Pacer", "wait_after"]

# A little past the announced reset: the server's clock and ours are not one clock.
MARGIN_S = 0.5
# A window is at most a minute; a wait computed longer than this comes from a skewed clock.
LONGEST_WAIT_S = 61.0


class DailyLimitReached(BudgetExhausted):
    """The app's calls for the day are used up: the checks still to run are reported as skipped (and the
    clean-up is left to ``talkcheck cleanup`` the next day)."""


def _number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def wait_after(headers: Mapping[str, str], status: int, now_s: float) -> float | None:
    """How long to hold back before the next call, from one answer's headers; None when there is no need.

    A 429 or a spent minute waits until the minute's reset (or ``Retry-After``); a reset in the past or
    absurdly far ahead (clock skew) is clamped to a sane wait. A 429 without any hint waits a full second.
    """
    retry_after = _number(headers, "Retry-After")
    minute_left = _number(headers, "X-RateLimit-Minutely-Remaining")
    minute_reset = _number(headers, "X-RateLimit-Minutely-Reset")
    if status != 429 and (minute_left is None or minute_left > 0):
        return None
    if retry_after is not None:
        return min(LONGEST_WAIT_S, max(0.0, retry_after)) + (MARGIN_S if status == 429 else 0.0)
    if minute_reset is not None:
        return min(LONGEST_WAIT_S, max(0.0, minute_reset / 1000 - now_s)) + MARGIN_S
    return 1.0 if status == 429 else None


def daily_spent(headers: Mapping[str, str], status: int) -> bool:
    """A 429 for the day (Exact omits the minute's headers then, and says 0 left for the day)."""
    return status == 429 and _number(headers, "X-RateLimit-Remaining") == 0 and \
        "X-RateLimit-Minutely-Remaining" not in headers


@dataclass
class LimitState:
    """What one system's answers said about its limits, shared by every client of that system in a run."""

    system: str
    day_left: int | None = None
    day_limit: int | None = None
    minute_limit: int | None = None
    blocked_until: float = 0.0  # monotonic time before which no call is sent
    waited_s: float = 0.0
    waits: int = 0
    refused: int = 0  # 429 answers seen (each waited out and sent again)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # One call at a time per system: a call is sent only after the answer to the one before has told how
    # many are left (checks side by side would otherwise all read "calls left" and send at once).
    turn: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: httpx.Response) -> None:
        headers = response.headers
        with self.lock:
            left = _number(headers, "X-RateLimit-Remaining")
            if left is not None:
                self.day_left = int(left)
            limit = _number(headers, "X-RateLimit-Limit")
            if limit is not None:
                self.day_limit = int(limit)
            minute = _number(headers, "X-RateLimit-Minutely-Limit")
            if minute is not None:
                self.minute_limit = int(minute)
            if response.status_code == 429:
                self.refused += 1
            wait = wait_after(headers, response.status_code, time.time())
            if wait:
                self.blocked_until = max(self.blocked_until, time.monotonic() + wait)

    def as_dict(self) -> dict[str, object]:
        return {"day_left": self.day_left, "day_limit": self.day_limit, "minute_limit": self.minute_limit,
                "waited_s": round(self.waited_s, 1), "waits": self.waits, "refused_429": self.refused}


class Pacer(httpx.BaseTransport):
    """A transport that keeps its calls within the limits the answers announce (see the module's text).

    Every call first waits until the shared `state` lets calls through again; a 429 is noted, waited out
    and sent again (it guarantees nothing was done), up to `attempts` times; a 429 for the day raises
    :class:`DailyLimitReached`.
    """

    def __init__(self, inner: httpx.BaseTransport, state: LimitState, *, attempts: int = 6,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.inner = inner
        self.state = state
        self.attempts = attempts
        self.sleep = sleep

    def _hold(self) -> None:
        while True:
            with self.state.lock:
                wait = self.state.blocked_until - time.monotonic()
                if wait > 0:
                    self.state.waited_s += wait
                    self.state.waits += 1
            if wait <= 0:
                return
            self.sleep(wait)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self.attempts):
            with self.state.turn:
                self._hold()
                response = self.inner.handle_request(request)
                self.state.note(response)
            if response.status_code != 429:
                return response
            if daily_spent(response.headers, 429):
                response.close()
                raise DailyLimitReached(f"{self.state.system}: the app's calls for the day are used up "
                                        f"(limit {self.state.day_limit or '?'}); the checks still to run are skipped")
            if attempt + 1 < self.attempts:
                response.read()
                response.close()
        return response

    def close(self) -> None:
        self.inner.close()
