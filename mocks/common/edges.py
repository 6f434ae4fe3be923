"""What both mocks do at the edges of HTTP the same way: the methods a path allows, and how deep a body may nest.

A 405 names the methods the path does allow (RFC 9110 §15.5.6). Starlette's own `Allow` lists only the
first route that matched the path, and a collection path is two routes (GET and POST), so the methods are
collected from every route that matches.

A JSON body nested a thousand levels deep makes Python's parser recurse until it fails with a
`RecursionError`; `too_deep` finds that in one pass over the bytes, before anything is parsed.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.routing import Match

__all__ = ["MAX_JSON_DEPTH", "allowed_methods", "basic_credentials", "optional_not_nullable", "too_deep"]

MAX_JSON_DEPTH = 64
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path (asked of each route, so that
    included routers answer for the routes they hold)."""
    allowed = []
    for method in _METHODS:
        scope = dict(request.scope, method=method)
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.routes):
            allowed.append(method)
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.append("HEAD")
    return allowed


def too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in a JSON text nest deeper than `limit` (brackets inside strings ignored)."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return False  # too few brackets to nest that deep: every ordinary body, without the scan below
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (RFC 6749 §2.3.1: each form-encoded
    before base64), or None when the header is absent or not Basic; ValueError when it is malformed."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the Basic credentials are not valid base64 of UTF-8 text") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ValueError("the Basic credentials have no ':' between the client id and the secret")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def optional_not_nullable(parameter: dict[str, Any]) -> None:
    """An optional query or header parameter is left out when it has no value; it is never sent as null
    (FastAPI writes `str | None` as anyOf string or null, which a client reads as the text "null")."""
    schema = parameter.get("schema", {})
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        schema.update(options[0])
