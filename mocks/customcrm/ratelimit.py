"""Configurable rate limiting per tenant: a fixed one-minute window, 429 with Retry-After when exceeded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.types import ASGIApp

from mocks.common.asgi import Receive, Scope, Send, header, with_headers
from mocks.common.clock import MockClock
from mocks.customcrm.errors import problem_response

__all__ = ["TenantRateLimit", "install_rate_limit"]


@dataclass
class TenantRateLimit:
    enabled: bool = False
    per_minute: int = 600
    _used: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, enabled: bool | None = None, per_minute: int | None = None) -> None:
        with self._lock:
            self.enabled = self.enabled if enabled is None else bool(enabled)
            self.per_minute = self.per_minute if per_minute is None else int(per_minute)

    def clear(self) -> None:
        with self._lock:
            self._used.clear()

    def hit(self, tenant: str, now_s: float) -> tuple[bool, int, int]:
        """Count a call; returns (allowed, remaining, seconds until the window resets)."""
        window = int(now_s // 60)
        reset_in = max(1, int((window + 1) * 60 - now_s))
        with self._lock:
            used = self._used.get((tenant, window), 0)
            if used >= self.per_minute:
                return False, 0, reset_in
            self._used[(tenant, window)] = used + 1
            return True, self.per_minute - used - 1, reset_in


def install_rate_limit(app: FastAPI, limit: TenantRateLimit, clock: MockClock,
                       tenant_for_key: Callable[[str], str | None]) -> None:
    class _Middleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            auth = header(scope, "authorization") if scope["type"] == "http" else ""
            if not limit.enabled or not scope.get("path", "").startswith("/api/") or \
                    not auth.lower().startswith("bearer "):
                await self.inner(scope, receive, send)
                return
            tenant = tenant_for_key(auth[7:].strip())
            if tenant is None:
                await self.inner(scope, receive, send)
                return
            allowed, remaining, reset_in = limit.hit(tenant, clock.now().timestamp())
            headers = {"RateLimit-Limit": str(limit.per_minute), "RateLimit-Remaining": str(remaining),
                       "RateLimit-Reset": str(reset_in)}
            if not allowed:
                response = problem_response(429, f"More than {limit.per_minute} requests this minute.",
                                            headers=headers | {"Retry-After": str(reset_in)}, instance=scope["path"])
                await response(scope, receive, send)
                return
            await self.inner(scope, receive, with_headers(send, headers))

    app.add_middleware(_Middleware)
