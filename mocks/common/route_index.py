"""The mocks' routes, found by the shape of the path instead of one by one.

A router tries its routes in order until one matches. The Exact mock has 72 routes (eight per entity set),
so a call to the last of them (``sync/Deleted``, read on every engine pass) was matched against all 72, and
FastAPI's included routers match twice: routing was two thirds of such a call's cost in process. An
``IndexedRoutes`` holds the routes of a router and tries only those whose path could match: the same
number of segments and a last segment that fits (``Accounts({key})`` for ``Accounts(guid'…')``,
``$count`` for ``$count``). Among those it keeps the routes' order, so the answer (the first full match,
else the first partial one, which is a 405) is the one the whole list would give.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

__all__ = ["IndexedRoutes", "flattened", "path_shape"]

_MATCHED = "talkcheck.indexed_route"


def path_shape(template: str) -> tuple[int, str, bool] | None:
    """A route path's number of segments, its last segment's literal start, and whether that is the whole
    last segment; None when a parameter may span segments (``{rest:path}``), which fits any path."""
    if ":path}" in template:
        return None
    segments = template.split("/")
    last = segments[-1]
    brace = last.find("{")
    return (len(segments), last if brace < 0 else last[:brace], brace < 0)


class IndexedRoutes(BaseRoute):
    """Routes tried only where their path's shape fits, in their own order; one route of the app's router."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes: list[BaseRoute] = list(routes)
        self._anywhere: list[int] = []
        self._exact: dict[tuple[int, str], list[int]] = defaultdict(list)
        self._prefixed: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for position, route in enumerate(self.routes):
            shape = path_shape(str(getattr(route, "path", "")))
            if shape is None or not getattr(route, "path", ""):
                self._anywhere.append(position)
            elif shape[2]:
                self._exact[(shape[0], shape[1])].append(position)
            else:
                self._prefixed[shape[0]].append((shape[1], position))

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that could match `path`, in the order they were given."""
        segments = path.split("/")
        count, last = len(segments), segments[-1]
        positions = [*self._anywhere, *self._exact.get((count, last), ())]
        positions += [p for start, p in self._prefixed.get(count, ()) if last.startswith(start) and last != start]
        return [self.routes[p] for p in sorted(positions)]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return Match.FULL, {**child_scope, _MATCHED: route}
            if match == Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:
            return Match.PARTIAL, {**partial[1], _MATCHED: partial[0]}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_MATCHED)
        await route.handle(scope, receive, send)


def flattened(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes with each index opened: what the OpenAPI schema is built from."""
    return [inner for route in routes for inner in (route.routes if isinstance(route, IndexedRoutes) else [route])]
