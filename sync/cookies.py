"""httpx's client, except for where it looks for cookies.

httpx looks for cookies in every answer by copying its request into a urllib request and its headers into
an e-mail message: a tenth of a call's cost against a mock in the same process. An answer with no
Set-Cookie header has none to keep, so these clients look only in the answers that set one.

Neutral plumbing, not a reading of either system: the engine's HTTP layer (`sync.http`) and the checklist's
clients (`conformance.systems`) both take their client from here, so the checklist judges the engine
without sharing anything of how the engine reads the systems.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["HttpClient"]


class _SetCookiesOnly(httpx.Cookies):
    """Cookies kept from the answers that set one, as httpx keeps them."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class HttpClient(httpx.Client):
    """An httpx client that reads cookies only from the answers that set one; otherwise httpx's own."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cookies = _SetCookiesOnly(self._cookies)
