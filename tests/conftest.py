"""Shared fixtures: both mocks in-process, their actors, and an engine wired to them."""

from __future__ import annotations

import http.cookiejar
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from mocks.common.transport import InProcessTransport
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.customcrm.state import DEFAULT_API_KEY, CustomcrmState
from mocks.exact.app import create_app as create_exact_app
from mocks.exact.state import DEFAULT_DIVISION, ExactState

settings.register_profile("tests", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("tests")


@pytest.fixture
def cookie_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of every answer a client reads for cookies (httpx hands each to the standard cookie jar)."""
    reads: list[str] = []
    original = http.cookiejar.CookieJar.extract_cookies

    def counted(self: http.cookiejar.CookieJar, response: object, request: object) -> None:
        reads.append(str(getattr(request, "full_url", "")))
        original(self, response, request)  # type: ignore[arg-type]

    monkeypatch.setattr(http.cookiejar.CookieJar, "extract_cookies", counted)
    return reads


@pytest.fixture
def exact_state() -> ExactState:
    return ExactState()


@pytest.fixture
def crm_state() -> CustomcrmState:
    return CustomcrmState()


# One app of each mock per test process, each test with a state of its own: an app reads its state from
# `app.state` on every request, so a new state is a new mock, and building the Exact app's seventy routes
# (a third of a second) once instead of for each of some three hundred tests saves a minute of the suite.
@pytest.fixture(scope="session")
def _exact_app() -> FastAPI:
    return create_exact_app(ExactState())


@pytest.fixture(scope="session")
def _crm_app() -> FastAPI:
    return create_customcrm_app(CustomcrmState())


@pytest.fixture
def exact_http(exact_state: ExactState, _exact_app: FastAPI) -> Iterator[httpx.Client]:
    _exact_app.state.exact = exact_state
    transport = InProcessTransport(_exact_app)
    with httpx.Client(transport=transport, base_url="http://exact.test") as client:
        yield client


@pytest.fixture
def crm_http(crm_state: CustomcrmState, _crm_app: FastAPI) -> Iterator[httpx.Client]:
    _crm_app.state.customcrm = crm_state
    transport = InProcessTransport(_crm_app)
    with httpx.Client(transport=transport, base_url="http://customcrm.test",
                      headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}) as client:
        yield client


@pytest.fixture
def division() -> int:
    return DEFAULT_DIVISION
