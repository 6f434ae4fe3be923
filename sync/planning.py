"""The engine's reading of a dataflow document: each flow resolved against the system declarations.

A flow's table rows become `Mapping`s (which Customcrm field, which Exact field, compared as which kind,
translated through which flow's links when it is a reference); a flow the engine cannot synchronize is
said in words instead (`plan_flow` returns a string), so a pass reports it rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.systems.customcrm import CustomcrmResource, resource_for
from sync.systems.exact import USERS, ExactEntity, entity_for
from sync.values import kind_for

__all__ = ["FlowPlan", "Mapping", "order_flows", "owner_field", "plan_flow"]


@dataclass(frozen=True)
class Mapping:
    """A table row resolved against both systems: which fields, compared as which kind."""

    row: PropertyRow
    kind: str
    ref_flow: str | None = None  # for a reference: the flow whose links translate it
    read_only: bool = False  # Exact computes it: checked, never written
    soft: bool = False  # a reference that may stay empty in Exact (an owner without an Exact user)

    # Worked out once per plan (a frozen value): a pass asks each mapping for them for every record.

    @property
    def id(self) -> str:
        return self.row.source

    @cached_property
    def crm_field(self) -> str:
        return self.row.source.split(".", 1)[1] if self.is_line else self.row.source

    @cached_property
    def exact_field(self) -> str:
        return self.row.target.split(".", 1)[1] if self.is_line else self.row.target

    @cached_property
    def is_line(self) -> bool:
        return self.row.source.startswith("Lines.")


@dataclass(frozen=True)
class FlowPlan:
    flow: Flow
    resource: CustomcrmResource
    entity: ExactEntity
    mappings: tuple[Mapping, ...]
    kind: str = "records"  # or "users": the reference flow of order owners to Exact users

    @cached_property
    def header(self) -> tuple[Mapping, ...]:
        return tuple(m for m in self.mappings if not m.is_line)

    @cached_property
    def lines(self) -> tuple[Mapping, ...]:
        return tuple(m for m in self.mappings if m.is_line)

    @property
    def exact_fields(self) -> list[str]:
        return list(self._exact_fields)

    @cached_property
    def _exact_fields(self) -> tuple[str, ...]:
        return tuple(m.exact_field for m in self.header)

    @property
    def line_flow(self) -> str:
        return f"{self.flow.id}#lines"

    @property
    def merged_ids(self) -> list[str]:
        """The header properties the merge decides (Exact computes the read-only ones)."""
        return [m.id for m in self.header if not m.read_only]

    @property
    def exact_keeps(self) -> set[str]:
        """Properties Exact refuses to change after create: where the merge would change one, Exact's stands."""
        return {m.id for m in self.header if m.exact_field in self.entity.immutable}


def _ref_flow(doc: Dataflow | None, ref_type: str, target_set: str | None) -> str | None:
    """The flow that links records of `ref_type` to the Exact set `target_set`."""
    if doc is None:
        return None
    for flow in doc.flows:
        if flow.source_type.lower() == ref_type.lower() and (
                target_set is None or flow.target_type.lower() == target_set.lower()):
            return flow.id
    return None


def plan_flow(flow: Flow, doc: Dataflow | None = None) -> FlowPlan | str:
    """Resolve a flow against what the engine knows; a string says why it cannot be synchronized."""
    resource = resource_for(flow.source_type)
    if resource is None:
        return f"the engine has no declaration for Customcrm {flow.source_type}"
    entity = entity_for(flow.target_type)
    if entity is None:
        return f"the engine has no declaration for Exact {flow.target_type}"
    if flow.source_type.lower() == "user":
        owner_refs = {name for name, target in entity.references.items() if target == USERS.set_name}
        if not any(row.target in owner_refs for row in flow.properties):
            return (f"not satisfiable: the table does not say which Exact {flow.target_type} property refers "
                    "to the user")
        return FlowPlan(flow, resource, entity, (), kind="users")
    mappings: list[Mapping] = []
    for row in flow.properties:
        crm_kind = resource.kind(row.source)
        if crm_kind is None:
            return f"Customcrm {flow.source_type} has no property {row.source!r} (table line {row.line})"
        if row.source.startswith("Lines.") and entity.lines is None:
            return f"Exact {flow.target_type} has no lines for {row.source!r} (table line {row.line})"
        ref_flow = None
        if crm_kind.startswith("ref:"):
            target_field = row.target.split(".", 1)[-1]
            references = dict(entity.lines.references) if row.source.startswith("Lines.") and entity.lines else \
                entity.references
            ref_flow = _ref_flow(doc, crm_kind[4:], references.get(target_field))
            if ref_flow is None:
                return (f"{row.source} refers to a Customcrm {crm_kind[4:]}, but no flow of the document links "
                        f"them to Exact {references.get(target_field, '?')}")
            mappings.append(Mapping(row, "ref", ref_flow))
        else:
            mappings.append(Mapping(row, kind_for(row.data_type, crm_kind)))
    # The owner of an order or quote: the rows of the reference flow "User to <this target>" apply here.
    if doc is not None:
        for other in doc.flows:
            if other.source_type.lower() != "user" or other.target_type.lower() != flow.target_type.lower():
                continue
            owner = owner_field(resource, other.source_type)
            if owner:
                for row in other.properties:
                    if row.target in entity.references:
                        mappings.append(Mapping(PropertyRow(owner, row.target, row.data_type, row.raw_type,
                                                            row.line), "ref", other.id, soft=True))
                    elif row.target.endswith("FullName"):
                        mappings.append(Mapping(PropertyRow(f"{owner}:FullName", row.target, row.data_type,
                                                            row.raw_type, row.line), "ref", other.id, read_only=True))
    mapped = {m.exact_field for m in mappings if not m.is_line}
    missing = [" or ".join(group) for group in entity.mandatory if not any(name in mapped for name in group)]
    if missing:
        return (f"not satisfiable: Exact {flow.target_type} cannot be created without "
                f"{', '.join(missing)}, which the document's table does not map")
    if entity.lines is not None and not any(m.is_line for m in mappings):
        return f"not satisfiable: Exact {flow.target_type} needs lines, which the document's table does not map"
    if flow.merge_rules:  # the document's own merge table replaces the declared merge keys
        unmapped = [r for r in flow.merge_rules if not set(r.target) <= mapped]
        if unmapped:
            return (f"the merge row at line {unmapped[0].line} names Exact {flow.target_type} "
                    f"{' + '.join(unmapped[0].target)}, which the document's table does not map")
        entity = replace(entity, merge_keys=tuple(rule.target for rule in flow.merge_rules))
    return FlowPlan(flow, resource, entity, tuple(mappings))


def owner_field(resource: CustomcrmResource, owner_type: str) -> str:
    """The field of `resource` that refers to its owner of type `owner_type` (an order's user), or ""."""
    return next((name for name, kind in resource.fields.items() if kind.lower() == f"ref:{owner_type.lower()}"), "")


def order_flows(flows: tuple[Flow, ...]) -> list[Flow]:
    """Flows in dependency order; reference flows of users first, since other flows translate through them."""
    by_id = {f.id: f for f in flows}
    done: list[Flow] = [f for f in flows if f.source_type.lower() == "user"]
    seen: set[str] = {f.id for f in done}

    def visit(flow: Flow, path: tuple[str, ...]) -> None:
        if flow.id in seen or flow.id in path:
            return
        for required in flow.requires:
            if required in by_id:
                visit(by_id[required], (*path, flow.id))
        seen.add(flow.id)
        done.append(flow)

    for flow in flows:
        visit(flow, ())
    return done
