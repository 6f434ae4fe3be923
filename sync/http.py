"""One place where HTTP responses become engine errors, with retries for what is worth retrying.

Retried: 429 (waiting for the rate-limit window the headers announce), 502/503/504 and transport
errors, with exponential backoff and jitter. Never retried: other 4xx, because Exact blocks an app
after ten errors an hour, and any non-idempotent call whose outcome is unknown (the engine recovers
those through its intents instead).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sync.cookies import HttpClient
from sync.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    RejectedError,
    RetriableError,
)

__all__ = ["CallCounter", "HttpClient", "HttpPolicy", "send"]


@dataclass
class CallCounter:
    """Counts the calls a connector made, by method, for the sync report and the QA report."""

    calls: dict[str, int] = field(default_factory=dict)

    def add(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> int:
        return sum(n for m, n in self.calls.items() if m in ("POST", "PUT", "PATCH", "DELETE"))


@dataclass
class HttpPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    now_ms: Callable[[], float] = lambda: time.time() * 1000
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2.0**attempt) * (0.5 + self.rng.random() / 2))

    def rate_limit_wait(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return min(self.max_delay, float(retry_after))
            except ValueError:
                pass
        for header in ("X-RateLimit-Minutely-Reset", "X-RateLimit-Reset"):
            reset = response.headers.get(header)
            if reset:
                try:
                    return min(self.max_delay, max(0.0, (float(reset) - self.now_ms()) / 1000) + 1.0)
                except ValueError:
                    pass
        return self.backoff(attempt)


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            value = error.get("message", {})
            if isinstance(value, dict):
                return str(value.get("value", ""))
        if "detail" in body:
            extra = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body.get("errors", []))
            return str(body["detail"]) + (f" ({extra})" if extra else "")
        if "error_description" in body:
            return str(body["error_description"])
        if isinstance(error, str):
            return error
    return response.text[:300]


def _raise_for(response: httpx.Response, system: str, functional_500: bool) -> None:
    status = response.status_code
    if status < 400:
        return
    text = f"{system}: HTTP {status} {response.request.method} {response.request.url.path}: {_message(response)}"
    if status in (401, 403):
        raise AuthError(text, status, system)
    if status == 404:
        raise NotFoundError(text, status, system)
    if status == 412:
        raise ConflictError(text, status, system)
    if status == 429 or status in (502, 503, 504):
        raise RetriableError(text, status, system)
    if status == 500 and functional_500 and _message(response):
        raise RejectedError(text, status, system)
    if status >= 500:
        raise RetriableError(text, status, system)
    raise RejectedError(text, status, system)


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    system: str,
    policy: HttpPolicy,
    counter: CallCounter | None = None,
    idempotent: bool | None = None,
    functional_500: bool = False,
    before: Callable[[], dict[str, str]] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; retry what is safe to retry; raise a ConnectorError for the rest.

    `before` is called before every attempt and returns extra headers (a fresh access token).
    A non-idempotent call is retried only after a 429, which guarantees nothing was done.
    """
    if idempotent is None:
        idempotent = method in ("GET", "PUT", "DELETE", "HEAD")
    attempt = 0
    while True:
        headers = dict(kwargs.pop("headers", {}) or {})
        if before is not None:
            headers.update(before())
        try:
            if counter is not None:
                counter.add(method)
            response = client.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            kwargs["headers"] = headers
            if idempotent and attempt + 1 < policy.attempts:
                policy.sleep(policy.backoff(attempt))
                attempt += 1
                continue
            raise RetriableError(f"{system}: {type(exc).__name__} on {method} {url}: {exc}", None, system) from exc
        kwargs["headers"] = headers
        try:
            _raise_for(response, system, functional_500)
        except RetriableError:
            retry_safe = idempotent or response.status_code == 429
            if retry_safe and attempt + 1 < policy.attempts:
                wait = (policy.rate_limit_wait(response, attempt) if response.status_code == 429
                        else policy.backoff(attempt))
                policy.sleep(wait)
                attempt += 1
                continue
            raise
        if response.headers.get("X-RateLimit-Minutely-Remaining") == "0":
            # The minute's budget is spent: wait for the window instead of running into a 429.
            policy.sleep(policy.rate_limit_wait(response, attempt))
        return response

