"""One division's records as a GET shows them: the stored values with what Exact derives from related
records (`views`) over them, as JSON values (`wire`), and what a kept written copy depends on. Free of
HTTP; the routes write the answer."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any

from mocks.exact.division import Division
from mocks.exact.edm import to_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.views import derived_names, derived_values, sources

__all__ = ["Reader"]


class Reader:
    """Reads of one division; `user_name` gives a user's full name (None for no such user)."""

    def __init__(self, division: Division, user_name: Callable[[str], str | None]) -> None:
        self.division = division
        self.user_name = user_name

    def view(self, entity_set: EntitySetDef, record: dict[str, Any],
             fields: frozenset[str] | None = None) -> Mapping[str, Any]:
        """A record as GET shows it, with the values Exact derives from related records at read time (read
        only: the derived values over the stored ones, nothing copied). With `fields`, only what those need:
        a filter that names no derived value is answered from the stored record."""
        if fields is not None and not fields & derived_names(entity_set.name):
            return record
        derived = self.derived(entity_set, record)
        return ChainMap(derived, record) if derived else record

    def wire(self, entity_set: EntitySetDef, record: dict[str, Any],
             wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """A record's values as the JSON of a GET writes them (a new dict the caller may change), all of them
        or the `wanted` ones: its own values as kept by the writer, with the derived ones worked out now."""
        own = self.division.writer.own(self.division.number, entity_set, record)
        out = dict(own) if wanted is None else {name: own[name] for name in wanted if name in own}
        out.update(self.derived_wire(entity_set, record, wanted))
        return out

    def derived_signature(self, entity_set: EntitySetDef, record: dict[str, Any],
                          wanted: frozenset[str] | None) -> tuple[Any, ...]:
        """What the derived values of `record` (the `wanted` ones) depend on now: each related record's
        Timestamp, each related user's name. A kept copy of the written record is good while it is equal."""
        related = self.division.writer.kept(self.division.number, entity_set, record, ("sources", wanted),
                                            lambda: sources(entity_set, record, wanted))
        if not related:
            return ()
        out: list[Any] = []
        for target, key in related:
            if target == "users":
                out.append(self.user_name(key))
            else:
                out.append((self.division.rows(ENTITY_SETS[target]).get(key) or {}).get("_timestamp"))
        return tuple(out)

    def derived_wire(self, entity_set: EntitySetDef, record: dict[str, Any],
                     wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """The properties Exact derives at read time (the `wanted` ones), as JSON values: worked out from
        the related records now, or the stored value where there is nothing to derive from."""
        names = derived_names(entity_set.name)
        if wanted is not None:
            names = names & wanted
        if not names:
            return {}
        derived = self.derived(entity_set, record)
        out: dict[str, Any] = {}
        for name in sorted(names):
            prop = entity_set.properties.get(name)
            if prop is not None and not prop.is_collection:
                out[name] = to_wire(derived[name] if name in derived else record.get(name), prop.edm_type)
        return out

    def derived(self, entity_set: EntitySetDef, record: Mapping[str, Any]) -> dict[str, Any]:
        """The values Exact derives from related records at read time (`views`)."""

        def lookup(target: str, key: str) -> Mapping[str, Any]:
            if target == "users":
                name = self.user_name(key)
                return {"FullName": name} if name is not None else {}
            return self.division.rows(ENTITY_SETS[target]).get(key) or {}

        return derived_values(entity_set, record, lookup)
