"""The Customcrm connector: the change feed for reads, merge-patch with If-Match for writes."""

from __future__ import annotations

from typing import Any

import httpx

from sync.errors import NotFoundError
from sync.http import CallCounter, HttpPolicy, send
from sync.systems.customcrm import CustomcrmResource

__all__ = ["Change", "CustomcrmConnector"]

SYSTEM = "Customcrm"
Change = dict[str, Any]


class CustomcrmConnector:
    """Reads and writes one Customcrm tenant; the API key travels as a Bearer token."""

    def __init__(self, client: httpx.Client, api_key: str, policy: HttpPolicy | None = None) -> None:
        self.client = client
        self._api_key = api_key
        self.policy = policy or HttpPolicy()
        self.counter = CallCounter()

    def __repr__(self) -> str:
        return f"CustomcrmConnector(base_url={str(self.client.base_url)!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return send(self.client, method, f"/api/v1/{path}", system=SYSTEM, policy=self.policy,
                    counter=self.counter, before=self._headers, **kwargs)

    def changes(self, resource: CustomcrmResource, after: str | None) -> tuple[list[Change], str | None]:
        """Changes to one collection after a cursor, in commit order, and the cursor to continue from."""
        out: list[Change] = []
        cursor = after
        while True:
            params: dict[str, Any] = {"resource": resource.path, "limit": 500}
            if cursor:
                params["after"] = cursor
            body = self._call("GET", "changes", params=params).json()
            out.extend(body["changes"])
            cursor = body["next_cursor"]
            if not body.get("has_more"):
                return out, cursor

    def get(self, resource: CustomcrmResource, record_id: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = self._call("GET", f"{resource.path}/{record_id}").json()
        except NotFoundError:
            return None
        return record

    def find(self, resource: CustomcrmResource, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = dict(conditions) | {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            body = self._call("GET", resource.path, params=params).json()
            out.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out

    def create(self, resource: CustomcrmResource, values: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = self._call("POST", resource.path, json=values, idempotent=False).json()
        return record

    def update(self, resource: CustomcrmResource, record_id: str, values: dict[str, Any],
               version: int | None) -> dict[str, Any]:
        """Merge-patch; with `version`, a stale read is refused (412) rather than overwritten."""
        headers = {"If-Match": f'"{version}"'} if version is not None else {}
        record: dict[str, Any] = self._call("PATCH", f"{resource.path}/{record_id}", json=values,
                                            headers=headers, idempotent=version is not None).json()
        return record

    def delete(self, resource: CustomcrmResource, record_id: str) -> None:
        self._call("DELETE", f"{resource.path}/{record_id}")
