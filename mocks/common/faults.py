"""Fault injection for the mocks: error statuses, latency, and writes committed but answered with an error.

Rules are set through the admin plane (``POST /_admin/faults``) or in-process, and match requests by
method and a regular expression on the path. Randomness comes from a seedable generator, so a faulty run
replays exactly.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp

from mocks.common.asgi import Message, Receive, Scope, Send

__all__ = ["FaultRule", "Faults", "install_faults"]

ErrorRenderer = Callable[[int, str], Response]


@dataclass
class FaultRule:
    """One kind of fault. `status` answers before the request is handled (nothing is written);
    `drop_response` lets the request commit and then answers 504, as a timed-out gateway would."""

    path: str = ".*"
    method: str | None = None
    status: int | None = None
    rate: float = 1.0
    latency_ms: int = 0
    drop_response: bool = False
    times: int | None = None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        return re.search(self.path, path) is not None


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        with self._lock:
            self.rules = [FaultRule(**{k: v for k, v in r.items() if k != "fired"}) for r in rules]
            if seed is not None:
                self.rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path) and self.rng.random() < rule.rate:
                    rule.fired += 1
                    return rule
            return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.rules]


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
