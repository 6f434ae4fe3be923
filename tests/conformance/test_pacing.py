"""Living within Exact's limits: the waits read off the headers, a 429 waited out and sent again, the day's
limit a clean stop, never a crash."""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.pacing import LONGEST_WAIT_S, MARGIN_S, DailyLimitReached, LimitState, Pacer, wait_after
from conformance.sandbox import BudgetExhausted

NOW = 1_800_000_000.0


@given(left=st.integers(1, 60), reset_in=st.floats(-120, 120))
def test_no_wait_while_calls_are_left(left: int, reset_in: float) -> None:
    headers = {"X-RateLimit-Minutely-Remaining": str(left),
               "X-RateLimit-Minutely-Reset": str(int((NOW + reset_in) * 1000))}
    assert wait_after(headers, 200, NOW) is None


@given(reset_in=st.floats(-3600, 3600, allow_nan=False), status=st.sampled_from([200, 429]))
def test_a_spent_minute_waits_for_its_reset_within_sane_bounds(reset_in: float, status: int) -> None:
    headers = {"X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": str(int((NOW + reset_in) * 1000))}
    wait = wait_after(headers, status, NOW)
    assert wait is not None and MARGIN_S <= wait <= LONGEST_WAIT_S + MARGIN_S
    if 0 <= reset_in <= LONGEST_WAIT_S - 1:
        assert wait == pytest.approx(reset_in + MARGIN_S, abs=0.01)


@given(seconds=st.integers(0, 600))
def test_retry_after_is_obeyed_and_clamped(seconds: int) -> None:
    wait = wait_after({"Retry-After": str(seconds)}, 429, NOW)
    assert wait == min(LONGEST_WAIT_S, seconds) + MARGIN_S


def test_a_429_without_hints_still_waits() -> None:
    assert wait_after({}, 429, NOW) == 1.0
    assert wait_after({"Retry-After": "soon"}, 429, NOW) == 1.0


class _Window:
    """A server allowing `limit` calls per window of `seconds`, announcing it as Exact does."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.start, self.used, self.refused, self.served = time.time(), 0, 0, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = time.time()
        if now >= self.start + self.seconds:
            self.start, self.used = now, 0
        reset = str(int((self.start + self.seconds) * 1000))
        if self.used >= self.limit:
            self.refused += 1
            return httpx.Response(429, headers={"X-RateLimit-Minutely-Remaining": "0",
                                                "X-RateLimit-Minutely-Reset": reset}, json={"error": "limit"})
        self.used += 1
        self.served += 1
        return httpx.Response(200, headers={"X-RateLimit-Minutely-Remaining": str(self.limit - self.used),
                                            "X-RateLimit-Minutely-Reset": reset, "X-RateLimit-Remaining": "4000",
                                            "X-RateLimit-Limit": "5000"}, json={"ok": True})


def test_the_pacer_holds_calls_back_until_the_window_opens() -> None:
    server = _Window(limit=3, seconds=0.3)
    state = LimitState("exact")
    client = httpx.Client(transport=Pacer(httpx.MockTransport(server), state), base_url="http://exact.test")
    answers = [client.get("/api/v1/1/crm/Accounts").status_code for _ in range(10)]
    assert answers == [200] * 10
    assert server.served == 10 and server.refused == 0  # it waited before sending, never ran into a 429
    assert state.waits >= 2 and state.day_left == 4000 and state.day_limit == 5000


def test_a_429_is_waited_out_and_sent_again() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}, json={}),
                    httpx.Response(429, headers={"Retry-After": "0"}, json={}),
                    httpx.Response(201, json={"created": True})])
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return next(answers)

    state = LimitState("exact")
    client = httpx.Client(transport=Pacer(httpx.MockTransport(handler), state), base_url="http://exact.test")
    response = client.post("/api/v1/1/crm/Accounts", json={"Name": "Acme"})
    assert response.status_code == 201 and state.refused == 2
    assert bodies == [b'{"Name":"Acme"}'] * 3  # the same request each time


def test_the_days_limit_stops_the_run_cleanly() -> None:
    day_spent = httpx.Response(429, headers={"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                                             "X-RateLimit-Reset": "1"}, json={})
    client = httpx.Client(transport=Pacer(httpx.MockTransport(lambda r: day_spent), LimitState("exact")),
                          base_url="http://exact.test")
    with pytest.raises(DailyLimitReached, match="calls for the day are used up") as info:
        client.get("/api/v1/1/crm/Accounts")
    assert isinstance(info.value, BudgetExhausted)  # the runner skips the rest, as for a spent budget
