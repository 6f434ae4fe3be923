"""Run a mock in-process behind a synchronous ``httpx`` transport.

This is the seam of httpx put to use: a connector takes an ``httpx.Client`` and never learns whether
the client reaches a mock in the same process, a mock under uvicorn, or a real sandbox. Each request runs
the app to completion on the transport's own event loop, in the calling thread: no thread hand-offs, so a
call costs what the app costs.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

import httpx

__all__ = ["InProcessTransport"]


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to an ASGI app in this process."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers.raw, body

        with self._lock:
            if self._loop.is_closed():
                raise RuntimeError("the in-process transport is closed")
            status, headers, body = self._loop.run_until_complete(call())
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        with self._lock:
            if not self._loop.is_closed():
                self._loop.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()
