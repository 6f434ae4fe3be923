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
    """An httpx transport that hands each request to an ASGI app in this process.

    It speaks ASGI itself rather than through ``httpx.ASGITransport``, which looks for trio on every request
    by trying an import that fails when trio is absent: a fifth of a millisecond per call, a tenth of what a
    mock's answer costs."""

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self._app = app
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw], "scheme": request.url.scheme,
            "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "server": (request.url.host, request.url.port),
            "client": self._client, "root_path": "",
        }

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            sent = False
            status, headers, parts = 500, [], []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                nonlocal status, headers
                if message["type"] == "http.response.start":
                    status, headers = message["status"], list(message.get("headers", []))
                elif message["type"] == "http.response.body" and request.method != "HEAD":
                    parts.append(message.get("body", b""))

            await self._app(scope, receive, send)
            return status, headers, b"".join(parts)

        with self._lock:
            if self._loop.is_closed():
                raise RuntimeError("the in-process transport is closed")
            status, headers, content = self._loop.run_until_complete(call())
        return httpx.Response(status, headers=headers, content=content, request=request)

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
