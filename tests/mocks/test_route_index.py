"""The route index answers as the whole list of routes would, tried in order (mocks/common/route_index.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Match

from mocks.common.route_index import IndexedRoutes, flattened, path_shape
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.exact.app import create_app as create_exact_app

_EXACT = create_exact_app()
_CRM = create_customcrm_app()
_ROUTES = {"exact": flattened(_EXACT.routes), "customcrm": flattened(_CRM.routes)}
_PARAM = re.compile(r"\{[^}]+\}")


def _linear(routes: list[BaseRoute], scope: dict[str, object]) -> tuple[Match, BaseRoute | None]:
    """What a router does without an index: the first full match, else the first partial one."""
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return match, route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


def _templates(system: str) -> list[str]:
    return sorted({str(getattr(r, "path", "")) for r in _ROUTES[system] if getattr(r, "path", "")})


@st.composite
def requests(draw: st.DrawFn, system: str) -> dict[str, object]:
    """A request for a path made from one of the system's routes: its parameters filled with drawn text,
    and now and then a segment cut, added or changed, so that near misses are drawn too."""
    template = draw(st.sampled_from(_templates(system)))
    value = st.text(alphabet="abcXYZ019'()-$", min_size=1, max_size=12)
    path = _PARAM.sub(lambda _: draw(value), template)
    segments = path.split("/")
    change = draw(st.sampled_from(["none", "none", "cut", "add", "alter", "slash"]))
    if change == "cut" and len(segments) > 2:
        segments.pop()
    elif change == "add":
        segments.append(draw(value))
    elif change == "alter":
        at = draw(st.integers(1, len(segments) - 1))
        segments[at] = segments[at] + draw(value)
    elif change == "slash":
        segments.append("")
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return {"type": "http", "path": "/".join(segments), "method": method, "root_path": "", "headers": []}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_ROUTES)).flatmap(lambda system: st.tuples(st.just(system), requests(system))))
def test_the_index_matches_the_route_the_whole_list_would(case: tuple[str, dict[str, object]]) -> None:
    system, scope = case
    routes = _ROUTES[system]
    expected_match, expected_route = _linear(routes, scope)
    match, child_scope = IndexedRoutes(routes).matches(dict(scope))
    assert match == expected_match, (system, scope["method"], scope["path"])
    if expected_route is not None:
        assert child_scope["endpoint"] is expected_route.endpoint, (system, scope["method"], scope["path"])


def test_a_path_parameter_spanning_segments_fits_any_path() -> None:
    assert path_shape("/files/{rest:path}") is None
    assert path_shape("/api/v1/{division}/crm/Accounts({key})") == (6, "Accounts(", False)
    assert path_shape("/api/v1/customers") == (4, "customers", True)


def test_the_mocks_route_through_the_index() -> None:
    """Both apps hold their routes in one index, and the schema still lists every documented route."""
    for app in (_EXACT, _CRM):
        assert any(isinstance(route, IndexedRoutes) for route in app.routes)
    assert "/api/v1/{division}/sync/Deleted" in _EXACT.openapi()["paths"]
    assert "/api/v1/customers/{record_id}" in _CRM.openapi()["paths"]


def test_routes_keep_their_order_where_two_fit_one_path() -> None:
    """Declared first wins, as in a router: `/items/{name}` before `/items/special` takes `special`."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def answer(text: str) -> object:
        return lambda request: PlainTextResponse(text)

    first, second = Route("/items/{name}", answer("any")), Route("/items/special", answer("special"))
    scope = {"type": "http", "path": "/items/special", "method": "GET", "root_path": "", "headers": []}
    for routes in ([first, second], [second, first]):
        match, child_scope = IndexedRoutes(routes).matches(dict(scope))
        assert match == Match.FULL and child_scope["endpoint"] is routes[0].endpoint
