"""The reference sync engine: Sesam Talk's rules applied to the flows of a dataflow document.

One pass, per flow in dependency order:

1. read what changed on each side since the stored cursors (Customcrm's change feed, Exact's sync API
   and its deletion log);
2. for each new Customcrm record, link it to an existing Exact record with the same merge key, or
   create one (an intent is recorded first, so a crash between the create and the link is recovered by
   adopting the record on restart instead of creating it twice);
3. for each linked pair that changed, merge three ways against the snapshot of the last sync, property
   by property: the side that changed wins, and when both changed the later edit wins (equal times go
   to the priority system);
4. a deleted record retires its link; nothing is deleted on the other side and nothing is re-created.

A write made by the engine comes back through the change feeds, but its values equal the new snapshot,
so it causes no write back: a second pass with no edits writes nothing.

Example::

    engine = Engine(load_dataflow(), crm_connector, exact_connector, LinkStore("links.sqlite3"))
    report = engine.run_pass()
    print(report.summary())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector
from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.errors import AuthError, ConflictError, ConnectorError, LinkConflict
from sync.store import Link, LinkStore
from sync.systems.customcrm import CustomcrmResource, resource_for
from sync.systems.exact import ExactEntity, entity_for
from sync.values import canonical, exact_datetime, kind_for, parse_crm_datetime, to_customcrm, to_exact

__all__ = ["Engine", "FlowPlan", "FlowReport", "Issue", "Mapping", "SyncReport", "plan_flow"]

_MISSING = object()


@dataclass(frozen=True)
class Mapping:
    """A table row resolved against both systems: which fields, compared as which kind."""

    row: PropertyRow
    kind: str

    @property
    def id(self) -> str:
        return self.row.source

    @property
    def crm_field(self) -> str:
        return self.row.source

    @property
    def exact_field(self) -> str:
        return self.row.target


@dataclass(frozen=True)
class FlowPlan:
    flow: Flow
    resource: CustomcrmResource
    entity: ExactEntity
    mappings: tuple[Mapping, ...]

    @property
    def exact_fields(self) -> list[str]:
        return [m.exact_field for m in self.mappings]


@dataclass(frozen=True)
class Issue:
    record: str
    kind: str  # "failed", "skipped", "ambiguous", "retired"
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
        if kind == "failed":
            self.failed += 1
        elif kind in ("skipped", "ambiguous"):
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


def _empty(value: Any) -> bool:
    return value is None


def _order(flows: tuple[Flow, ...]) -> list[Flow]:
    """Flows in dependency order (a flow after the flows its document section requires)."""
    by_id = {f.id: f for f in flows}
    done: list[Flow] = []
    seen: set[str] = set()

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


def plan_flow(flow: Flow) -> FlowPlan | str:
    """Resolve a flow against what the engine knows; a string says why it cannot be synchronized."""
    if any("." in row.source or "." in row.target for row in flow.properties):
        return "line collections are not synchronized by this engine yet"
    resource = resource_for(flow.source_type)
    if resource is None:
        return f"the engine has no declaration for Customcrm {flow.source_type} yet"
    entity = entity_for(flow.target_type)
    if entity is None:
        return f"the engine has no declaration for Exact {flow.target_type} yet"
    mappings = []
    for row in flow.properties:
        crm_kind = resource.fields.get(row.source)
        if crm_kind is None:
            return f"Customcrm {flow.source_type} has no property {row.source!r} (table line {row.line})"
        mappings.append(Mapping(row, kind_for(row.data_type, crm_kind)))
    mapped = {m.exact_field for m in mappings}
    missing = [name for name in entity.mandatory if name not in mapped]
    if missing:
        return (f"not satisfiable: Exact {flow.target_type} cannot be created without "
                f"{', '.join(missing)}, which the document's table does not map")
    return FlowPlan(flow, resource, entity, tuple(mappings))


class Engine:
    """Synchronizes the flows of a document between one Customcrm tenant and one Exact division."""

    def __init__(self, doc: Dataflow, crm: CustomcrmConnector, exact: ExactConnector, store: LinkStore,
                 *, priority: str = "customcrm", flows: list[str] | None = None) -> None:
        if priority not in ("customcrm", "exact"):
            raise ValueError("priority is 'customcrm' or 'exact'")
        self.doc = doc
        self.crm = crm
        self.exact = exact
        self.store = store
        self.priority = priority
        self.selected = flows

    # ------------------------------------------------------------------ planning

    def plan(self, flow: Flow) -> FlowPlan | str:
        return plan_flow(flow)

    # ------------------------------------------------------------------ a pass

    def run_pass(self) -> SyncReport:
        report = SyncReport()
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
            self._sync_flow(plan, flow_report)
        report.calls = {
            "customcrm": _delta(before[0], self.crm.counter.calls),
            "exact": _delta(before[1], self.exact.counter.calls),
        }
        return report

    def _sync_flow(self, plan: FlowPlan, report: FlowReport) -> None:
        flow_id = plan.flow.id
        self._recover_intents(plan, report)

        crm_cursor = f"{flow_id}:customcrm"
        exact_cursor = f"{flow_id}:exact"
        deleted_cursor = f"{flow_id}:exact-deleted"
        events, next_crm = self.crm.changes(plan.resource, self.store.cursor(crm_cursor))
        exact_rows, next_exact = self.exact.changes(plan.entity, plan.exact_fields,
                                                    int(self.store.cursor(exact_cursor) or 0))
        deleted_keys, next_deleted = self.exact.deleted(plan.entity, int(self.store.cursor(deleted_cursor) or 0))

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
        for crm_id in self.store.pending(flow_id):
            if crm_id in touched or crm_id in to_link:
                continue
            if self.store.link_by_crm(flow_id, crm_id) is not None:
                touched[crm_id] = [None, None]
            else:
                record = self.crm.get(plan.resource, crm_id)
                if record is None:
                    self.store.drop_pending(flow_id, crm_id)
                else:
                    to_link[crm_id] = record

        for crm_id, record in to_link.items():
            self._guarded(plan, report, crm_id, lambda r=record: self._link_or_create(plan, r, report))
        for crm_id, (crm_record, exact_record) in touched.items():
            self._guarded(plan, report, crm_id,
                          lambda c=crm_id, cr=crm_record, er=exact_record: self._reconcile(plan, c, cr, er, report))

        if next_crm is not None:
            self.store.set_cursor(crm_cursor, next_crm)
        self.store.set_cursor(exact_cursor, str(next_exact))
        self.store.set_cursor(deleted_cursor, str(next_deleted))

    def _guarded(self, plan: FlowPlan, report: FlowReport, crm_id: str, action: Any) -> None:
        """One bad record does not stop a flow: it is reported and retried on the next pass."""
        try:
            action()
        except AuthError:
            raise
        except (ConnectorError, LinkConflict, ValueError) as exc:
            report.note(crm_id, "failed", str(exc))
            self.store.add_pending(plan.flow.id, crm_id)
        else:
            self.store.drop_pending(plan.flow.id, crm_id)

    # ------------------------------------------------------------------ values

    def crm_values(self, plan: FlowPlan, record: dict[str, Any]) -> dict[str, Any]:
        return {m.id: canonical(record.get(m.crm_field), m.kind) for m in plan.mappings}

    def exact_values(self, plan: FlowPlan, record: dict[str, Any]) -> dict[str, Any]:
        return {m.id: canonical(record.get(m.exact_field), m.kind) for m in plan.mappings}

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

    def merge_conditions(self, plan: FlowPlan, crm_values: dict[str, Any]) -> dict[str, Any]:
        """The first merge key whose Customcrm values are all filled, as Exact property values."""
        by_exact = {m.exact_field: m for m in plan.mappings}
        for alternative in plan.entity.merge_keys:
            if not all(name in by_exact for name in alternative):
                continue
            values = {name: crm_values[by_exact[name].id] for name in alternative}
            if all(not _empty(v) for v in values.values()):
                return {name: to_exact(v, by_exact[name].kind) for name, v in values.items()}
        return {}

    def find_matches(self, plan: FlowPlan, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        """Exact records with the merge key's values."""
        return self.exact.find(plan.entity, conditions, plan.exact_fields)

    def _recover_intents(self, plan: FlowPlan, report: FlowReport) -> None:
        """After a crash between a create and its link, adopt the created record instead of creating again."""
        for crm_id, conditions in self.store.intents(plan.flow.id).items():
            if conditions:
                candidates = [m for m in self.find_matches(plan, conditions)
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
                self._link_existing(plan, record, match, report)
                return
        self._create(plan, record, crm_values, conditions, report)

    def _create(self, plan: FlowPlan, record: dict[str, Any], crm_values: dict[str, Any],
                conditions: dict[str, Any], report: FlowReport) -> None:
        crm_id = str(record["Id"])
        values = {m.exact_field: to_exact(crm_values[m.id], m.kind)
                  for m in plan.mappings if not _empty(crm_values[m.id])}
        missing = [name for name in plan.entity.mandatory if _empty(values.get(name))]
        if missing:
            report.note(crm_id, "skipped",
                        f"Exact {plan.flow.target_type} needs {', '.join(missing)}, which is empty in Customcrm")
            return
        self.store.add_intent(plan.flow.id, crm_id, conditions)
        created = self.exact.create(plan.entity, values)
        self.store.put_link(plan.flow.id, crm_id, str(created[plan.entity.key]).lower(), crm_values)
        report.created += 1

    def _link_existing(self, plan: FlowPlan, crm_record: dict[str, Any], exact_record: dict[str, Any],
                       report: FlowReport) -> None:
        """Link two existing records; an empty value never overwrites a filled one."""
        crm_values = self.crm_values(plan, crm_record)
        exact_values = self.exact_values(plan, exact_record)
        crm_first = self.crm_wins(crm_record, exact_record)
        to_crm: dict[str, Any] = {}
        to_exact_: dict[str, Any] = {}
        snapshot: dict[str, Any] = {}
        for m in plan.mappings:
            c, e = crm_values[m.id], exact_values[m.id]
            winner = self.link_value(c, e, crm_first)
            snapshot[m.id] = winner
            if winner != c:
                to_crm[m.id] = winner
            if winner != e:
                to_exact_[m.id] = winner
        exact_key = str(exact_record[plan.entity.key]).lower()
        self._write(plan, str(crm_record["Id"]), exact_key, crm_record, to_crm, to_exact_, report)
        self.store.put_link(plan.flow.id, str(crm_record["Id"]), exact_key, snapshot)
        report.linked += 1

    @staticmethod
    def link_value(crm_value: Any, exact_value: Any, crm_first: bool) -> Any:
        if crm_value == exact_value:
            return crm_value
        if _empty(crm_value):
            return exact_value
        if _empty(exact_value):
            return crm_value
        return crm_value if crm_first else exact_value

    # ------------------------------------------------------------------ keeping in sync

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Three-way merge per property against the last synced snapshot.

        Returns the values to write to Customcrm, to Exact, and the new snapshot. `changed` names the
        sides whose change feed mentioned the record; the merge itself goes by values, which is what
        keeps the engine's own writes from echoing back.
        """
        to_crm: dict[str, Any] = {}
        to_exact_: dict[str, Any] = {}
        new_snapshot: dict[str, Any] = {}
        for m in plan.mappings:
            c, e = crm_values[m.id], exact_values[m.id]
            s = snapshot.get(m.id, _MISSING)
            if c == e:
                value = c
            elif s is _MISSING:
                value = self.link_value(c, e, crm_first)
            elif c == s:
                value = e
            elif e == s:
                value = c
            else:
                value = c if crm_first else e
            new_snapshot[m.id] = value
            if value != c:
                to_crm[m.id] = value
            if value != e:
                to_exact_[m.id] = value
        return to_crm, to_exact_, new_snapshot

    def _reconcile(self, plan: FlowPlan, crm_id: str, crm_record: dict[str, Any] | None,
                   exact_record: dict[str, Any] | None, report: FlowReport) -> None:
        flow_id = plan.flow.id
        link = self.store.link_by_crm(flow_id, crm_id)
        if link is None:
            return
        changed = {side for side, rec in (("customcrm", crm_record), ("exact", exact_record)) if rec is not None}
        if self.is_echo(plan, link, crm_record, exact_record):
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
            if not to_crm and not to_exact_:
                if snapshot != link.snapshot:
                    self.store.update_snapshot(flow_id, crm_id, snapshot)
                report.unchanged += 1
                return
            try:
                self._write(plan, crm_id, link.exact_id, crm_record, to_crm, to_exact_, report)
            except ConflictError:
                crm_record = None  # Customcrm changed under us: read it again and merge again
                continue
            self.store.update_snapshot(flow_id, crm_id, snapshot)
            return
        report.note(crm_id, "failed", "Customcrm kept changing while it was being updated; retried next pass")
        self.store.add_pending(flow_id, crm_id)

    def is_echo(self, plan: FlowPlan, link: Link, crm_record: dict[str, Any] | None,
                exact_record: dict[str, Any] | None) -> bool:
        """Only one side's feed mentioned the record and its values equal the last sync: that is the
        engine's own write coming back (or a change to unmapped fields), so the other side is not even read."""
        if (crm_record is None) == (exact_record is None):
            return False
        if any(m.id not in link.snapshot for m in plan.mappings):
            return False
        values = (self.crm_values(plan, crm_record) if crm_record is not None
                  else self.exact_values(plan, exact_record or {}))
        return values == {m.id: link.snapshot[m.id] for m in plan.mappings}

    def _write(self, plan: FlowPlan, crm_id: str, exact_key: str, crm_record: dict[str, Any],
               to_crm: dict[str, Any], to_exact_: dict[str, Any], report: FlowReport) -> None:
        by_id = {m.id: m for m in plan.mappings}
        if to_crm:
            values = {by_id[k].crm_field: to_customcrm(v, by_id[k].kind) for k, v in to_crm.items()}
            version = crm_record.get("Version")
            self.crm.update(plan.resource, crm_id, values, int(version) if version is not None else None)
            report.updated_customcrm += 1
        if to_exact_:
            values = {by_id[k].exact_field: to_exact(v, by_id[k].kind) for k, v in to_exact_.items()}
            self.exact.update(plan.entity, exact_key, values)
            report.updated_exact += 1

    def _retire(self, link: Link, deleted_in: str, report: FlowReport) -> None:
        self.store.retire(link.flow, link.crm_id, link.exact_id, deleted_in)
        report.note(link.crm_id, "retired", f"deleted in {deleted_in}; the other side is left as it is")


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
