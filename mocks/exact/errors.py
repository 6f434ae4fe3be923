"""Exact Online's error body, rendered in exactly one place.

``{"error": {"code": "", "message": {"lang": "", "value": "<text>"}}}`` (reference §2.9). Functional
validation errors come back as HTTP 500 with a readable text, as Exact does; malformed requests as 400.
Each kind of error is a named class (`Refused` for what Exact refuses to store, `BadRequest` for what it
cannot read, ...), free of HTTP; `error_handlers` answers them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BadRequest", "ExactError", "Forbidden", "MethodNotAllowed", "NotAcceptable", "NotFound",
           "NotImplementedHere", "Refused", "Unauthorized", "error_body"]


class ExactError(Exception):
    """An error the mock answers in Exact's format."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}


class BadRequest(ExactError):
    """400: a query or a body Exact cannot read."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class Unauthorized(ExactError):
    """401: no token, or a token Exact does not know (any more)."""

    def __init__(self, message: str = "Unauthorized", headers: dict[str, str] | None = None) -> None:
        super().__init__(401, message, headers)


class Forbidden(ExactError):
    """403: a division the user has no access to."""

    def __init__(self, message: str = "Forbidden: no access to this division") -> None:
        super().__init__(403, message)


class NotFound(ExactError):
    """404: no such record, service or path."""

    def __init__(self, message: str = "Not found") -> None:
        super().__init__(404, message)


class MethodNotAllowed(ExactError):
    """405: a method the entity set does not take (a read-only set, for instance)."""

    def __init__(self, message: str = "Method not allowed") -> None:
        super().__init__(405, message)


class NotAcceptable(ExactError):
    """406: a response format other than JSON asked for."""

    def __init__(self, message: str) -> None:
        super().__init__(406, message)


class Refused(ExactError):
    """500: a record Exact will not store (a mandatory value missing, a value too long, a reference to
    nothing, a record in use): Exact's functional errors come back as 500 with a readable text."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)


class NotImplementedHere(ExactError):
    """501: what Exact does not implement (or refuses as such)."""

    def __init__(self, message: str = "Not Implemented") -> None:
        super().__init__(501, message)
