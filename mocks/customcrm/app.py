"""The Customcrm mock as a FastAPI app: the published contract, problem details and the admin plane."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mocks.common.admin import ADMIN_PREFIX, admin_router, install_journal
from mocks.common.faults import install_faults
from mocks.customcrm.errors import install_error_handlers, problem_response
from mocks.customcrm.models import RESOURCES
from mocks.customcrm.routes import build_router
from mocks.customcrm.state import CustomcrmState

__all__ = ["create_app"]


def create_app(state: CustomcrmState | None = None) -> FastAPI:
    app = FastAPI(
        title="Customcrm REST API",
        version="1.0.0",
        description="The REST contract a Customcrm system exposes to Sesam Talk, as talkcheck defines it.",
    )
    app.state.customcrm = state or CustomcrmState()

    def current() -> CustomcrmState:
        current_state: CustomcrmState = app.state.customcrm
        return current_state

    install_error_handlers(app)
    install_faults(app, lambda: current().faults, lambda status, text: problem_response(status, text), ADMIN_PREFIX)
    install_journal(app, lambda: current().journal, lambda: current().clock)
    app.include_router(build_router(current))
    app.include_router(admin_router(current))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for resource in RESOURCES.values():
                components[resource.model.__name__] = resource.model.model_json_schema(
                    ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
