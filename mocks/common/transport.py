"""Run a mock in-process behind a synchronous ``httpx`` transport.

This is the seam of httpx put to use: a connector takes an ``httpx.Client`` and never learns whether
the client reaches a mock in the same process, a mock under uvicorn, or a real sandbox. The app runs on
an event loop in a daemon helper thread, so synchronous code can call it directly and a forgotten
client never keeps the interpreter from exiting.
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
        self._thread = threading.Thread(target=self._loop.run_forever, name="inprocess-asgi", daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers.raw, body

        if self._loop.is_closed():
            raise RuntimeError("the in-process transport is closed")
        status, headers, body = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()
