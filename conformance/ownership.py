"""What one example owns when many examples share the systems (a batch).

An example of a batch never resets the systems, so "every record" must mean "every record of this example":
the records it created, the records the engine made of them, and any record that carries one of its merge-key
values. Merge-key values are unique to an example in a batch (see ``strategies.distinct_value``), so a
duplicate the engine creates, or a deleted record it re-creates, carries one of them and is seen; another
example's records never are. A record seen once stays owned, even after its key is edited or cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Owned", "key_of"]


def key_of(value: Any) -> str | None:
    """A merge-key value as both systems compare it (trimmed, case-insensitive), or None when empty."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    return text or None


@dataclass
class Owned:
    """The records of one example: by id, and by the merge-key values it wrote on either side."""

    exact_fields: tuple[str, ...]  # Exact's merge-key properties
    crm_fields: tuple[str, ...]  # the Customcrm properties mapped to them
    exact_id_field: str = "ID"
    crm_ids: set[str] = field(default_factory=set)
    exact_ids: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)

    def note_keys(self, values: dict[str, Any], fields: Iterable[str]) -> None:
        for name in fields:
            key = key_of(values.get(name))
            if key is not None:
                self.keys.add(key)

    def note_crm(self, values: dict[str, Any], record_id: str | None = None) -> None:
        self.note_keys(values, self.crm_fields)
        if record_id:
            self.crm_ids.add(str(record_id))

    def note_exact(self, values: dict[str, Any], record_id: str | None = None) -> None:
        self.note_keys(values, self.exact_fields)
        if record_id:
            self.exact_ids.add(str(record_id).lower())

    def _mine(self, record: dict[str, Any], record_id: str, ids: set[str], fields: tuple[str, ...]) -> bool:
        return record_id in ids or any(key_of(record.get(name)) in self.keys for name in fields)

    def exact_view(self, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The Exact records (by lower-case id) this example owns; each becomes owned by id from now on."""
        return self.take_exact({k: r for k, r in records.items() if self._mine(r, k, self.exact_ids,
                                                                               self.exact_fields)})

    def take_exact(self, mine: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Exact records found to be this example's (by id or key, as `exact_view` finds them): owned by id
        from now on."""
        self.exact_ids.update(mine)
        return mine

    def crm_view(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Customcrm records this example owns; each becomes owned by id from now on."""
        return self.take_crm([r for r in records if self._mine(r, str(r["Id"]), self.crm_ids, self.crm_fields)])

    def take_crm(self, mine: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.crm_ids.update(str(r["Id"]) for r in mine)
        return mine

    def lines_view(self, lines: dict[str, dict[str, Any]], parent_field: str) -> dict[str, dict[str, Any]]:
        """The Exact lines of the headers this example owns."""
        return {k: r for k, r in lines.items() if str(r.get(parent_field) or "").lower() in self.exact_ids}
