"""The Exact Online mock as a FastAPI app: vendor routes, Exact's error format and the admin plane."""

from __future__ import annotations

from fastapi import FastAPI

from mocks.common.admin import admin_router, install_journal
from mocks.exact.errors import install_error_handlers
from mocks.exact.routes import build_router
from mocks.exact.state import ExactState

__all__ = ["create_app"]


def create_app(state: ExactState | None = None) -> FastAPI:
    """Build a mock; pass a state to share or inspect it in-process."""
    app = FastAPI(
        title="Exact Online REST API (talkcheck mock)",
        version="v1",
        description="A stateful mock of the Exact Online REST API for the entities Sesam Talk synchronizes.",
    )
    app.state.exact = state or ExactState()

    def current() -> ExactState:
        current_state: ExactState = app.state.exact
        return current_state

    install_error_handlers(app)
    install_journal(app, lambda: current().journal, lambda: current().clock)
    app.include_router(build_router(current))
    app.include_router(admin_router(current))
    return app
