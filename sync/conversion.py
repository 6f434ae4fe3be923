"""Values as the merge compares them, and back as each system takes them.

The merge compares one canonical value per property whichever system it came from (`sync.values` says
what canonical is per kind). References are the exception that needs state: both sides' references are
compared as the Customcrm id of the record referred to, translated through the links of the flow that
links those records, so a reference whose record is not linked yet waits for a later pass.

An engine takes its `Conversion` from its class (`Engine.conversion_class`), the seam a variant of the
engine uses to convert differently (a planted time-zone bug, say) without touching the pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync.lines import UNLINKED
from sync.planning import FlowPlan, Mapping
from sync.reports import Waiting
from sync.sides import Side
from sync.store import LinkStore
from sync.values import canonical, exact_datetime, parse_crm_datetime, to_customcrm, to_exact

__all__ = ["Conversion"]


class Conversion:
    """Conversions of one engine: its link store translates references; `priority` breaks equal times."""

    def __init__(self, store: LinkStore, priority: str) -> None:
        self.store = store
        self.priority = priority

    def crm_value(self, mapping: Mapping, raw: Any) -> Any:
        if mapping.kind == "ref":
            if raw in (None, ""):
                return None
            if mapping.soft and mapping.ref_flow and self.store.link_by_crm(mapping.ref_flow, str(raw)) is None:
                return None  # no Exact counterpart (yet): compared as empty, so nothing is cleared either way
            return str(raw)
        return canonical(raw, mapping.kind)

    def exact_value(self, mapping: Mapping, raw: Any) -> Any:
        if mapping.kind == "ref":
            if mapping.read_only:
                return raw
            return self._to_canonical_ref(mapping, raw)
        return canonical(raw, mapping.kind)

    def _to_canonical_ref(self, mapping: Mapping, exact_value: Any) -> Any:
        if exact_value is None:
            return None
        assert mapping.ref_flow is not None
        link = self.store.link_by_exact(mapping.ref_flow, str(exact_value).lower())
        return link.crm_id if link is not None else UNLINKED + str(exact_value).lower()

    def crm_values(self, plan: FlowPlan, record: dict[str, Any]) -> dict[str, Any]:
        return {m.id: self.crm_value(m, record.get(m.crm_field)) for m in plan.header if not m.read_only}

    def exact_values(self, plan: FlowPlan, record: dict[str, Any]) -> dict[str, Any]:
        return {m.id: self.exact_value(m, record.get(m.exact_field)) for m in plan.header if not m.read_only}

    def to_exact_value(self, mapping: Mapping, value: Any) -> Any:
        if mapping.kind != "ref":
            return to_exact(value, mapping.kind)
        if value is None:
            return None
        assert mapping.ref_flow is not None
        link = self.store.link_by_crm(mapping.ref_flow, str(value))
        if link is None:
            raise Waiting(f"{mapping.crm_field} refers to Customcrm {value}, which is not linked to Exact yet "
                          f"(flow {mapping.ref_flow})")
        return link.exact_id

    def to_crm_value(self, mapping: Mapping, value: Any) -> Any:
        if mapping.kind == "ref" and isinstance(value, str) and value.startswith(UNLINKED):
            raise Waiting(f"Exact {mapping.exact_field} {value[len(UNLINKED):]} is not linked to a Customcrm "
                          f"record (flow {mapping.ref_flow})")
        return to_customcrm(value, mapping.kind)

    @staticmethod
    def crm_modified(plan: FlowPlan, record: dict[str, Any]) -> datetime:
        raw = record.get(plan.resource.modified)
        return parse_crm_datetime(raw) if isinstance(raw, str) else datetime.min.replace(tzinfo=UTC)

    @staticmethod
    def exact_modified(plan: FlowPlan, record: dict[str, Any]) -> datetime:
        raw = record.get(plan.entity.modified)
        parsed = exact_datetime(raw) if isinstance(raw, str) else None
        return parsed or datetime.min.replace(tzinfo=UTC)

    def crm_wins(self, plan: FlowPlan, crm_record: dict[str, Any], exact_record: dict[str, Any]) -> bool:
        """The later edit wins; equal modification times go to the priority system."""
        crm_time, exact_time = self.crm_modified(plan, crm_record), self.exact_modified(plan, exact_record)
        if crm_time == exact_time:
            return self.priority == Side.CRM
        return crm_time > exact_time
