"""Shared fixtures: both mocks in-process, their actors, and an engine wired to them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
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
def exact_state() -> ExactState:
    return ExactState()


@pytest.fixture
def crm_state() -> CustomcrmState:
    return CustomcrmState()


@pytest.fixture
def exact_http(exact_state: ExactState) -> Iterator[httpx.Client]:
    transport = InProcessTransport(create_exact_app(exact_state))
    with httpx.Client(transport=transport, base_url="http://exact.test") as client:
        yield client


@pytest.fixture
def crm_http(crm_state: CustomcrmState) -> Iterator[httpx.Client]:
    transport = InProcessTransport(create_customcrm_app(crm_state))
    with httpx.Client(transport=transport, base_url="http://customcrm.test",
                      headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}) as client:
        yield client


@pytest.fixture
def division() -> int:
    return DEFAULT_DIVISION
