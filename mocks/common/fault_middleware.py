"""Applies a mock's fault rules (`faults`) to its requests, as ASGI middleware."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI, Response
from starlette.types import ASGIApp

from mocks.common.asgi import Message, Receive, Scope, Send
from mocks.common.faults import Faults

__all__ = ["install_faults"]

ErrorRenderer = Callable[[int, str], Response]


def install_faults(app: FastAPI, faults: Callable[[], Faults], render: ErrorRenderer, exempt: str) -> None:
    """Apply the current fault rules to every request outside the `exempt` path prefix (the admin plane)."""

    class _FaultMiddleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith(exempt):
                await self.inner(scope, receive, send)
                return
            rule = faults().pick(scope["method"], scope["path"])
            if rule is None:
                await self.inner(scope, receive, send)
                return
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.drop_response:
                async def discard(message: Message) -> None:
                    return None

                await self.inner(scope, receive, discard)  # the write is committed ...
                await render(504, "Gateway Timeout: the response was lost")(scope, receive, send)  # ... the answer lost
                return
            if rule.status is not None:
                await render(rule.status, f"Injected fault: HTTP {rule.status}")(scope, receive, send)
                return
            await self.inner(scope, receive, send)

    app.add_middleware(_FaultMiddleware)
