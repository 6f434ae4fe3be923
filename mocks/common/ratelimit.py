"""One rate-limit middleware for both mocks: who is calling, whether the call is allowed, and how a refusal
looks are each system's own (Exact counts per app and division and answers in its OData error format with
``X-RateLimit-*`` headers; Customcrm counts per tenant and answers with a problem document and
``Retry-After``); counting a call, marking every answer and refusing is the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp

from mocks.common.asgi import Receive, Scope, Send, with_headers

__all__ = ["Verdict", "install_rate_limit"]

# (allowed, the headers to send with the answer or the refusal)
Verdict = tuple[bool, dict[str, str]]


def install_rate_limit(app: FastAPI, *, enabled: Callable[[], bool], caller: Callable[[Scope], Any],
                       hit: Callable[[Any], Verdict], refuse: Callable[[Scope, dict[str, str]], Response]) -> None:
    """Count every call whose `caller` (from the request) is not None with `hit`; mark the answer with its
    headers, or answer with `refuse` instead of the route."""

    class _RateLimitMiddleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            who = caller(scope) if scope["type"] == "http" and enabled() else None
            if who is None:  # not counted: the route answers as it would
                await self.inner(scope, receive, send)
                return
            allowed, headers = hit(who)
            if not allowed:
                await refuse(scope, headers)(scope, receive, send)
                return
            await self.inner(scope, receive, with_headers(send, headers))

    app.add_middleware(_RateLimitMiddleware)
