"""The admin plane both mocks share: reset, seed, clock, state dump and the request journal.

It lives under ``/_admin``, a prefix no vendor path uses (moto's ``/moto-api`` idea), so a client of the
vendor API can never reach it by accident. Each mock supplies a small adapter with its own state.
"""


from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, Body, FastAPI, HTTPException, Response
from starlette.types import ASGIApp

from mocks.common.asgi import Message, Receive, Scope, Send
from mocks.common.clock import MockClock
from mocks.common.faults import Faults
from mocks.common.journal import Journal, JournalEntry
from mocks.common.planned_route import PlannedRoute

__all__ = ["ADMIN_PREFIX", "AdminTarget", "Journal", "JournalEntry", "admin_router", "install_journal"]

ADMIN_PREFIX = "/_admin"


class AdminTarget(Protocol):
    """What a mock's state offers the admin plane."""

    clock: MockClock
    journal: Journal
    faults: Faults

    def reset(self) -> None: ...

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    def dump(self) -> dict[str, Any]: ...


def install_journal(app: FastAPI, journal: Callable[[], Journal], clock: Callable[[], MockClock]) -> None:
    """Record every vendor request (not admin ones) with its status."""

    class _JournalMiddleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
                await self.inner(scope, receive, send)
                return
            status = 0

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            await self.inner(scope, receive, capture)
            journal().add(JournalEntry(at=clock().now().isoformat(), method=scope["method"], path=scope["path"],
                                       query=scope.get("query_string", b"").decode("latin-1"), status=status))

    app.add_middleware(_JournalMiddleware)


def admin_router(target: Callable[[], AdminTarget]) -> APIRouter:
    """Routes of the admin plane; `target` returns the mock's current state object."""
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"], include_in_schema=False, route_class=PlannedRoute)

    @router.post("/reset", status_code=204)
    async def reset() -> Response:
        target().reset()
        return Response(status_code=204)

    @router.post("/seed")
    async def seed(payload: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        try:
            return target().seed(payload)
        except (KeyError, ValueError, TypeError) as exc:
            raise HTTPException(status_code=400, detail=f"bad seed payload: {exc}") from exc

    @router.get("/state")
    async def state() -> dict[str, Any]:
        return target().dump()

    @router.get("/journal")
    async def journal(path_contains: str = "", methods: str = "") -> list[dict[str, Any]]:
        """The requests answered; `path_contains` (ignoring case) and `methods` (comma-separated) narrow it."""
        wanted = frozenset(m.strip().upper() for m in methods.split(",") if m.strip())
        return [e.__dict__ for e in target().journal.snapshot(path_contains=path_contains, methods=wanted)]

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Requests answered since the mock started (not cleared by a reset), by method."""
        totals = dict(target().journal.totals)
        return {"requests": sum(totals.values()), "by_method": totals}

    @router.delete("/journal", status_code=204)
    async def clear_journal() -> Response:
        target().journal.clear()
        return Response(status_code=204)

    @router.get("/faults")
    async def get_faults() -> list[dict[str, Any]]:
        return target().faults.describe()

    @router.post("/faults")
    async def set_faults(payload: dict[str, Any] = Body(...)) -> list[dict[str, Any]]:  # noqa: B008
        """Replace the fault rules: ``{"rules": [{"path": "crm/Accounts", "status": 503, "rate": 0.3}], "seed": 1}``."""
        try:
            target().faults.set(list(payload.get("rules", [])), payload.get("seed"))
        except TypeError as exc:
            raise HTTPException(status_code=400, detail=f"bad fault rule: {exc}") from exc
        return target().faults.describe()

    @router.delete("/faults", status_code=204)
    async def clear_faults() -> Response:
        target().faults.clear()
        return Response(status_code=204)

    @router.get("/clock")
    async def get_clock() -> dict[str, object]:
        return target().clock.describe()

    @router.post("/clock")
    async def set_clock(payload: dict[str, Any] = Body(...)) -> dict[str, object]:  # noqa: B008
        clock = target().clock
        try:
            if "set" in payload:
                clock.set(datetime.fromisoformat(str(payload["set"])), frozen=bool(payload.get("frozen", True)))
            if "advance" in payload:
                clock.advance(float(payload["advance"]))
            if payload.get("reset"):
                clock.reset()
        except (ValueError, TypeError) as exc:
            raise HTTPException(status_code=400, detail=f"bad clock payload: {exc}") from exc
        return clock.describe()

    return router
