"""Customcrm errors as RFC 9457 problem details, rendered in one place.

Every error answers ``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail``;
validation problems add ``errors``, one entry per invalid field, so a client can show them all at once.
The problem and its body are free of HTTP; `error_handlers` answers them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROBLEM_TYPES", "Problem", "problem_body"]

PROBLEM_TYPES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Validation failed"),
    428: ("precondition-required", "Precondition required"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(Exception):
    """An error answered as problem details."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_body(status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 instance: str | None = None) -> dict[str, Any]:
    slug, title = PROBLEM_TYPES.get(status, ("error", "Error"))
    body: dict[str, Any] = {"type": f"urn:customcrm:problem:{slug}", "title": title, "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body
