"""What Exact shows on a record that the record does not hold: values read from the records it refers to.

A contact shows its account's name, city and country; an order shows its customer's name and its sales
person's full name; a line shows its item's code. Exact works these out when the record is read, so they
follow the related record when it changes. Each is one `Derived` rule per entity set, made from the set's
references, so the mock reads the rules once instead of testing set names on every read, and a filter
that names none of them need not work any of them out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from mocks.exact.entities import ENTITY_SETS, EntitySetDef

__all__ = ["Derived", "derivations", "derived_names", "derived_values", "sources"]

# (set or "users", key) -> the related record as a mapping ({} when there is none)
Lookup = Callable[[str, str], Mapping[str, Any]]


@dataclass(frozen=True)
class Derived:
    """`name` is read from the record that `via` points at (in `target`) by `read(related, record)`.
    `always`: shown even when `via` is empty (then from an empty related record)."""

    name: str
    via: str
    target: str
    read: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
    always: bool = False


def _field(source: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda related, _record: related.get(source)


_CONTACT_ACCOUNT: tuple[tuple[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Any]], ...] = (
    ("AccountName", _field("Name")), ("City", _field("City")), ("Country", _field("Country")),
    ("Postcode", _field("Postcode")), ("State", _field("State")), ("AddressLine2", _field("AddressLine2")),
    ("Code", _field("Code")), ("AccountIsSupplier", lambda a, _r: bool(a.get("IsSupplier"))),
    ("AccountIsCustomer", lambda a, _r: a.get("Status") == "C"),
    ("AccountMainContact", _field("MainContact")),
    ("IsMainContact", lambda a, r: bool(a) and a.get("MainContact") == r.get("ID")),
)


@cache
def derivations(set_name: str) -> tuple[Derived, ...]:
    """The derived values of an entity set, from its references."""
    entity_set = ENTITY_SETS[set_name]
    rules: list[Derived] = []
    if set_name == "Contacts":  # a contact shows its account's address and standing
        rules += [Derived(name, "Account", "Accounts", read, always=True) for name, read in _CONTACT_ACCOUNT]
    for prop, target in entity_set.references.items():
        wanted: tuple[tuple[str, str], ...] = {
            "users": ((f"{prop}FullName", "FullName"),),
            "Accounts": ((f"{prop}Name", "Name"), (f"{prop}Code", "Code")),
            "Contacts": ((f"{prop}FullName", "FullName"),),
        }.get(target, ())
        rules += [Derived(name, prop, target, _field(source)) for name, source in wanted
                  if name in entity_set.properties]
        if target == "Items":
            rules += [Derived("ItemCode", prop, target, _field("Code")),
                      Derived("ItemDescription", prop, target, _field("Description"))]
    return tuple(rules)


@cache
def derived_names(set_name: str) -> frozenset[str]:
    return frozenset(rule.name for rule in derivations(set_name))


def derived_values(entity_set: EntitySetDef, record: Mapping[str, Any], lookup: Lookup) -> dict[str, Any]:
    """The derived values of one record, each read from the related record as it is now."""
    out: dict[str, Any] = {}
    related: dict[tuple[str, str], Mapping[str, Any]] = {}
    for rule in derivations(entity_set.name):
        value = record.get(rule.via)
        if value is None and not rule.always:
            continue
        key = (rule.target, str(value or ""))
        if key not in related:
            related[key] = lookup(rule.target, key[1]) if value is not None else {}
        out[rule.name] = rule.read(related[key], record)
    return out


def sources(entity_set: EntitySetDef, record: Mapping[str, Any], wanted: frozenset[str] | None
            ) -> tuple[tuple[str, str], ...]:
    """The related records the derived values of `record` (the `wanted` ones) are read from, as (set or
    "users", key): what a kept copy of the written record depends on besides the record itself."""
    out: list[tuple[str, str]] = []
    for rule in derivations(entity_set.name):
        value = record.get(rule.via)
        if value is not None and (wanted is None or rule.name in wanted):
            out.append((rule.target, str(value)))
    return tuple(dict.fromkeys(out))
