"""Records as Exact's JSON, written once per version.

A GET of a page of 60 accounts writes nearly 10,000 values. Written afresh on every request they were most
of the mock's time (it served such a page at a sixth of the rate its own web stack serves the same bytes).
A record's own values change only when its Timestamp does, so they are written once per version and kept:
as a dict for the paths that still build one, and as JSON bytes (the members of an object, without the
braces) per selection of properties, which a page joins without encoding them again. What Exact derives
from related records (`views`) is left out of the kept bytes and written on every read, since those
records change on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import to_json

from mocks.exact.edm import to_wire
from mocks.exact.entities import EntitySetDef
from mocks.exact.views import derived_names

__all__ = ["RecordWriter", "members", "public"]

MAX_SELECTIONS = 8  # selections kept per record version (a client reads with a few fixed $select lists)

_Key = tuple[int, str, str]
_Entry = tuple[int, dict[str, Any], dict[Any, bytes]]


def public(entity_set: EntitySetDef, record: dict[str, Any]) -> dict[str, Any]:
    """A record's stored values as JSON values (the admin plane's dump: nothing derived)."""
    return {name: to_wire(record.get(name), edm_type) for name, edm_type in entity_set.plain}


def members(values: dict[str, Any]) -> bytes:
    """A dict as the members of a JSON object: its encoding without the braces (b'' when empty)."""
    return to_json(values)[1:-1]


class RecordWriter:
    """Each record's own values as JSON, kept per (division, set, key) for the version it was written at."""

    def __init__(self) -> None:
        self._own: dict[_Key, _Entry] = {}

    def clear(self) -> None:
        self._own.clear()

    def forget(self, division: int, set_name: str, key: str) -> None:
        self._own.pop((division, set_name, key), None)

    def _entry(self, division: int, entity_set: EntitySetDef, record: dict[str, Any]) -> _Entry:
        stamp = record.get("_timestamp")
        key = (division, entity_set.name, str(record.get(entity_set.key)))
        entry = self._own.get(key) if isinstance(stamp, int) else None
        if entry is None or entry[0] != stamp:
            own = {name: to_wire(record.get(name), edm_type) for name, edm_type in entity_set.plain}
            entry = (stamp if isinstance(stamp, int) else -1, own, {})
            if isinstance(stamp, int):
                self._own[key] = entry
        return entry

    def own(self, division: int, entity_set: EntitySetDef, record: dict[str, Any]) -> dict[str, Any]:
        """The record's own values as JSON values, every property (read only: shared between reads)."""
        return self._entry(division, entity_set, record)[1]

    def own_members(self, division: int, entity_set: EntitySetDef, record: dict[str, Any],
                    wanted: frozenset[str] | None) -> bytes:
        """The record's own values (the `wanted` ones, or all), less those Exact derives at read time, as
        the members of a JSON object."""
        _stamp, own, encoded = self._entry(division, entity_set, record)
        found = encoded.get(wanted)
        if found is None:
            derived = derived_names(entity_set.name)
            names = own if wanted is None else [name for name in own if name in wanted]
            found = members({name: own[name] for name in names if name not in derived})
            if len(encoded) < MAX_SELECTIONS:
                encoded[wanted] = found
        return found

    def kept(self, division: int, entity_set: EntitySetDef, record: dict[str, Any], key: Any,
             make: Callable[[], Any]) -> Any:
        """Anything worked out from this version of the record alone (`make`), kept with it under `key`."""
        encoded: dict[Any, Any] = self._entry(division, entity_set, record)[2]
        if key not in encoded:
            encoded[key] = make()
        return encoded[key]

    def row(self, division: int, entity_set: EntitySetDef, record: dict[str, Any], shape: Any,
            build: Callable[[], bytes]) -> bytes:
        """A whole row as written for one `shape` of answer (the selection, the server's address, and what
        the related records it shows were when it was written): kept with the record's version, so a page
        of unchanged records is joined from kept bytes. `build` writes it when it is not kept."""
        encoded = self._entry(division, entity_set, record)[2]
        key = ("row", shape)
        found = encoded.get(key)
        if found is None:
            found = build()
            if len(encoded) < 2 * MAX_SELECTIONS:
                encoded[key] = found
        return found
