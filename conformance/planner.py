"""The checklist's own reading of the document: which rows it checks, as which kind of value, which Exact
fields only Exact writes, which flows a reference goes through, and when a flow cannot be checked at all.

The checklist is the judge of an engine, so it must not take its reading from the engine it judges: this
planner reads the parsed document and the per-system declarations (``sync.systems``, the spec layer that
says what the document cannot: collections, field kinds, references, lines, merge keys) and nothing of
``sync.engine``. A flow the reference engine could not plan is still checked here, and a misreading in the
engine's planner cannot make a row disappear from the checklist.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.systems.customcrm import CustomcrmResource, resource_for
from sync.systems.exact import ExactEntity, entity_for

__all__ = ["CheckPlan", "RowCheck", "document_problems", "plan_checks", "value_kind"]

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

    # Read hundreds of thousands of times in a ci run (every comparison of every record): worked out once.
    @cached_property
    def id(self) -> str:
        return self.row.source

    @cached_property
    def is_line(self) -> bool:
        return self.row.source.startswith("Lines.")

    @cached_property
    def crm_field(self) -> str:
        return self.row.source.split(".", 1)[1] if self.is_line else self.row.source

    @cached_property
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


@lru_cache(maxsize=1024)
def plan_checks(flow: Flow, doc: Dataflow) -> CheckPlan | str:
    """The flow as the checklist checks it, or why it cannot be checked (named with the table line). Worked
    out once per flow and document (both frozen values): every check's context of every lane asks for it."""
    if flow.conditions:
        return (f"conditional: not checked: the document limits this flow to some records ({flow.conditions[0]!r}), "
                "which the checklist cannot stage; it does not pretend the flow is unconditional")
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
    unmapped = [rule for rule in flow.merge_rules if not set(rule.target) <= header]
    if unmapped:
        return (f"not satisfiable: the merge row at line {unmapped[0].line} names Exact {flow.target_type} "
                f"{' + '.join(unmapped[0].target)}, which the document's table does not map; "
                f"{_add_rows(flow, list(unmapped[0].target))}")
    return CheckPlan(flow, resource, _with_document_merge_keys(flow, entity), tuple(rows))


def _with_document_merge_keys(flow: Flow, entity: ExactEntity) -> ExactEntity:
    """The flow's merge keys: the document's merge table where it has one (in its order), else the
    declaration's."""
    if not flow.merge_rules:
        return entity
    return replace(entity, merge_keys=tuple(rule.target for rule in flow.merge_rules))


# The pair of systems talkcheck has declarations and mocks for, in the direction it checks.
SUPPORTED = ("customcrm", "exact")


def document_problems(doc: Dataflow) -> list[str]:
    """What makes a document unfit to run, each with its line: systems talkcheck has no declarations for (or
    the mirror direction, which it does not check yet), and property names neither system has (with the
    nearest one that exists). Empty when the document can run."""
    pair = (doc.source_system, doc.target_system)
    if pair != SUPPORTED:
        if pair == SUPPORTED[::-1]:
            return [f"{doc.name or 'the document'}: this is the mirror direction ({doc.source_label} to "
                    f"{doc.target_label}); talkcheck checks Customcrm to Exact documents only (the engine does not "
                    "create in Customcrm from Exact yet)"]
        return [f"{doc.name or 'the document'}: talkcheck has no declarations for {doc.source_label} to "
                f"{doc.target_label}; it supports Customcrm to Exact documents"]
    problems: list[str] = []
    for flow in doc.flows:
        resource, entity = resource_for(flow.source_type), entity_for(flow.target_type)
        if resource is None or entity is None:
            continue
        crm_names = {resource.key, *resource.fields, *(f"Lines.{name}" for name in resource.line_fields)}
        exact_names = _exact_names(entity)
        pairs = [(row.source, row.target, row.line) for row in flow.properties]
        pairs += [(s, t, rule.line) for rule in flow.merge_rules for s, t in zip(rule.source, rule.target, strict=True)]
        for source, target, line in pairs:
            if source not in crm_names:
                problems.append(_unknown(doc, line, f"Customcrm {flow.source_type}", source, crm_names))
            if exact_names and target not in exact_names:
                problems.append(_unknown(doc, line, f"Exact {flow.target_type}", target, exact_names))
    return problems


def _exact_names(entity: ExactEntity) -> set[str]:
    """Every property of the Exact set (its lines' as ``<Lines>.<name>``), from Exact's API reference."""
    from mocks.exact.properties import TABLES  # the API reference's property lists (the checklist's own copy)

    by_name = {name.lower(): rows for name, rows in TABLES.items()}
    names = {row[0] for row in by_name.get(entity.type_name.lower(), ())}
    if entity.lines is not None:
        names |= {f"{entity.lines.nav}.{row[0]}" for row in by_name.get(entity.lines.nav.lower(), ())}
    return names


def _unknown(doc: Dataflow, line: int, owner: str, name: str, known: set[str]) -> str:
    near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"{doc.name or 'the document'}:{line}: {owner} has no property {name!r}{hint}"
