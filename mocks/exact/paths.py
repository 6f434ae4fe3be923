"""Exact's paths are matched without regard to case: clients write both ``CRM/Accounts`` and ``crm/Accounts``.

A small ASGI middleware rewrites a request's path to the documented casing before routing, and refuses
unknown OData system query options there, as an OData server does before it dispatches.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse

from mocks.exact.entities import ENTITY_SETS
from mocks.exact.errors import error_body
from mocks.exact.odata import unknown_option

__all__ = ["CaseInsensitivePaths", "canonical_path"]

_Scope = dict[str, Any]


def _known() -> list[str]:
    names = {"current/Me", "sync/Deleted", "system/Users"}
    for entity_set in ENTITY_SETS.values():
        names.add(entity_set.path)
        if entity_set.sync_path:
            names.add(f"sync/{entity_set.sync_path}")
        if entity_set.bulk_path:
            names.add(f"bulk/{entity_set.bulk_path}")
    for entity_set in ENTITY_SETS.values():
        if entity_set.lines is not None:
            names.add(entity_set.lines.nav)
    return sorted(names, key=len, reverse=True)


_KNOWN = _known()


@functools.lru_cache(maxsize=4096)  # a pure function of the path; the same paths come again and again
def canonical_path(path: str) -> str:
    if not path.lower().startswith("/api/v1/"):
        return path
    rest = path[len("/api/v1/"):]
    head = ""
    first, _, remainder = rest.partition("/")
    if first.isdigit():
        head, rest = first + "/", remainder
    lowered = rest.lower()
    for name in _KNOWN:
        if lowered.startswith(name.lower()) and (len(rest) == len(name) or rest[len(name)] in "(/"):
            tail = rest[len(name):]
            for nav in _KNOWN:  # a navigation property after the key: .../SalesOrders(guid'…')/salesorderlines
                idx = tail.lower().rfind("/" + nav.lower())
                if idx >= 0 and idx + len(nav) + 1 == len(tail):
                    tail = tail[: idx + 1] + nav
                    break
            return f"/api/v1/{head}{name}{tail}"
    return path


class CaseInsensitivePaths:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            fixed = canonical_path(scope["path"])
            if fixed != scope["path"]:
                scope = dict(scope, path=fixed, raw_path=fixed.encode())
            # OData refuses a system query option it does not know, before any route sees the request.
            query = parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True)
            why = unknown_option(query) if fixed.startswith("/api/v1/") else None
            if why is not None:
                await JSONResponse(error_body(why), status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
