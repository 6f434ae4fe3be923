"""One Exact division's records: the sets, their indexes (lines per header, item codes, Timestamps) and
the deletion log, kept in step on every put and remove. Free of HTTP; `state` runs the writes."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.timestamps import TimestampIndex
from mocks.exact.wire import RecordWriter, public

__all__ = ["FIRST_ROW_VERSION", "Division"]

FIRST_ROW_VERSION = 4_133_185_000


@dataclass
class Division:
    number: int
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    row_version: int = FIRST_ROW_VERSION
    deleted: list[dict[str, Any]] = field(default_factory=list)
    highest: dict[str, int] = field(default_factory=dict)  # the highest number used, per numbered field
    lines_by_header: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # line set -> header -> lines
    item_codes: dict[str, str] = field(default_factory=dict)  # Code -> Items ID (codes are unique)
    stamped: dict[str, TimestampIndex] = field(default_factory=dict)  # set -> its records by Timestamp
    writer: RecordWriter = field(default_factory=RecordWriter)  # records' own values as JSON, per version

    def timestamps(self, set_name: str) -> TimestampIndex:
        return self.stamped.setdefault(set_name, TimestampIndex())

    def header_lines(self, line_set: str, header_key: str) -> set[str]:
        return self.lines_by_header.setdefault(line_set, {}).setdefault(header_key, set())

    def next_version(self) -> int:
        self.row_version += 1
        return self.row_version

    def rows(self, entity_set: EntitySetDef) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(entity_set.name, {})

    def rows_after(self, entity_set: EntitySetDef, after: int) -> list[dict[str, Any]]:
        """The records of a set changed after a Timestamp, in Timestamp order (the sync API's read), from
        the index rather than a scan of every row."""
        rows = self.rows(entity_set)
        return [rows[key] for key in self.timestamps(entity_set.name).after(after) if key in rows]

    def deleted_after(self, after: int) -> list[dict[str, Any]]:
        """The deletions logged after a Timestamp (the log is in Timestamp order)."""
        return self.deleted[bisect_right(self.deleted, after, key=lambda entry: int(entry["_timestamp"])):]

    def lines_of(self, header_set: EntitySetDef, key: str) -> list[dict[str, Any]]:
        """A header's lines in line-number order."""
        assert header_set.lines is not None
        line_set = ENTITY_SETS[header_set.lines.set_name]
        rows = self.rows(line_set)
        keys = self.header_lines(line_set.name, key)
        return sorted((rows[k] for k in keys if k in rows), key=lambda r: int(r.get("LineNumber") or 0))

    def dump(self) -> dict[str, Any]:
        """The division as the admin plane shows it: stored values (nothing derived), and the deletion log."""
        return {"row_version": str(self.row_version),
                "records": {name: [public(ENTITY_SETS[name], r) for r in rows.values()]
                            for name, rows in self.records.items()},
                "deleted": self.deleted}

    def put(self, entity_set: EntitySetDef, record: dict[str, Any]) -> None:
        """Store a record and keep the indexes (lines per header, item codes) in step."""
        key = str(record[entity_set.key])
        self.rows(entity_set)[key] = record
        if entity_set.parent is not None:
            header_lines = ENTITY_SETS[entity_set.parent].lines
            assert header_lines is not None
            self.header_lines(entity_set.name, str(record.get(header_lines.parent_key))).add(key)
        if entity_set.name == "Items" and record.get("Code"):
            self.item_codes[str(record["Code"])] = key

    def remove(self, entity_set: EntitySetDef, key: str, *, keep_row: bool = False) -> None:
        """Take a record out of the indexes, and out of the set unless it is about to be put back."""
        rows = self.rows(entity_set)
        record = rows.get(key)
        if record is None:
            return
        if not keep_row:
            del rows[key]
            self.timestamps(entity_set.name).forget(key)
            self.writer.forget(self.number, entity_set.name, key)
        if entity_set.parent is not None:
            header_lines = ENTITY_SETS[entity_set.parent].lines
            assert header_lines is not None
            self.header_lines(entity_set.name, str(record.get(header_lines.parent_key))).discard(key)
        if entity_set.name == "Items" and self.item_codes.get(str(record.get("Code"))) == key:
            del self.item_codes[str(record.get("Code"))]

    def log_delete(self, entity_set: EntitySetDef, key: str, entry_id: str, user_id: str, now: datetime) -> None:
        """A deletion, as sync/Deleted lists it."""
        if entity_set.deleted_type is not None:
            self.deleted.append({"_timestamp": self.next_version(), "ID": entry_id, "EntityKey": key,
                                 "EntityType": entity_set.deleted_type, "DeletedBy": user_id, "DeletedDate": now,
                                 "Division": self.number})

    def in_use(self, entity_set: EntitySetDef, key: str) -> str | None:
        """The first reference to a record from another set (`Set.Property`), which stops its delete."""
        for other in ENTITY_SETS.values():
            if other.name == entity_set.parent:
                continue
            for prop, target in other.references.items():
                if target != entity_set.name or (entity_set.lines and prop == entity_set.lines.parent_key):
                    continue
                if any(str(r.get(prop) or "").lower() == key for r in self.rows(other).values()):
                    return f"{other.name}.{prop}"
        return None
