"""The checklist's own reading of the document: which rows it checks, as which kind of value, which Exact
fields only Exact writes, which flows a reference goes through, and when a flow cannot be checked at all.

The checklist is the judge of an engine, so it must not take its reading from the engine it judges: this
planner reads the parsed document and the per-system declarations (``sync.systems``, the spec layer that
says what the document cannot: collections, field kinds, references, lines, merge keys) and nothing of
``sync.engine``. A flow the reference engine could not plan is still checked here, and a misreading in the
engine's planner cannot make a row disappear from the checklist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.systems.customcrm import CustomcrmResource, resource_for
from sync.systems.exact import ExactEntity, entity_for

__all__ = ["CheckPlan", "RowCheck", "plan_checks", "value_kind"]

# The document's data types, as the kind of value the checklist compares.
_EDM: dict[str, str] = {"Edm.String": "string", "Edm.Guid": "guid", "Edm.Double": "double", "Edm.Decimal": "double",
                        "Edm.Int16": "int", "Edm.Int32": "int", "Edm.Int64": "int", "Edm.Byte": "int",
                        "Edm.Boolean": "bool", "Edm.DateTime": "datetime", "Edm.DateTimeOffset": "datetime"}


def value_kind(data_type: str | None, crm_kind: str | None) -> str:
    """How a row's values are compared: Customcrm's declared kind where it has one (a date stays a calendar
    date even where Exact stores a DateTime), else the document's data type."""
    if crm_kind is not None:
        return crm_kind
    return _EDM.get(data_type or "", "string")


@dataclass(frozen=True)
class RowCheck:
    """A table row as the checklist checks it."""

    row: PropertyRow
    kind: str
    ref_flow: str | None = None  # a reference: the flow whose pairs translate it
    read_only: bool = False  # Exact computes it: compared, never written by a check
    soft: bool = False  # a reference that may stay empty in Exact (an owner with no Exact user)

    @property
    def id(self) -> str:
        return self.row.source

    @property
    def is_line(self) -> bool:
        return self.row.source.startswith("Lines.")

    @property
    def crm_field(self) -> str:
        return self.row.source.split(".", 1)[1] if self.is_line else self.row.source

    @property
    def exact_field(self) -> str:
        return self.row.target.split(".", 1)[1] if self.is_line else self.row.target


@dataclass(frozen=True)
class CheckPlan:
    """One flow as the checklist checks it: both systems' declarations and the rows."""

    flow: Flow
    resource: CustomcrmResource
    entity: ExactEntity
    mappings: tuple[RowCheck, ...]
    kind: str = "records"  # or "users": order owners as Exact users (matched, never created)


def _linking_flow(doc: Dataflow, type_name: str, target_set: str | None) -> str | None:
    """The document's flow that pairs Customcrm `type_name` records with the Exact set `target_set`."""
    for flow in doc.flows:
        if flow.source_type.lower() == type_name.lower() and (
                target_set is None or flow.target_type.lower() == target_set.lower()):
            return flow.id
    return None


def _owner_rows(flow: Flow, doc: Dataflow, entity: ExactEntity) -> list[RowCheck]:
    """An order's or quote's owner: the rows of the document's "User to <this set>" flow apply to it."""
    out: list[RowCheck] = []
    for other in doc.flows:
        if other.source_type.lower() != "user" or other.target_type.lower() != flow.target_type.lower():
            continue
        for row in other.properties:
            owner = PropertyRow("OwnerId", row.target, row.data_type, row.raw_type, row.line)
            if row.target in entity.references:
                out.append(RowCheck(owner, "ref", other.id, soft=True))
            elif row.target.endswith("FullName"):
                out.append(RowCheck(PropertyRow("OwnerId:FullName", row.target, row.data_type, row.raw_type,
                                                row.line), "ref", other.id, read_only=True))
    return out


# The project's own document, whose tables are complete: where a user sees what a full table looks like.
COMPLETE_TABLES = "dataflows/customcrm-exact.rst"


def _add_rows(flow: Flow, fields: list[str]) -> str:
    """What to add to the document so that the flow can be checked."""
    names = " and ".join(f"Exact {flow.target_type}.{name}" for name in fields)
    where = f" of the section at line {flow.line}" if flow.line else ""
    return f"add a row mapping {names} to the table{where} (see {COMPLETE_TABLES} for a complete table)"


def plan_checks(flow: Flow, doc: Dataflow) -> CheckPlan | str:
    """The flow as the checklist checks it, or why it cannot be checked (named with the table line)."""
    resource, entity = resource_for(flow.source_type), entity_for(flow.target_type)
    if resource is None:
        return f"talkcheck has no declaration for Customcrm {flow.source_type}"
    if entity is None:
        return f"talkcheck has no declaration for Exact {flow.target_type}"
    if flow.source_type.lower() == "user":
        if not any(row.target.lower() == "salesperson" for row in flow.properties):
            return (f"not satisfiable: the table does not say which Exact {flow.target_type} property is the user; "
                    f"{_add_rows(flow, ['Salesperson'])}")
        return CheckPlan(flow, resource, entity, (), kind="users")
    rows: list[RowCheck] = []
    for row in flow.properties:
        crm_kind = resource.kind(row.source)
        if crm_kind is None:
            return f"Customcrm {flow.source_type} has no property {row.source!r} (table line {row.line})"
        line = row.source.startswith("Lines.")
        if line and entity.lines is None:
            return f"Exact {flow.target_type} has no lines for {row.source!r} (table line {row.line})"
        if crm_kind.startswith("ref:"):
            references = dict(entity.lines.references) if line and entity.lines else entity.references
            target_set = references.get(row.target.split(".", 1)[-1])
            through = _linking_flow(doc, crm_kind[4:], target_set)
            if through is None:
                return (f"{row.source} refers to a Customcrm {crm_kind[4:]}, but no flow of the document pairs them "
                        f"with Exact {target_set or '?'} (table line {row.line})")
            rows.append(RowCheck(row, "ref", through))
        else:
            rows.append(RowCheck(row, value_kind(row.data_type, crm_kind)))
    rows.extend(_owner_rows(flow, doc, entity))
    header = {r.exact_field for r in rows if not r.is_line}
    missing = [" or ".join(group) for group in entity.mandatory if not any(name in header for name in group)]
    if missing:
        return (f"not satisfiable: Exact {flow.target_type} cannot be created without {', '.join(missing)}, which "
                f"the document's table does not map; {_add_rows(flow, [g.split(' or ')[0] for g in missing])}")
    if entity.lines is not None and not any(r.is_line for r in rows):
        return (f"not satisfiable: Exact {flow.target_type} needs lines, which the document's table does not map; "
                f"{_add_rows(flow, [entity.lines.nav])}")
    return CheckPlan(flow, resource, entity, tuple(rows))
