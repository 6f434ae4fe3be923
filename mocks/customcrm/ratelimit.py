"""Configurable rate limiting per tenant: a fixed one-minute window, 429 with Retry-After when exceeded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

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
    class _Middleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            auth = request.headers.get("authorization", "")
            if not limit.enabled or not request.url.path.startswith("/api/") or not auth.lower().startswith("bearer "):
                return await call_next(request)
            tenant = tenant_for_key(auth[7:].strip())
            if tenant is None:
                return await call_next(request)
            allowed, remaining, reset_in = limit.hit(tenant, clock.now().timestamp())
            headers = {"RateLimit-Limit": str(limit.per_minute), "RateLimit-Remaining": str(remaining),
                       "RateLimit-Reset": str(reset_in)}
            if not allowed:
                return problem_response(429, f"More than {limit.per_minute} requests this minute.",
                                        headers=headers | {"Retry-After": str(reset_in)},
                                        instance=request.url.path)
            response = await call_next(request)
            response.headers.update(headers)
            return response

    app.add_middleware(_Middleware)
