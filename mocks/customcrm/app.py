"""The Customcrm mock as a FastAPI app: the published contract, problem details and the admin plane."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mocks.common.admin import ADMIN_PREFIX, admin_router, install_journal
from mocks.common.edges import optional_not_nullable
from mocks.common.faults import install_faults
from mocks.customcrm.contract import components
from mocks.customcrm.errors import install_error_handlers, problem_response
from mocks.customcrm.ratelimit import install_rate_limit
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
    install_rate_limit(app, current().rate_limit, current().clock, lambda key: current().tenant_name_for_key(key))
    install_faults(app, lambda: current().faults, lambda status, text: problem_response(status, text), ADMIN_PREFIX)
    install_journal(app, lambda: current().journal, lambda: current().clock)
    app.include_router(build_router(current))
    app.include_router(admin_router(current))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
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
