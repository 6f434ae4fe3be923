"""The Exact Online mock as a FastAPI app: vendor routes, Exact's error format and the admin plane."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from mocks.common.admin import ADMIN_PREFIX, admin_router, install_journal
from mocks.common.asgi import Scope, header
from mocks.common.fault_middleware import install_faults
from mocks.common.ratelimit import install_rate_limit
from mocks.common.route_index import IndexedRoutes, flattened
from mocks.exact.error_handlers import install_error_handlers
from mocks.exact.errors import error_body
from mocks.exact.openapi import finish_schema
from mocks.exact.paths import CaseInsensitivePaths
from mocks.exact.routes import build_router
from mocks.exact.state import ExactState

__all__ = ["create_app"]


def create_app(state: ExactState | None = None, *, rate_limits: bool = False) -> FastAPI:
    """Build a mock; pass a state to share or inspect it in-process.

    Rate limits are off by default in-process and on when served (``talkcheck serve``); the admin plane
    can switch them with ``{"rate_limits": {"enabled": true, "minutely": 60, "daily": 5000}}``.
    """
    app = FastAPI(
        title="Exact Online REST API (talkcheck mock)",
        version="v1",
        description="A stateful mock of the Exact Online REST API for the entities Sesam Talk synchronizes.",
        # FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, which a machine without the
        # internet cannot reach: they are off. The schema itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.exact = state or ExactState()
    app.state.exact.rate_limits.configure(enabled=rate_limits)

    def current() -> ExactState:
        current_state: ExactState = app.state.exact
        return current_state

    install_error_handlers(app)
    app.add_middleware(CaseInsensitivePaths)
    _install_limits(app, current)
    install_faults(app, lambda: current().faults,
                   lambda status, text: JSONResponse(error_body(text), status_code=status), ADMIN_PREFIX)
    install_journal(app, lambda: current().journal, lambda: current().clock)
    # One index for every route: a request tries only the routes its path's shape fits (route_index).
    app.router.routes.append(IndexedRoutes([*build_router(current).routes, *admin_router(current).routes]))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_schema(get_openapi(title=app.title, version=app.version,
                                                           description=app.description, routes=flattened(app.routes)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_DIVISION_PATH = re.compile(r"^/api/v1/(\d+)/")


def _install_limits(app: FastAPI, current: Callable[[], ExactState]) -> None:
    """60 calls a minute and 5,000 a day per app and division: a call is counted when it names a division
    and carries a token of a known app; any other call is left to the route to answer (or refuse)."""

    def caller(scope: Scope) -> tuple[str, int] | None:
        m = _DIVISION_PATH.match(scope.get("path", ""))
        auth = header(scope, "authorization") if m else ""
        client_id = current().app_for_token(auth[7:].strip()) if m and auth.lower().startswith("bearer ") else None
        return (client_id, int(m.group(1))) if m and client_id is not None else None

    def hit(who: tuple[str, int]) -> tuple[bool, dict[str, str]]:
        return current().rate_limits.hit(who[0], who[1], current().clock.now())

    install_rate_limit(app, enabled=lambda: current().rate_limits.enabled, caller=caller, hit=hit,
                       refuse=lambda _scope, headers: JSONResponse(error_body("API rate limit exceeded"),
                                                                   status_code=429, headers=headers))
