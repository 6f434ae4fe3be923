"""The Exact Online connector: OAuth tokens, OData reads through the sync API, partial-PUT writes.

It takes an ``httpx.Client`` whose base URL is the Exact host, so the same code runs against the
in-process mock, a mock under uvicorn, or a real sandbox.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from sync.errors import AuthError, NotFoundError, RejectedError
from sync.http import CallCounter, HttpPolicy, send
from sync.systems.exact import USERS, ExactEntity

__all__ = ["ExactConnector", "ExactTokens", "odata_literal"]

SYSTEM = "Exact"
TOKEN_SECONDS = 600
EARLY_REFRESH_SECONDS = 570


@dataclass
class ExactTokens:
    """An app's tokens. Refresh tokens are single-use, so every rotation is handed to `on_rotate`
    (persist it before the next refresh) and refreshes are serialised with a lock."""

    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    issued_at: float = 0.0
    on_rotate: Callable[[str], None] | None = None  # called with the new refresh token, before any use
    # Shared storage between processes: `exclusive` runs a refresh under a cross-process lock, and `reload`
    # returns the tokens another process may have stored since (access token, refresh token, issued at).
    exclusive: Callable[[Callable[[], None]], None] | None = None
    reload: Callable[[], tuple[str | None, str, float] | None] | None = None
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:  # never print secrets
        return f"ExactTokens(client_id={self.client_id!r}, ...)"

    def valid(self) -> bool:
        return self.access_token is not None and self.clock() - self.issued_at < TOKEN_SECONDS - 30

    def refresh_allowed(self) -> bool:
        return self.access_token is None or self.clock() - self.issued_at >= EARLY_REFRESH_SECONDS

    def refresh(self, client: httpx.Client, policy: HttpPolicy, counter: CallCounter | None) -> None:
        with self._lock:
            if self.exclusive is None:
                self._refresh(client, policy, counter)
            else:
                self.exclusive(lambda: self._refresh(client, policy, counter))

    def _refresh(self, client: httpx.Client, policy: HttpPolicy, counter: CallCounter | None) -> None:
        if self.reload is not None:
            stored = self.reload()
            if stored is not None and stored[2] > self.issued_at:
                # Another process refreshed meanwhile: its tokens are the live ones.
                self.access_token, self.refresh_token, self.issued_at = stored
        if self.valid():
            return
        if not self.refresh_allowed():
            return  # the old token is still accepted for a few seconds; Exact refuses an early refresh
        try:
            response = send(
                client, "POST", "/api/oauth2/token", system=SYSTEM, policy=policy, counter=counter,
                idempotent=False,
                data={"grant_type": "refresh_token", "refresh_token": self.refresh_token,
                      "client_id": self.client_id, "client_secret": self.client_secret},
            )
        except RejectedError as exc:  # a refused grant: no retry helps, a person must authorize again
            raise AuthError(f"Exact refused the refresh token ({exc}): authorize the app again and hand the new "
                            "refresh token over through the configured variable", exc.status, SYSTEM) from exc
        body = response.json()
        self.access_token = str(body["access_token"])
        self.refresh_token = str(body["refresh_token"])
        self.issued_at = self.clock()
        if self.on_rotate is not None:
            self.on_rotate(self.refresh_token)


def odata_literal(value: Any) -> str:
    """A value as an OData v2 $filter literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class ExactConnector:
    """Reads and writes one Exact division."""

    def __init__(self, client: httpx.Client, division: int, tokens: ExactTokens,
                 policy: HttpPolicy | None = None) -> None:
        self.client = client
        self.division = division
        self.tokens = tokens
        self.policy = policy or HttpPolicy()
        self.counter = CallCounter()
        # Within a pass, one read of sync/Deleted serves every flow: (the row version it read after, its rows).
        self._deleted_read: tuple[int, list[dict[str, Any]]] | None = None
        self._in_pass = False

    def begin_pass(self) -> None:
        """A pass begins: reads may be shared by its flows until `end_pass`."""
        self._in_pass, self._deleted_read = True, None

    def end_pass(self) -> None:
        self._in_pass, self._deleted_read = False, None

    def _auth(self) -> dict[str, str]:
        if not self.tokens.valid():
            self.tokens.refresh(self.client, self.policy, self.counter)
        return {"Authorization": f"Bearer {self.tokens.access_token}", "Accept": "application/json"}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"/api/v1/{self.division}/{path}"
        # Exact answers a refused write with 500 and a readable text; a read has nothing to refuse, so its
        # 500 is a server fault and is retried like any 5xx.
        functional = method != "GET"
        try:
            return send(self.client, method, url, system=SYSTEM, policy=self.policy, counter=self.counter,
                        functional_500=functional, before=self._auth, **kwargs)
        except AuthError as exc:
            if exc.status != 401:
                raise
            # Exact says the access token is dead (expired, or handed over older than we were told): refresh
            # once, whatever our own reckoning of its age.
            self.tokens.access_token = None
            return send(self.client, method, url, system=SYSTEM, policy=self.policy, counter=self.counter,
                        functional_500=functional, before=self._auth, **kwargs)

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        response = self._call("GET", path, params=params)
        while True:
            body = response.json().get("d", {})
            rows = body.get("results", []) if isinstance(body, dict) else body
            yield from rows
            next_url = body.get("__next") if isinstance(body, dict) else None
            if not next_url:
                return
            response = self._call("GET", next_url)

    # ------------------------------------------------------------------ reads

    def changes(self, entity: ExactEntity, fields: list[str], after: int) -> tuple[list[dict[str, Any]], int]:
        """Records inserted or updated after a row version, through the sync API (1000 a page)."""
        select = ",".join(dict.fromkeys(["Timestamp", entity.key, entity.modified, *fields]))
        rows = list(self._pages(entity.sync_path, {"$select": select, "$filter": f"Timestamp gt {after}L"}))
        last = max([after, *(int(r["Timestamp"]) for r in rows)])
        return rows, last

    def deleted(self, entity: ExactEntity, after: int) -> tuple[list[str], list[str], int]:
        """Keys of records of this entity, and of its lines, deleted after a row version (sync/Deleted)."""
        rows = self._deleted_after(after)
        last = max([after, *(int(r["Timestamp"]) for r in rows)])
        line_type = entity.lines.deleted_type if entity.lines is not None else None
        return ([str(r["EntityKey"]).lower() for r in rows if int(r["EntityType"]) == entity.deleted_type],
                [str(r["EntityKey"]).lower() for r in rows if int(r["EntityType"]) == line_type], last)

    def _deleted_after(self, after: int) -> list[dict[str, Any]]:
        """The deletion log after a row version. It holds every entity's deletions, so in a pass one read
        serves all the flows (Exact's 60 calls a minute): a flow whose cursor is at or past the one read
        takes its part of it; one further back reads again."""
        read = self._deleted_read
        if self._in_pass and read is not None and read[0] <= after:
            return [r for r in read[1] if int(r["Timestamp"]) > after]
        rows = list(self._pages("sync/Deleted", {"$filter": f"Timestamp gt {after}L"}))
        if self._in_pass:
            self._deleted_read = (after, rows)
        return rows

    def get(self, entity: ExactEntity, key: str, fields: list[str]) -> dict[str, Any] | None:
        select = ",".join(dict.fromkeys([entity.key, entity.modified, *fields]))
        try:
            response = self._call("GET", f"{entity.path}(guid'{key}')", params={"$select": select})
        except NotFoundError:
            return None
        row: dict[str, Any] = response.json()["d"]
        return row

    def find(self, entity: ExactEntity, conditions: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
        """Records whose properties equal the given values (a merge-key lookup)."""
        text = " and ".join(f"{name} eq {odata_literal(value)}" for name, value in conditions.items())
        select = ",".join(dict.fromkeys([entity.key, entity.modified, *fields]))
        return list(self._pages(entity.path, {"$select": select, "$filter": text}))

    def changed_lines(self, entity: ExactEntity, fields: list[str], after: int
                      ) -> tuple[dict[str, list[dict[str, Any]]], int]:
        """Lines inserted or updated after a row version, by header key, in line-number order (the lines'
        own sync endpoint, with the properties asked for: enough to tell an echo without reading a header's
        lines again)."""
        assert entity.lines is not None
        lines = entity.lines
        select = ",".join(dict.fromkeys(["Timestamp", lines.key, lines.parent_key, lines.order_by, *fields]))
        rows = list(self._pages(lines.sync_path, {"$select": select, "$filter": f"Timestamp gt {after}L"}))
        last = max([after, *(int(r["Timestamp"]) for r in rows)])
        by_header: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: int(r.get(lines.order_by) or 0)):
            if row.get(lines.parent_key):
                by_header.setdefault(str(row[lines.parent_key]).lower(), []).append(row)
        return by_header, last

    def lines(self, entity: ExactEntity, key: str) -> list[dict[str, Any]]:
        """A header's lines in line-number order."""
        assert entity.lines is not None
        rows = list(self._pages(f"{entity.path}(guid'{key}')/{entity.lines.nav}", {}))
        return sorted(rows, key=lambda r: int(r.get(entity.lines.order_by) or 0) if entity.lines else 0)

    def users(self) -> list[dict[str, Any]]:
        """The division's users (the targets of Salesperson)."""
        return list(self._pages(USERS.path, {"$select": f"{USERS.key},{USERS.email},{USERS.name}"}))

    # ------------------------------------------------------------------ writes

    def create_line(self, entity: ExactEntity, key: str, values: dict[str, Any]) -> dict[str, Any]:
        assert entity.lines is not None
        body = {entity.lines.parent_key: key, **values}
        response = self._call("POST", entity.lines.path, json=body, idempotent=False,
                              headers={"Prefer": "return=representation", "Content-Type": "application/json"})
        row: dict[str, Any] = response.json()["d"]
        return row

    def update_line(self, entity: ExactEntity, line_key: str, values: dict[str, Any]) -> None:
        assert entity.lines is not None
        self._call("PUT", f"{entity.lines.path}(guid'{line_key}')", json=values,
                   headers={"Content-Type": "application/json"})

    def delete_line(self, entity: ExactEntity, line_key: str) -> None:
        assert entity.lines is not None
        with contextlib.suppress(NotFoundError):  # already gone: the goal is reached
            self._call("DELETE", f"{entity.lines.path}(guid'{line_key}')")

    def create(self, entity: ExactEntity, values: dict[str, Any]) -> dict[str, Any]:
        response = self._call("POST", entity.path, json=values, idempotent=False,
                              headers={"Prefer": "return=representation", "Content-Type": "application/json"})
        row: dict[str, Any] = response.json()["d"]
        return row

    def update(self, entity: ExactEntity, key: str, values: dict[str, Any]) -> None:
        """Partial PUT: only the changed properties are sent (Exact refuses whole-object PUTs)."""
        self._call("PUT", f"{entity.path}(guid'{key}')", json=values,
                   headers={"Content-Type": "application/json"})

    def delete(self, entity: ExactEntity, key: str) -> None:
        self._call("DELETE", f"{entity.path}(guid'{key}')")

