"""The checklist's copy of both systems' records, kept current from their change APIs.

When many examples share the systems, "read every record of the set" must not cost more with every record
the run adds. The mirror reads only what changed since its last read, as an engine does: Exact's sync API
above the last Timestamp (pages of 1,000) and ``sync/Deleted`` for removals; Customcrm's change feed after
its cursor. And it reads nothing when nothing can have changed: an engine pass marks both systems stale, a
write of the checklist only the system it wrote to (a Customcrm create does not make Exact worth reading
again); a read of a fresh mirror costs no call. Which reader must read again is decided per check (see
`Mirror`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

import httpx

from conformance.ownership import key_of
from conformance.sandbox import read_changes, read_sync

__all__ = ["KeyIndex", "Mirror"]


class KeyIndex:
    """Which records of one collection hold a merge-key value (compared as `key_of` compares them), per
    property asked about, kept as records come and go. An example finds its own records among every record of
    the run by its keys, instead of looking at each of them on every read."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, set[str]]] = {}  # property -> key -> record ids
        self._keys: dict[str, dict[str, str]] = {}  # property -> record id -> its key

    def ids(self, records: dict[str, dict[str, Any]], name: str, keys: Collection[str]) -> set[str]:
        """The ids of `records` whose `name` holds one of `keys` (the property indexed from now on)."""
        if name not in self._by_key:
            self._by_key[name], self._keys[name] = {}, {}
            for record_id, record in records.items():
                self._put(name, record_id, record)
        by_key = self._by_key[name]
        return set().union(*(by_key.get(key, ()) for key in keys))

    def owned(self, records: dict[str, dict[str, Any]], ids: Collection[str], fields: Collection[str],
              keys: Collection[str]) -> set[str]:
        """The ids of `records` that are one of `ids`, or hold one of `keys` in one of `fields`."""
        found = {i for i in ids if i in records}
        for name in fields:
            found |= self.ids(records, name, keys)
        return found

    def update(self, record_id: str, record: dict[str, Any] | None) -> None:
        """A record as it is now (None: gone)."""
        for name in self._by_key:
            self._drop(name, record_id)
            if record is not None:
                self._put(name, record_id, record)

    def _put(self, name: str, record_id: str, record: dict[str, Any]) -> None:
        key = key_of(record.get(name))
        if key is not None:
            self._by_key[name].setdefault(key, set()).add(record_id)
            self._keys[name][record_id] = key

    def _drop(self, name: str, record_id: str) -> None:
        old = self._keys[name].pop(record_id, None)
        if old is not None:
            holders = self._by_key[name].get(old)
            if holders is not None:
                holders.discard(record_id)
                if not holders:
                    del self._by_key[name][old]


class Mirror:
    """Every record of the sync collections and Customcrm resources the checks read, shared by all of them.

    What must be read again is decided per reader (per check's thread). An engine pass may have changed
    anything, for every check. A check's own write changes only its own records, and a check reads only its
    own (each example owns its records): so after it writes, only its own next read of what the write can
    have changed asks the system again. Other checks' reads in between need not: a read of theirs that
    happens to see the write is as good as one that does not. Checks writing between two passes therefore
    cost a read of a set each, not a read for every write that another check's read followed.
    """

    def __init__(self, exact_client: httpx.Client, exact_url: Callable[[str], str],
                 exact_headers: Callable[[], dict[str, str]], crm_client: httpx.Client, crm_headers: dict[str, str],
                 *, exact_marks: dict[str, int] | None = None, deleted_mark: int = 0, crm_cursor: str = "") -> None:
        self._exact_client, self._exact_url, self._exact_headers = exact_client, exact_url, exact_headers
        self._crm_client, self._crm_headers = crm_client, crm_headers
        self._lock = threading.RLock()
        self._passes = 0  # engine passes (each may have written anything, to both systems)
        self._writes = 0  # the checklist's writes, numbered
        self._mine: dict[tuple[int, str], int] = {}  # (reader, what a write changed) -> the number of its last write
        self._exact: dict[str, dict[str, dict[str, Any]]] = {}
        self._exact_marks: dict[str, int] = dict(exact_marks or {})
        self._exact_read: dict[str, tuple[int, int]] = {}  # set -> (passes, writes) when last read
        self._deleted_mark = deleted_mark
        self._deleted_read: tuple[int, int] | None = None
        self._last_delete = 0  # the number of the last write that may have deleted an Exact record
        self._crm: dict[str, dict[str, dict[str, Any]]] = {}
        self._crm_cursor = crm_cursor
        self._crm_read: tuple[int, int] | None = None
        self._exact_index: dict[str, KeyIndex] = {}
        self._crm_index: dict[str, KeyIndex] = {}
        self.reads = 0

    def touch(self, system: str | None = None, *, deleted: bool = True, sets: Collection[str] = ()) -> None:
        """Something may have changed in `system` (None: in both, as after an engine pass, for every reader;
        else a write of the calling check's, for its own reads: `deleted`, an Exact record may be gone;
        `sets`, only these Exact sync collections)."""
        with self._lock:
            if system is None:
                self._passes += 1
                return
            self._writes += 1
            changed = [f"exact:{name}" for name in sets] if system == "exact" and sets else [f"{system}:*"]
            if deleted and system == "exact":
                self._last_delete = self._writes
            me = threading.get_ident()
            for what in changed:
                self._mine[(me, what)] = self._writes

    def _stale(self, read: tuple[int, int] | None, *changed: str) -> bool:
        """Whether the calling reader must read again: a pass since `read`, or a write of its own to any of
        `changed` since."""
        if read is None or read[0] != self._passes:
            return True
        me = threading.get_ident()
        return any(self._mine.get((me, what), 0) > read[1] for what in changed)

    def exact(self, sync_path: str) -> list[dict[str, Any]]:
        """Every row of an Exact sync collection (above the mark it started from), as it is now."""
        with self._lock:
            return list(self._exact_rows(sync_path).values())

    def exact_owned(self, sync_path: str, ids: Collection[str], fields: Collection[str],
                    keys: Collection[str]) -> dict[str, dict[str, Any]]:
        """The rows of a set (by lower-case id) that have one of `ids`, or one of `keys` in one of `fields`."""
        with self._lock:
            rows = self._exact_rows(sync_path)
            found = self._exact_index.setdefault(sync_path, KeyIndex()).owned(rows, ids, fields, keys)
            return {i: row for i, row in rows.items() if i in found}  # in the order the sync API gave them

    def crm_owned(self, path: str, ids: Collection[str], fields: Collection[str],
                  keys: Collection[str]) -> list[dict[str, Any]]:
        """The records of a Customcrm resource that have one of `ids`, or one of `keys` in one of `fields`."""
        with self._lock:
            records = self._crm_records(path)
            found = self._crm_index.setdefault(path, KeyIndex()).owned(records, ids, fields, keys)
            return [record for i, record in records.items() if i in found]  # in the order the feed told them

    def exact_get(self, sync_path: str, key: str) -> dict[str, Any] | None:
        """One row as the REST API gives it (no Timestamp), or None when the mirror does not hold it."""
        with self._lock:
            row = self._exact_rows(sync_path).get(key.lower())
        return None if row is None else {k: v for k, v in row.items() if k != "Timestamp"}

    def _exact_rows(self, sync_path: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._stale(self._exact_read.get(sync_path), f"exact:{sync_path}", "exact:*"):
                now = (self._passes, self._writes)
                rows = read_sync(self._exact_client, self._exact_url(sync_path), self._exact_headers,
                                 self._exact_marks.get(sync_path, 0))
                mirrored = self._exact.setdefault(sync_path, {})
                index = self._exact_index.get(sync_path)
                for row in rows:
                    key = str(row["ID"]).lower()
                    mirrored[key] = row
                    if index is not None:
                        index.update(key, row)
                    self._exact_marks[sync_path] = max(self._exact_marks.get(sync_path, 0), int(row["Timestamp"]))
                self._exact_read[sync_path] = now
                self.reads += 1
                self._forget_deleted()
            return self._exact.get(sync_path, {})

    def _forget_deleted(self) -> None:
        """Drop what Exact's deletion log lists since the last read of it. Read again after a pass, or after a
        delete by any reader: whoever reads a set again refreshes it for every reader, and a row deleted by
        one check must not stay behind in the set another check's read just made fresh."""
        read = self._deleted_read
        if read is not None and read[0] == self._passes and self._last_delete <= read[1]:
            return
        now = (self._passes, self._writes)
        rows = read_sync(self._exact_client, self._exact_url("sync/Deleted"), self._exact_headers, self._deleted_mark)
        for row in rows:
            key = str(row.get("EntityKey") or "").lower()
            for sync_path, mirrored in self._exact.items():
                if mirrored.pop(key, None) is not None and sync_path in self._exact_index:
                    self._exact_index[sync_path].update(key, None)
            self._deleted_mark = max(self._deleted_mark, int(row["Timestamp"]))
        self._deleted_read = now

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
            if self._stale(self._crm_read, "customcrm:*"):
                now = (self._passes, self._writes)
                changes, self._crm_cursor = read_changes(self._crm_client, self._crm_headers, self._crm_cursor)
                for change in changes:
                    records = self._crm.setdefault(change["resource"], {})
                    index = self._crm_index.get(change["resource"])
                    record_id = str(change["id"])
                    if change["op"] == "deleted":
                        records.pop(record_id, None)
                        record = None
                    else:
                        record = records[record_id] = change["record"]
                    if index is not None:
                        index.update(record_id, record)
                self._crm_read = now
                self.reads += 1
            return self._crm.get(path, {})
