"""The reference sync engine: Sesam Talk's rules applied to the flows of a dataflow document.

One pass, per flow in dependency order:

1. read what changed on each side since the stored cursors (Customcrm's change feed, Exact's sync API
   and its deletion log);
2. for each new Customcrm record, link it to an existing Exact record with the same merge key, or
   create one (an intent is recorded first, so a crash between the create and the link is recovered by
   adopting the record on restart instead of creating it twice);
3. for each linked pair that changed, merge three ways against the snapshot of the last sync, property
   by property and line by line: the side that changed wins, and when both changed the later edit wins
   (equal times go to the priority system);
4. a deleted record retires its link; nothing is deleted on the other side and nothing is re-created.

References (a contact's customer, an order's lines' products, an order's owner) are compared as the
Customcrm id of the referenced record and translated through the links of the flow that links them.

A write made by the engine comes back through the change feeds, but its values equal the new snapshot,
so it causes no write back: a second pass with no edits writes nothing.

Example::

    engine = Engine(load_dataflow(), crm_connector, exact_connector, LinkStore("links.sqlite3"))
    report = engine.run_pass()
    print(report.summary())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector
from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.errors import (
    AuthError,
    ConflictError,
    ConnectorError,
    LinkConflict,
    RejectedError,
    StateError,
    SyncError,
)
from sync.lines import LINES, UNLINKED, UNPAIRED, Lines
from sync.merge import empty, link_value, merge_values
from sync.store import Link, LinkStore
from sync.systems.customcrm import CustomcrmResource, resource_for
from sync.systems.exact import ExactEntity, entity_for
from sync.users import UserLinks
from sync.values import canonical, exact_datetime, kind_for, parse_crm_datetime, to_customcrm, to_exact

__all__ = ["FIRST_SYNC", "Engine", "FlowPlan", "FlowReport", "Issue", "Mapping", "SyncReport", "plan_flow"]



FIRST_SYNC = ("create", "refuse", "relink")


class Waiting(SyncError):
    """A record refers to a record that is not linked yet; it is retried on the next pass."""


@dataclass(frozen=True)
class Mapping:
    """A table row resolved against both systems: which fields, compared as which kind."""

    row: PropertyRow
    kind: str
    ref_flow: str | None = None  # for a reference: the flow whose links translate it
    read_only: bool = False  # Exact computes it: checked, never written
    soft: bool = False  # a reference that may stay empty in Exact (an owner without an Exact user)

    @property
    def id(self) -> str:
        return self.row.source

    @property
    def crm_field(self) -> str:
        return self.row.source.split(".", 1)[1] if self.is_line else self.row.source

    @property
    def exact_field(self) -> str:
        return self.row.target.split(".", 1)[1] if self.is_line else self.row.target

    @property
    def is_line(self) -> bool:
        return self.row.source.startswith("Lines.")


@dataclass(frozen=True)
class FlowPlan:
    flow: Flow
    resource: CustomcrmResource
    entity: ExactEntity
    mappings: tuple[Mapping, ...]
    kind: str = "records"  # or "users": the reference flow of order owners to Exact users

    @property
    def header(self) -> tuple[Mapping, ...]:
        return tuple(m for m in self.mappings if not m.is_line)

    @property
    def lines(self) -> tuple[Mapping, ...]:
        return tuple(m for m in self.mappings if m.is_line)

    @property
    def exact_fields(self) -> list[str]:
        return [m.exact_field for m in self.header]

    @property
    def line_flow(self) -> str:
        return f"{self.flow.id}#lines"


@dataclass(frozen=True)
class Issue:
    record: str
    kind: str  # "failed", "skipped", "ambiguous", "retired", "waiting"
    reason: str


@dataclass
class FlowReport:
    flow: str
    created: int = 0
    linked: int = 0
    updated_customcrm: int = 0
    updated_exact: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    retired: int = 0
    not_supported: str = ""
    issues: list[Issue] = field(default_factory=list)

    def note(self, record: str, kind: str, reason: str) -> None:
        self.issues.append(Issue(record, kind, reason))
        if kind in ("failed", "waiting"):
            self.failed += 1
        elif kind in ("skipped", "ambiguous", "held"):
            self.skipped += 1
        elif kind == "retired":
            self.retired += 1


@dataclass
class SyncReport:
    flows: list[FlowReport] = field(default_factory=list)
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def flow(self, flow_id: str) -> FlowReport:
        for report in self.flows:
            if report.flow == flow_id:
                return report
        raise KeyError(flow_id)

    @property
    def writes(self) -> int:
        return sum(r.created + r.updated_customcrm + r.updated_exact for r in self.flows)

    def summary(self) -> str:
        lines = []
        for r in self.flows:
            if r.not_supported:
                lines.append(f"{r.flow}: not synchronized ({r.not_supported})")
                continue
            lines.append(
                f"{r.flow}: created {r.created}, linked {r.linked}, updated in Customcrm {r.updated_customcrm}, "
                f"updated in Exact {r.updated_exact}, unchanged {r.unchanged}, skipped {r.skipped}, "
                f"failed {r.failed}, retired {r.retired}"
            )
            lines.extend(f"  {i.kind}: {i.record}: {i.reason}" for i in r.issues)
        for system, calls in self.calls.items():
            lines.append(f"calls to {system}: " + ", ".join(f"{m} {n}" for m, n in sorted(calls.items())))
        return "\n".join(lines)


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
        if not any(row.target == "Salesperson" or row.target == "SalesPerson" for row in flow.properties):
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
            if other.source_type.lower() == "user" and other.target_type.lower() == flow.target_type.lower():
                for row in other.properties:
                    if row.target in entity.references:
                        mappings.append(Mapping(PropertyRow("OwnerId", row.target, row.data_type, row.raw_type,
                                                            row.line), "ref", other.id, soft=True))
                    elif row.target.endswith("FullName"):
                        mappings.append(Mapping(PropertyRow("OwnerId:FullName", row.target, row.data_type,
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


def _order(flows: tuple[Flow, ...]) -> list[Flow]:
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


class Engine:
    """Synchronizes the flows of a document between one Customcrm tenant and one Exact division."""

    def __init__(self, doc: Dataflow, crm: CustomcrmConnector, exact: ExactConnector, store: LinkStore,
                 *, priority: str = "customcrm", flows: list[str] | None = None, first_sync: str = "create") -> None:
        if priority not in ("customcrm", "exact"):
            raise ValueError("priority is 'customcrm' or 'exact'")
        if first_sync not in FIRST_SYNC:
            raise ValueError(f"first_sync is one of {', '.join(FIRST_SYNC)}")
        # What a pass does when the state knows nothing yet: "create" what has no match (a first sync),
        # "refuse" when both systems already hold records of a flow (the state may have been lost), or
        # "relink": for one full pass, link by merge key and hold, not create, what has no match.
        self.first_sync = first_sync
        self.doc = doc
        self.crm = crm
        self.exact = exact
        self.store = store
        self.priority = priority
        self.selected = flows
        self._batch: dict[str, dict[str, Any]] = {}  # the Exact records this flow's feed brought in this pass
        self.lines = Lines(self)  # the line collections of orders and quotes
        self.users = UserLinks(self)  # the users flow: owners matched to Exact users by e-mail

    # ------------------------------------------------------------------ planning

    def plan(self, flow: Flow) -> FlowPlan | str:
        return plan_flow(flow, self.doc)

    # ------------------------------------------------------------------ a pass

    def run_pass(self, *, full: bool = False) -> SyncReport:
        """One pass over the selected flows. `full` re-reads both systems from the start instead of from the
        cursors: the recovery for lost or expired cursors (Exact keeps deletions for two months); links whose
        records are gone from a full read are retired."""
        report = SyncReport()
        relink = self.first_sync == "relink"
        full = full or relink  # a relink reads everything both systems hold
        before = (dict(self.crm.counter.calls), dict(self.exact.counter.calls))
        for flow in _order(self.doc.flows):
            if self.selected is not None and flow.id not in self.selected:
                continue
            flow_report = FlowReport(flow.id)
            report.flows.append(flow_report)
            plan = self.plan(flow)
            if isinstance(plan, str):
                flow_report.not_supported = plan
                continue
            if plan.kind == "users":
                self.users.sync(plan, flow_report)
            else:
                self._sync_flow(plan, flow_report, full=full)
        report.calls = {
            "customcrm": _delta(before[0], self.crm.counter.calls),
            "exact": _delta(before[1], self.exact.counter.calls),
        }
        if relink:  # one pass relinks; later ones create as usual, and what it held stays held
            self.first_sync = "create"
        return report

    def _sync_flow(self, plan: FlowPlan, report: FlowReport, *, full: bool = False) -> None:
        flow_id = plan.flow.id
        fresh = self.first_sync == "refuse" and self.store.knows_nothing_of(flow_id)
        self._recover_intents(plan, report)

        crm_cursor = f"{flow_id}:customcrm"
        exact_cursor = f"{flow_id}:exact"
        deleted_cursor = f"{flow_id}:exact-deleted"
        events, next_crm = self.crm.changes(plan.resource, None if full else self.store.cursor(crm_cursor))
        exact_rows, next_exact = self.exact.changes(plan.entity, plan.exact_fields,
                                                    0 if full else int(self.store.cursor(exact_cursor) or 0))
        deleted_keys, deleted_lines, next_deleted = self.exact.deleted(
            plan.entity, int(self.store.cursor(deleted_cursor) or 0))
        if fresh:
            self._refuse_if_both_hold_records(plan, events, exact_rows)
        if full:
            present = {str(r[plan.entity.key]).lower() for r in exact_rows}
            mentioned = {str(e["id"]) for e in events}
            for known in self.store.links(flow_id):
                if known.exact_id not in present and known.exact_id not in deleted_keys:
                    deleted_keys.append(known.exact_id)  # gone from Exact: its deletion log entry has expired
                if known.crm_id not in mentioned and self.crm.get(plan.resource, known.crm_id) is None:
                    events.append({"id": known.crm_id, "op": "deleted", "record": None})
        self._batch = {str(r[plan.entity.key]).lower(): r for r in exact_rows}
        self.store.index_exact(flow_id, [(key, self.merge_keys_of(plan, row)) for key, row in self._batch.items()])
        for key in deleted_keys:
            self.store.unindex_exact(flow_id, key)
        line_rows: dict[str, list[dict[str, Any]]] = {}
        next_lines = 0
        if plan.entity.lines is not None and plan.lines:
            lines_cursor = f"{flow_id}:exact-lines"
            line_rows, next_lines = self.exact.changed_lines(
                plan.entity, [m.exact_field for m in plan.lines], int(self.store.cursor(lines_cursor) or 0))
        self.lines.begin_pass(line_rows, bool(deleted_lines))

        latest: dict[str, dict[str, Any]] = {}
        for event in events:
            latest[str(event["id"])] = event
        touched: dict[str, list[dict[str, Any] | None]] = {}
        to_link: dict[str, dict[str, Any]] = {}
        for crm_id, event in latest.items():
            link = self.store.link_by_crm(flow_id, crm_id)
            if event["op"] == "deleted":
                if link is not None:
                    self.store.retire(flow_id, crm_id, link.exact_id, "customcrm")
                    report.note(crm_id, "retired", f"deleted in Customcrm; Exact {link.exact_id} is left as it is")
                continue
            if link is not None:
                touched[crm_id] = [event["record"], None]
            else:
                to_link[crm_id] = event["record"]
        gone = set(deleted_keys)
        for key in deleted_keys:
            link = self.store.link_by_exact(flow_id, key)
            if link is not None:
                self.store.retire(flow_id, link.crm_id, key, "exact")
                touched.pop(link.crm_id, None)
                report.note(link.crm_id, "retired", f"Exact {key} was deleted; the Customcrm record is left as it is")
        for row in exact_rows:
            key = str(row[plan.entity.key]).lower()
            if key in gone:
                continue
            link = self.store.link_by_exact(flow_id, key)
            if link is not None:
                touched.setdefault(link.crm_id, [None, None])[1] = row
        for key in set(line_rows) - gone:
            link = self.store.link_by_exact(flow_id, key)
            if link is not None:
                touched.setdefault(link.crm_id, [None, None])
        for crm_id in self.store.pending(flow_id):
            if crm_id in touched or crm_id in to_link:
                continue
            if self.store.link_by_crm(flow_id, crm_id) is not None:
                touched[crm_id] = [None, None, {"pending": True}]
            else:
                record = self.crm.get(plan.resource, crm_id)
                if record is None:
                    self.store.drop_pending(flow_id, crm_id)
                else:
                    to_link[crm_id] = record

        for crm_id, record in to_link.items():
            self._guarded(plan, report, crm_id, lambda r=record: self._link_or_create(plan, r, report))
        for crm_id, entry in touched.items():
            crm_record, exact_record = entry[0], entry[1]
            forced = len(entry) > 2
            self._guarded(plan, report, crm_id,
                          lambda c=crm_id, cr=crm_record, er=exact_record, f=forced:
                          self._reconcile(plan, c, cr, er, report, forced=f))

        if next_crm is not None:
            self.store.set_cursor(crm_cursor, next_crm)
        self.store.set_cursor(exact_cursor, str(next_exact))
        self.store.set_cursor(deleted_cursor, str(next_deleted))
        if plan.entity.lines is not None and plan.lines:
            self.store.set_cursor(f"{flow_id}:exact-lines", str(next_lines))

    def _refuse_if_both_hold_records(self, plan: FlowPlan, events: list[dict[str, Any]],
                                     exact_rows: list[dict[str, Any]]) -> None:
        """A state that knows nothing while both systems hold records of this flow: the state file may have
        been lost, and creating what has no merge key would duplicate it. A person decides."""
        live = {str(e["id"]) for e in events if e["op"] != "deleted"}
        linked = self.store.linked_exact_ids()  # records another flow made or linked (Contacts serve two flows)
        unlinked = [r for r in exact_rows if str(r[plan.entity.key]).lower() not in linked]
        if live and unlinked:
            raise StateError(
                f"the state file {self.store.path} holds no links, but both systems already hold "
                f"{plan.flow.id} records ({len(live)} in Customcrm, {len(unlinked)} in Exact). If the state "
                "file was lost or emptied, run `talkcheck sync --relink` once: it links records by their merge "
                "keys and creates none. If this is the first sync of two systems that both hold data, run "
                "`talkcheck sync --first-sync` once.")

    def _guarded(self, plan: FlowPlan, report: FlowReport, crm_id: str, action: Any) -> None:
        """One bad record does not stop a flow: it is reported and retried on the next pass."""
        try:
            action()
        except AuthError:
            raise
        except Waiting as exc:
            report.note(crm_id, "waiting", str(exc))
            self.store.add_pending(plan.flow.id, crm_id)
        except RejectedError as exc:
            # The system refused the data itself (a value it cannot take: a name longer than Exact's 50
            # characters, say). It is reported once as failed; while the refusal stays the same it is
            # retried each pass (what it waits for may arrive) but listed as skipped, so cron is not
            # alarmed every pass about what a person was already told. Nothing is truncated or dropped.
            message = str(exc)
            if self.store.refusal(plan.flow.id, crm_id) == message:
                report.note(crm_id, "skipped", f"still refused, as reported before: {message}")
            else:
                report.note(crm_id, "failed", f"{message} (reported once; edit the record to fix it)")
                self.store.note_refusal(plan.flow.id, crm_id, message)
            self.store.add_pending(plan.flow.id, crm_id)
        except (ConnectorError, LinkConflict, ValueError) as exc:
            report.note(crm_id, "failed", str(exc))
            self.store.add_pending(plan.flow.id, crm_id)
        else:
            self.store.drop_pending(plan.flow.id, crm_id)
            self.store.forget_refusal(plan.flow.id, crm_id)

    # ------------------------------------------------------------------ users (a reference flow)

    # ------------------------------------------------------------------ values

    def _to_canonical_ref(self, mapping: Mapping, exact_value: Any) -> Any:
        if exact_value is None:
            return None
        assert mapping.ref_flow is not None
        link = self.store.link_by_exact(mapping.ref_flow, str(exact_value).lower())
        return link.crm_id if link is not None else UNLINKED + str(exact_value).lower()

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
    def crm_modified(record: dict[str, Any]) -> datetime:
        raw = record.get("ModifiedAt")
        return parse_crm_datetime(raw) if isinstance(raw, str) else datetime.min.replace(tzinfo=UTC)

    @staticmethod
    def exact_modified(record: dict[str, Any]) -> datetime:
        raw = record.get("Modified")
        parsed = exact_datetime(raw) if isinstance(raw, str) else None
        return parsed or datetime.min.replace(tzinfo=UTC)

    def crm_wins(self, crm_record: dict[str, Any], exact_record: dict[str, Any]) -> bool:
        """The later edit wins; equal modification times go to the priority system."""
        crm_time, exact_time = self.crm_modified(crm_record), self.exact_modified(exact_record)
        if crm_time == exact_time:
            return self.priority == "customcrm"
        return crm_time > exact_time

    # ------------------------------------------------------------------ linking and creating

    def has_counterpart(self, plan: FlowPlan, record: dict[str, Any]) -> bool:
        groups = plan.resource.counterpart_when.get(plan.flow.target_type.lower(), ())
        return all(any(record.get(name) not in (None, "") for name in group) for group in groups)

    def merge_conditions(self, plan: FlowPlan, crm_values: dict[str, Any]) -> dict[str, Any]:
        """The first merge key whose Customcrm values are all filled, as Exact property values."""
        by_exact = {m.exact_field: m for m in plan.header}
        for alternative in plan.entity.merge_keys:
            names = (*alternative, *plan.entity.merge_scope)
            if not all(name in by_exact for name in names):
                continue
            values = {name: crm_values[by_exact[name].id] for name in names}
            if all(not empty(v) for v in values.values()):
                return {name: self.to_exact_value(by_exact[name], v) for name, v in values.items()}
        return {}

    @staticmethod
    def _key(values: dict[str, Any]) -> str:
        return json.dumps(sorted((k, str(v).lower()) for k, v in values.items()))

    def merge_keys_of(self, plan: FlowPlan, row: dict[str, Any]) -> list[str]:
        """The merge keys an Exact record can be found by (every alternative whose values are filled)."""
        keys = []
        for alternative in plan.entity.merge_keys:
            names = (*alternative, *plan.entity.merge_scope)
            values = {name: row.get(name) for name in names}
            if all(v not in (None, "") for v in values.values()):
                keys.append(self._key(values))
        return keys

    def find_matches(self, plan: FlowPlan, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        """Exact records with the merge key's values, from the index the sync feed keeps (no API call);
        a record seen in an earlier pass is read back by its key."""
        found = []
        for exact_id in self.store.lookup_exact(plan.flow.id, self._key(conditions)):
            row = self._batch.get(exact_id) or self.exact.get(plan.entity, exact_id, plan.exact_fields)
            if row is None:
                self.store.unindex_exact(plan.flow.id, exact_id)
            else:
                found.append(row)
        return found

    def _recover_intents(self, plan: FlowPlan, report: FlowReport) -> None:
        """After a crash between a create and its link, adopt the created record instead of creating again.

        The record is found by its merge key or, without one, among the records Exact changed since the
        flow's cursor (which a crashed pass never advanced) as the unlinked one with exactly the intended values.
        """
        for crm_id, intent in self.store.intents(plan.flow.id).items():
            conditions = intent.get("conditions") or {}
            intended = intent.get("values") or {}
            if conditions:
                found = self.find_matches(plan, conditions)
            else:
                after = int(self.store.cursor(f"{plan.flow.id}:exact") or 0)
                rows, _ = self.exact.changes(plan.entity, plan.exact_fields, after)
                found = [r for r in rows if intended and
                         {k: v for k, v in self.exact_values(plan, r).items() if k in intended} == intended]
            candidates = [m for m in found
                          if self.store.link_by_exact(plan.flow.id, str(m[plan.entity.key]).lower()) is None]
            record = self.crm.get(plan.resource, crm_id)
            if len(candidates) == 1 and record is not None:
                self._guarded(plan, report, crm_id,
                              lambda r=record, c=candidates[0]: self._link_existing(plan, r, c, report))
                continue
            self.store.drop_intent(plan.flow.id, crm_id)
            self.store.add_pending(plan.flow.id, crm_id)

    def _link_or_create(self, plan: FlowPlan, record: dict[str, Any], report: FlowReport) -> None:
        flow_id = plan.flow.id
        crm_id = str(record["Id"])
        deleted_in = self.store.retired(flow_id, crm_id)
        if deleted_in is not None:
            report.note(crm_id, "skipped", f"its link was retired after a delete in {deleted_in}; not re-created")
            return
        if not self.has_counterpart(plan, record):
            return
        crm_values = self.crm_values(plan, record)
        conditions = self.merge_conditions(plan, crm_values)
        if conditions:
            matches = self.find_matches(plan, conditions)
            if len(matches) > 1:
                keys = ", ".join(str(m[plan.entity.key]) for m in matches)
                report.note(crm_id, "ambiguous",
                            f"{len(matches)} Exact {plan.flow.target_type} match {conditions}: {keys}; nothing created")
                return
            if len(matches) == 1:
                match = matches[0]
                owner = self.store.link_by_exact(flow_id, str(match[plan.entity.key]).lower())
                if owner is not None:
                    report.note(crm_id, "ambiguous",
                                f"the Exact record matching {conditions} is linked to Customcrm {owner.crm_id} "
                                "already; nothing created")
                    return
                self.store.unhold(flow_id, crm_id)
                self._link_existing(plan, record, match, report)
                return
        if self.first_sync == "relink" or self.store.is_held(flow_id, crm_id):
            self.store.hold(flow_id, crm_id)
            report.note(crm_id, "held", "no Exact record matches its merge keys since the state was relinked; it "
                                        "is not created (`talkcheck sync --release-held` lets it be)")
            return
        self._create(plan, record, crm_values, conditions, report)

    def _create(self, plan: FlowPlan, record: dict[str, Any], crm_values: dict[str, Any],
                conditions: dict[str, Any], report: FlowReport) -> None:
        crm_id = str(record["Id"])
        by_id = {m.id: m for m in plan.header}
        values = {by_id[k].exact_field: self.to_exact_value(by_id[k], v)
                  for k, v in crm_values.items() if not empty(v)}
        missing = [" or ".join(group) for group in plan.entity.mandatory
                   if all(empty(values.get(name)) for name in group)]
        if missing:
            report.note(crm_id, "skipped",
                        f"Exact {plan.flow.target_type} needs {', '.join(missing)}, which is empty in Customcrm")
            return
        crm_lines = self.lines.crm_lines(plan, record)
        if plan.entity.lines is not None and plan.lines:
            if not crm_lines:
                report.note(crm_id, "skipped", f"Exact {plan.flow.target_type} needs at least one line")
                return
            values[plan.entity.lines.nav] = [self.lines.exact_body(plan, line) for line in crm_lines.values()]
        self.store.add_intent(plan.flow.id, crm_id, {"conditions": conditions, "values": {
            k: v for k, v in crm_values.items() if not empty(v)}})
        created = self.exact.create(plan.entity, values)
        exact_key = str(created[plan.entity.key]).lower()
        self.store.index_exact(plan.flow.id, [(exact_key, [self._key(conditions)] if conditions else [])])
        snapshot = dict(crm_values)
        # Exact fills defaults (an order date, a quotation date): they go back to Customcrm in this pass,
        # so the next pass finds both sides equal and writes nothing.
        filled = {k: v for k, v in self.exact_values(plan, created).items()
                  if not empty(v) and v != crm_values.get(k) and not str(v).startswith(UNLINKED)}
        if filled:
            snapshot.update(filled)
        if plan.entity.lines is not None and plan.lines:
            # Exact numbers the lines in the order they were posted, and its line feed brings them on the
            # next pass: they are paired then (`Lines.pair_created`), rather than read back one header at
            # a time now.
            snapshot[LINES] = crm_lines
            snapshot[UNPAIRED] = list(crm_lines)
        self.store.put_link(plan.flow.id, crm_id, exact_key, snapshot)
        report.created += 1
        if filled:
            self._write(plan, crm_id, exact_key, record, filled, {}, report)

    def _link_existing(self, plan: FlowPlan, crm_record: dict[str, Any], exact_record: dict[str, Any],
                       report: FlowReport) -> None:
        """Link two existing records; an empty value never overwrites a filled one."""
        merged = merge_values(self._merged_ids(plan), self.crm_values(plan, crm_record),
                              self.exact_values(plan, exact_record), None, self.crm_wins(crm_record, exact_record),
                              self._exact_keeps(plan))
        to_crm, to_exact_, snapshot = merged.to_crm, merged.to_exact, merged.snapshot
        exact_key = str(exact_record[plan.entity.key]).lower()
        self._write(plan, str(crm_record["Id"]), exact_key, crm_record, to_crm, to_exact_, report)
        if plan.entity.lines is not None and plan.lines:
            crm_record = self.crm.get(plan.resource, str(crm_record["Id"])) or crm_record
            snapshot[LINES] = self.lines.link(plan, crm_record, exact_key, report)
        self.store.put_link(plan.flow.id, str(crm_record["Id"]), exact_key, snapshot)
        report.linked += 1

    @staticmethod
    def link_value(crm_value: Any, exact_value: Any, crm_first: bool) -> Any:
        return link_value(crm_value, exact_value, crm_first)

    @staticmethod
    def _merged_ids(plan: FlowPlan) -> list[str]:
        """The header properties the merge decides (Exact computes the read-only ones)."""
        return [m.id for m in plan.header if not m.read_only]

    @staticmethod
    def _exact_keeps(plan: FlowPlan) -> set[str]:
        """Properties Exact refuses to change after create: where the merge would change one, Exact's stands."""
        return {m.id for m in plan.header if m.exact_field in plan.entity.immutable}

    # ------------------------------------------------------------------ keeping in sync

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Three-way merge per property against the last synced snapshot (`sync.merge`).

        Returns the values to write to Customcrm, to Exact, and the new snapshot. `changed` names the
        sides whose change feed mentioned the record; the merge itself goes by values, which is what
        keeps the engine's own writes from echoing back.
        """
        merged = merge_values(self._merged_ids(plan), crm_values, exact_values, snapshot, crm_first,
                              self._exact_keeps(plan))
        return merged.to_crm, merged.to_exact, merged.snapshot

    def _reconcile(self, plan: FlowPlan, crm_id: str, crm_record: dict[str, Any] | None,
                   exact_record: dict[str, Any] | None, report: FlowReport, *, forced: bool = False) -> None:
        flow_id = plan.flow.id
        link = self.store.link_by_crm(flow_id, crm_id)
        if link is None:
            return
        changed = {side for side, rec in (("customcrm", crm_record), ("exact", exact_record)) if rec is not None}
        if UNPAIRED in link.snapshot:
            link = self.lines.pair_created(plan, link)
        if not forced and self.is_echo(plan, link, crm_record, exact_record):
            report.unchanged += 1
            return
        for _attempt in range(3):
            if crm_record is None:
                crm_record = self.crm.get(plan.resource, crm_id)
                if crm_record is None:
                    self._retire(link, "customcrm", report)
                    return
            if exact_record is None:
                exact_record = self.exact.get(plan.entity, link.exact_id, plan.exact_fields)
                if exact_record is None:
                    self._retire(link, "exact", report)
                    return
            to_crm, to_exact_, snapshot = self.merge(
                plan, link.snapshot, self.crm_values(plan, crm_record), self.exact_values(plan, exact_record),
                self.crm_wins(crm_record, exact_record), changed)
            line_result = None
            if plan.entity.lines is not None and plan.lines:
                line_result = self.lines.merge(plan, link, crm_record, self.crm_wins(crm_record, exact_record))
                snapshot[LINES] = line_result.snapshot
            lines_change = line_result is not None and line_result.has_writes
            if not to_crm and not to_exact_ and not lines_change:
                if snapshot != link.snapshot:
                    self.store.update_snapshot(flow_id, crm_id, snapshot)
                report.unchanged += 1
                return
            try:
                crm_lines_body = line_result.crm_body if line_result is not None and line_result.crm_changed else None
                self._write(plan, crm_id, link.exact_id, crm_record, to_crm, to_exact_, report, crm_lines_body)
                if line_result is not None:
                    snapshot[LINES] = self.lines.apply_exact(plan, link.exact_id, crm_id, line_result, report)
            except ConflictError:
                crm_record = None  # Customcrm changed under us: read it again and merge again
                continue
            self.store.update_snapshot(flow_id, crm_id, snapshot)
            return
        report.note(crm_id, "failed", "Customcrm kept changing while it was being updated; retried next pass")
        self.store.add_pending(flow_id, crm_id)

    def is_echo(self, plan: FlowPlan, link: Link, crm_record: dict[str, Any] | None,
                exact_record: dict[str, Any] | None) -> bool:
        """What the feeds brought equals the last sync on every side they mentioned: the engine's own write
        coming back (or a change to unmapped fields), so nothing is written and the side not mentioned is
        not even read."""
        if crm_record is None and exact_record is None:
            return False
        header = [m for m in plan.header if not m.read_only]
        if any(m.id not in link.snapshot for m in header):
            return False
        synced = {m.id: link.snapshot[m.id] for m in header}
        if crm_record is not None:
            if plan.lines and self.lines.crm_lines(plan, crm_record) != link.snapshot.get(LINES):
                return False
            if self.crm_values(plan, crm_record) != synced:
                return False
        if exact_record is not None:
            if plan.lines and not self.lines.as_synced(plan, link):
                return False
            if self.exact_values(plan, exact_record) != synced:
                return False
        return True

    def _write(self, plan: FlowPlan, crm_id: str, exact_key: str, crm_record: dict[str, Any],
               to_crm: dict[str, Any], to_exact_: dict[str, Any], report: FlowReport,
               crm_lines: list[dict[str, Any]] | None = None) -> None:
        by_id = {m.id: m for m in plan.header}
        crm_body: dict[str, Any] = {}
        for k, v in to_crm.items():
            try:
                crm_body[by_id[k].crm_field] = self.to_crm_value(by_id[k], v)
            except Waiting as exc:
                report.note(crm_id, "waiting", str(exc))
        if crm_lines is not None:
            crm_body["Lines"] = crm_lines
        if crm_body:
            version = crm_record.get("Version")
            self.crm.update(plan.resource, crm_id, crm_body, int(version) if version is not None else None)
            report.updated_customcrm += 1
        if to_exact_:
            values = {by_id[k].exact_field: self.to_exact_value(by_id[k], v) for k, v in to_exact_.items()}
            self.exact.update(plan.entity, exact_key, values)
            report.updated_exact += 1

    def _retire(self, link: Link, deleted_in: str, report: FlowReport) -> None:
        self.store.retire(link.flow, link.crm_id, link.exact_id, deleted_in)
        report.note(link.crm_id, "retired", f"deleted in {deleted_in}; the other side is left as it is")


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
