"""The three-way merge, per property: what both systems hold after a pass, from what each holds now and what
they held when last in sync (the snapshot).

One set of rules serves a record's header, its lines and the moment two existing records are linked, so the
engine cannot merge one way in one place and another way elsewhere:

- both sides hold the same value: nothing to do;
- no snapshot yet (at link time, or a line new on both sides): a filled value wins over an empty one, and
  of two filled values the side edited last;
- one side still holds the snapshot's value: the other side changed it, and its value wins;
- both changed it: the side edited last wins (`crm_first`), ties having gone to the configured priority
  before this is called.

Pure functions over plain values: no connector, no store, no clock. Property tests exercise them directly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MISSING", "Merged", "empty", "link_value", "merge_values", "merged_value"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


# No snapshot value: the records were never in sync on this property (a new link, a new line).
MISSING: Final = _Missing()


def empty(value: Any) -> bool:
    """No value: None, the canonical form of an empty value on either side (`sync.values.canonical`); 0 and
    False are values."""
    return value is None


def link_value(crm: Any, exact: Any, crm_first: bool) -> Any:
    """The value two records hold once linked: an empty value never overwrites a filled one."""
    if crm == exact:
        return crm
    if empty(crm):
        return exact
    if empty(exact):
        return crm
    return crm if crm_first else exact


def merged_value(crm: Any, exact: Any, snapshot: Any, crm_first: bool) -> Any:
    """One property's value after the pass (see the module's rules)."""
    if crm == exact:
        return crm
    if snapshot is MISSING:
        return link_value(crm, exact, crm_first)
    if crm == snapshot:
        return exact
    if exact == snapshot:
        return crm
    return crm if crm_first else exact


@dataclass
class Merged:
    """What to write to each side (property -> value) and the snapshot both then hold."""

    to_crm: dict[str, Any] = field(default_factory=dict)
    to_exact: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)


def merge_values(names: Iterable[str], crm: Mapping[str, Any], exact: Mapping[str, Any],
                 snapshot: Mapping[str, Any] | None, crm_first: bool, exact_keeps: Collection[str] = ()
                 ) -> Merged:
    """Every property of `names` merged; `snapshot` None at link time. A property in `exact_keeps` cannot be
    changed in Exact after create, so where the merge would change it, Exact's value stands on both sides."""
    out = Merged()
    for name in names:
        c, e = crm.get(name), exact.get(name)
        value = merged_value(c, e, MISSING if snapshot is None else snapshot.get(name, MISSING), crm_first)
        if name in exact_keeps and value != e:
            value = e
        out.snapshot[name] = value
        if value != c:
            out.to_crm[name] = value
        if value != e:
            out.to_exact[name] = value
    return out
