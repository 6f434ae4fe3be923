"""The checklist's copy of both systems' records, kept current from their change APIs.

When many examples share the systems, "read every record of the set" must not cost more with every record
the run adds. The mirror reads only what changed since its last read, as an engine does: Exact's sync API
above the last Timestamp (pages of 1,000) and ``sync/Deleted`` for removals; Customcrm's change feed after
its cursor. And it reads nothing when nothing can have changed: an engine pass marks both systems stale, a
write of the checklist only the system it wrote to (a Customcrm create does not make Exact worth reading
again); a read of a fresh mirror costs no call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

import httpx

from conformance.sandbox import read_changes, read_sync

__all__ = ["Mirror"]


class Mirror:
    """Every record of the sync collections and Customcrm resources the checks read, shared by all of them."""

    def __init__(self, exact_client: httpx.Client, exact_url: Callable[[str], str],
                 exact_headers: Callable[[], dict[str, str]], crm_client: httpx.Client, crm_headers: dict[str, str],
                 *, exact_marks: dict[str, int] | None = None, deleted_mark: int = 0, crm_cursor: str = "") -> None:
        self._exact_client, self._exact_url, self._exact_headers = exact_client, exact_url, exact_headers
        self._crm_client, self._crm_headers = crm_client, crm_headers
        self._lock = threading.RLock()
        # Each system's version: bumped by every write to it and by every engine pass (which writes both).
        self._version = {"exact": 0, "customcrm": 0}
        self._deletes = 0  # bumped by every Exact delete and every engine pass (only they can remove a record)
        self._exact: dict[str, dict[str, dict[str, Any]]] = {}
        self._exact_marks: dict[str, int] = dict(exact_marks or {})
        self._set_version: dict[str, int] = {}  # bumped by a write to that set alone
        self._exact_read: dict[str, tuple[int, int]] = {}  # the versions each set was last read at
        self._deleted_mark = deleted_mark
        self._deleted_read = -1
        self._crm: dict[str, dict[str, dict[str, Any]]] = {}
        self._crm_cursor = crm_cursor
        self._crm_read = -1
        self.reads = 0

    def touch(self, system: str | None = None, *, deleted: bool = True, sets: Collection[str] = ()) -> None:
        """Something may have changed in `system` (None: in both, as after an engine pass; `deleted`: an
        Exact record may be gone; `sets`: only these Exact sync collections): the next read of what may have
        changed asks the system again."""
        with self._lock:
            if system == "exact" and sets:
                for sync_path in sets:
                    self._set_version[sync_path] = self._set_version.get(sync_path, 0) + 1
            else:
                for name in self._version if system is None else (system,):
                    self._version[name] += 1
            if deleted and system in (None, "exact"):
                self._deletes += 1

    def exact(self, sync_path: str) -> list[dict[str, Any]]:
        """Every row of an Exact sync collection (above the mark it started from), as it is now."""
        with self._lock:
            return list(self._exact_rows(sync_path).values())

    def exact_get(self, sync_path: str, key: str) -> dict[str, Any] | None:
        """One row as the REST API gives it (no Timestamp), or None when the mirror does not hold it."""
        with self._lock:
            row = self._exact_rows(sync_path).get(key.lower())
        return None if row is None else {k: v for k, v in row.items() if k != "Timestamp"}

    def _exact_rows(self, sync_path: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            version = (self._version["exact"], self._set_version.get(sync_path, 0))
            if self._exact_read.get(sync_path) != version:
                rows = read_sync(self._exact_client, self._exact_url(sync_path), self._exact_headers,
                                 self._exact_marks.get(sync_path, 0))
                mirrored = self._exact.setdefault(sync_path, {})
                for row in rows:
                    mirrored[str(row["ID"]).lower()] = row
                    self._exact_marks[sync_path] = max(self._exact_marks.get(sync_path, 0), int(row["Timestamp"]))
                self._exact_read[sync_path] = version
                self.reads += 1
                self._forget_deleted(self._deletes)
            return self._exact.get(sync_path, {})

    def _forget_deleted(self, version: int) -> None:
        if self._deleted_read == version:
            return
        rows = read_sync(self._exact_client, self._exact_url("sync/Deleted"), self._exact_headers, self._deleted_mark)
        for row in rows:
            key = str(row.get("EntityKey") or "").lower()
            for mirrored in self._exact.values():
                mirrored.pop(key, None)
            self._deleted_mark = max(self._deleted_mark, int(row["Timestamp"]))
        self._deleted_read = version

    def crm(self, path: str) -> list[dict[str, Any]]:
        """Every record of a Customcrm resource (changed after the cursor it started from), as it is now."""
        with self._lock:
            return list(self._crm_records(path).values())

    def crm_get(self, path: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._crm_records(path).get(str(record_id))
        return None if record is None else dict(record)

    def _crm_records(self, path: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            version = self._version["customcrm"]
            if self._crm_read != version:
                changes, self._crm_cursor = read_changes(self._crm_client, self._crm_headers, self._crm_cursor)
                for change in changes:
                    records = self._crm.setdefault(change["resource"], {})
                    if change["op"] == "deleted":
                        records.pop(str(change["id"]), None)
                    else:
                        records[str(change["id"])] = change["record"]
                self._crm_read = version
                self.reads += 1
            return self._crm.get(path, {})
