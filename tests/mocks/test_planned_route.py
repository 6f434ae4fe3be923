"""The planned routes answer as FastAPI's own handlers do: same status, same body, same errors in the same
order, on every route of both mocks; and what the plan does not cover is left to FastAPI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Optional

import httpx
import pytest
from fastapi import APIRouter, Body, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st

from mocks.common.planned_route import PlannedRoute, plan_of, takes_many
from mocks.common.route_index import flattened
from mocks.common.transport import InProcessTransport
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.customcrm.state import DEFAULT_API_KEY, CustomcrmState
from mocks.exact.app import create_app as create_exact_app
from mocks.exact.state import DEFAULT_DIVISION, ExactState
from tests.mocks.test_exact_mock import authorize

_PARAM = re.compile(r"\{[^}]+\}")
_GUID = "0b5a7f8e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"


def test_what_takes_every_value_given() -> None:
    for many in (list[str], set[int], tuple[str, ...], list[str] | None, Optional[list[int]]):  # noqa: UP045
        assert takes_many(many), many
    for one in (str, bytes, int, str | None, float | None, dict[str, str]):
        assert not takes_many(one), one


def test_every_vendor_route_of_both_mocks_is_planned() -> None:
    for app in (create_exact_app(ExactState()), create_customcrm_app(CustomcrmState())):
        for route in flattened(app.routes):
            if isinstance(route, APIRoute) and not route.path.startswith("/_admin"):
                plan_of(route)  # raises NotPlanned, naming what it does not cover


def test_a_route_the_plan_does_not_cover_keeps_fastapis_handler() -> None:
    router = APIRouter(route_class=PlannedRoute)

    @router.post("/seed")
    async def seed(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return payload

    app = FastAPI()
    app.router.routes.extend(router.routes)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
        assert client.post("/seed", json={"a": 1}).json() == {"a": 1}
        assert client.post("/seed", content=b"[").status_code == 422


def _fields(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield from _fields(sub)
    yield from (*dependant.query_params, *dependant.header_params)


class _Pair:
    """One mock built twice over one state: with FastAPI's handlers and with the planned ones."""

    def __init__(self, system: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.system = system
        if system == "exact":
            state: Any = ExactState()
            with monkeypatch.context() as patch:
                patch.setattr(PlannedRoute, "get_route_handler", APIRoute.get_route_handler)
                fastapi_app = create_exact_app(state)
            planned_app = create_exact_app(state)
        else:
            state = CustomcrmState()
            with monkeypatch.context() as patch:
                patch.setattr(PlannedRoute, "get_route_handler", APIRoute.get_route_handler)
                fastapi_app = create_customcrm_app(state)
            planned_app = create_customcrm_app(state)
        state.clock.set(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # frozen: both answer at one instant
        base = f"http://{system}.test"
        self.fastapi = httpx.Client(transport=InProcessTransport(fastapi_app), base_url=base)
        self.planned = httpx.Client(transport=InProcessTransport(planned_app), base_url=base)
        self.routes = [r for r in flattened(planned_app.routes)
                       if isinstance(r, APIRoute) and not r.path.startswith(("/_admin", "/api/oauth2"))]
        if system == "exact":
            self.key = authorize(self.planned)["access_token"]
            state.seed({"accounts": [{"Name": "Paged", "Code": str(n)} for n in range(3)]})
        else:
            self.key = DEFAULT_API_KEY
            for n in range(3):
                self.planned.post("/api/v1/customers", json={"Name": f"C{n}", "Email": f"c{n}@example.com"},
                                  headers={"Authorization": f"Bearer {self.key}"})


@pytest.fixture(scope="module")
def pairs() -> Iterator[dict[str, _Pair]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        built = {system: _Pair(system, monkeypatch) for system in ("exact", "customcrm")}
    yield built
    for pair in built.values():
        pair.fastapi.close()
        pair.planned.close()


_TEXT = st.sampled_from(["", "1", "0", "-1", "60", "abc", "1001", "a b", str(DEFAULT_DIVISION), f"guid'{_GUID}'",
                         "Timestamp gt 1", "Name eq 'x'", "ID,Name", "Lines", "customers", "7", "*", '"3"'])


@st.composite
def _requests(draw: st.DrawFn, pair: _Pair) -> tuple[str, str, list[tuple[str, str]], dict[str, str]]:
    route = draw(st.sampled_from(pair.routes))
    path = _PARAM.sub(lambda _: draw(_TEXT), route.path)
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    for field in _fields(route.dependant):
        for _ in range(draw(st.integers(0, 2 if takes_many(field.field_info.annotation) else 1))):
            if field.field_info.in_.value == "query":
                query.append((field.alias, draw(_TEXT)))
            else:
                headers[field.alias] = draw(_TEXT)
    auth = draw(st.sampled_from(["good", "good", "good", "none", "wrong", "basic"]))
    if auth != "none":
        headers["Authorization"] = {"good": f"Bearer {pair.key}", "wrong": "Bearer nope",
                                    "basic": "Basic eDp5"}[auth]
    method = draw(st.sampled_from(sorted(route.methods)))
    if method != "GET" and auth == "good":  # a write that passes would change the state both answer from
        headers["Authorization"] = "Bearer nope"
    return method, path, query, headers


@pytest.mark.parametrize("system", ["exact", "customcrm"])
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_a_planned_route_answers_as_fastapis_handler(pairs: dict[str, _Pair], system: str,
                                                      data: st.DataObject) -> None:
    pair = pairs[system]
    method, path, query, headers = data.draw(_requests(pair))
    expected = pair.fastapi.request(method, path, params=query, headers=headers)
    answer = pair.planned.request(method, path, params=query, headers=headers)
    assert answer.status_code == expected.status_code, (method, path, query, expected.text, answer.text)
    for name in ("content-type", "www-authenticate", "etag", "location", "allow"):
        assert answer.headers.get(name) == expected.headers.get(name), name
    if "json" in expected.headers.get("content-type", ""):
        assert answer.json() == expected.json()
    else:
        assert answer.content == expected.content
