"""Exact's paths are matched without regard to case: clients write both ``CRM/Accounts`` and ``crm/Accounts``.

A small ASGI middleware rewrites a request's path to the documented casing before routing.
"""

from __future__ import annotations

from typing import Any

from mocks.exact.entities import ENTITY_SETS

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
        await self.app(scope, receive, send)
