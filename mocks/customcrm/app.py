"""The Customcrm mock as a FastAPI app: the published contract, problem details and the admin plane."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi

from mocks.common.admin import ADMIN_PREFIX, admin_router, install_journal
from mocks.common.asgi import Scope, header
from mocks.common.edges import optional_not_nullable
from mocks.common.fault_middleware import install_faults
from mocks.common.ratelimit import install_rate_limit
from mocks.common.route_index import IndexedRoutes, flattened
from mocks.customcrm.contract import components
from mocks.customcrm.error_handlers import install_error_handlers, problem_response
from mocks.customcrm.routes import build_router
from mocks.customcrm.state import CustomcrmState

__all__ = ["create_app"]


def _drop_fastapi_422(responses: dict[str, Any]) -> None:
    """FastAPI documents its own 422 body on operations with parameters; the contract answers problem details,
    so only FastAPI's part goes (the contract's own 422, where an operation has one, stays)."""
    answer = responses.get("422")
    if answer is None or "HTTPValidationError" not in json.dumps(answer):
        return
    content = answer.get("content", {})
    content.pop("application/json", None)
    if content:
        answer["description"] = _CONTRACT_422
    else:
        del responses["422"]


_CONTRACT_422 = "A field is invalid; every invalid field is named"


def create_app(state: CustomcrmState | None = None) -> FastAPI:
    app = FastAPI(
        title="Customcrm REST API",
        version="1.0.0",
        description="The REST contract a Customcrm system exposes to Sesam Talk, as talkcheck defines it.",
        # FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, which a machine without the
        # internet cannot reach: they are off. The schema itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.customcrm = state or CustomcrmState()

    def current() -> CustomcrmState:
        current_state: CustomcrmState = app.state.customcrm
        return current_state

    install_error_handlers(app)
    _install_limits(app, current)
    install_faults(app, lambda: current().faults, lambda status, text: problem_response(status, text), ADMIN_PREFIX)
    install_journal(app, lambda: current().journal, lambda: current().clock)
    # One index for every route: a request tries only the routes its path's shape fits (route_index).
    app.router.routes.append(IndexedRoutes([*build_router(current).routes, *admin_router(current).routes]))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=flattened(app.routes))
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components())
            for item in schema["paths"].values():
                for op in item.values():
                    # FastAPI adds its own 422 shape; the contract answers problem details instead.
                    responses = op.get("responses", {})
                    _drop_fastapi_422(responses)
                    for parameter in op.get("parameters", []):
                        optional_not_nullable(parameter)
                    responses.pop("default", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_limits(app: FastAPI, current: Callable[[], CustomcrmState]) -> None:
    """A tenant's calls a minute, when switched on: counted for every API call with a known key."""

    def caller(scope: Scope) -> str | None:
        auth = header(scope, "authorization")
        if not scope.get("path", "").startswith("/api/") or not auth.lower().startswith("bearer "):
            return None
        tenant: str | None = current().tenant_name_for_key(auth[7:].strip())
        return tenant

    def hit(tenant: str) -> tuple[bool, dict[str, str]]:
        limit = current().rate_limit
        allowed, remaining, reset_in = limit.hit(tenant, current().clock.now().timestamp())
        headers = {"RateLimit-Limit": str(limit.per_minute), "RateLimit-Remaining": str(remaining),
                   "RateLimit-Reset": str(reset_in)}
        return allowed, headers if allowed else headers | {"Retry-After": str(reset_in)}

    def refuse(scope: Scope, headers: dict[str, str]) -> Response:
        return problem_response(429, f"More than {current().rate_limit.per_minute} requests this minute.",
                                headers=headers, instance=scope["path"])

    install_rate_limit(app, enabled=lambda: current().rate_limit.enabled, caller=caller, hit=hit, refuse=refuse)
