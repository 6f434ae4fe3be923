"""Small helpers for the mocks' pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Message", "Receive", "Scope", "Send", "header", "with_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def header(scope: Scope, name: str) -> str:
    """A request header's value ('' when absent)."""
    wanted = name.lower().encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return ""


def with_headers(send: Send, headers: dict[str, str]) -> Send:
    """A `send` that adds headers to the response."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []),
                                  *((k.lower().encode(), v.encode()) for k, v in headers.items())]
        await send(message)

    return wrapped
