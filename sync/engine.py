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

from dataclasses import dataclass
from functools import partial
from typing import Any

from sync.conversion import Conversion
from sync.dataflow import Dataflow, Flow
from sync.errors import ConflictError
from sync.lines import LINES, UNPAIRED, Lines
from sync.linking import Linking
from sync.merge import merge_values
from sync.planning import FlowPlan, Mapping, order_flows, plan_flow
from sync.reports import FlowReport, Issue, SyncReport, Waiting, call_delta, guarded
from sync.sides import CrmConnector, ErpConnector, Side
from sync.store import Link, LinkStore
from sync.users import UserLinks

__all__ = ["FIRST_SYNC", "Engine", "FlowPlan", "FlowReport", "Issue", "Mapping", "SyncReport", "Waiting",
           "plan_flow"]

FIRST_SYNC = ("create", "refuse", "relink")


class Engine:
    """Synchronizes the flows of a document between one Customcrm tenant and one Exact division."""

    conversion_class: type[Conversion] = Conversion  # how values are compared and written (a variant's seam)
    linking_class: type[Linking] = Linking  # how records are linked and created (a variant's seam)

    def __init__(self, doc: Dataflow, crm: CrmConnector, exact: ErpConnector, store: LinkStore,
                 *, priority: str = Side.CRM, flows: list[str] | None = None, first_sync: str = "create") -> None:
        if priority not in tuple(Side):
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
        self.priority = Side(priority)
        self.selected = flows
        self._plans: dict[str, FlowPlan | str] = {}  # by flow id (`plan`)
        self.batch: dict[str, dict[str, Any]] = {}  # the Exact records this flow's feed brought in this pass
        self.values = self.conversion_class(store, priority)
        self.linking = self.linking_class(self)
        self.lines = Lines(self)  # the line collections of orders and quotes
        self.users = UserLinks(self)  # the users flow: owners matched to Exact users by e-mail

    def plan(self, flow: Flow) -> FlowPlan | str:
        """The flow's plan, worked out once per engine: the document does not change while it runs, and a
        pass asks for every flow's plan again."""
        plan = self._plans.get(flow.id)
        if plan is None:
            plan = self._plans[flow.id] = plan_flow(flow, self.doc)
        return plan

    # ------------------------------------------------------------------ a pass

    def run_pass(self, *, full: bool = False) -> SyncReport:
        """One pass over the selected flows. `full` re-reads both systems from the start instead of from the
        cursors: the recovery for lost or expired cursors (Exact keeps deletions for two months); links whose
        records are gone from a full read are retired."""
        report = SyncReport()
        relink = self.first_sync == "relink"
        full = full or relink  # a relink reads everything both systems hold
        before = (dict(self.crm.counter.calls), dict(self.exact.counter.calls))
        self.store.count_pass()
        self.exact.begin_pass()
        try:
            for flow in order_flows(self.doc.flows):
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
                    self.sync_flow(plan, flow_report, full=full)
        finally:
            self.exact.end_pass()
        report.calls = {
            Side.CRM: call_delta(before[0], self.crm.counter.calls),
            Side.ERP: call_delta(before[1], self.exact.counter.calls),
        }
        if relink:  # one pass relinks; later ones create as usual, and what it held stays held
            self.first_sync = "create"
        return report

    def sync_flow(self, plan: FlowPlan, report: FlowReport, *, full: bool = False) -> None:
        """One flow: read both feeds, link or create what is new, merge what changed, then (only then) move
        the cursors on, so a pass killed half-way reads the same changes again."""
        fresh = self.first_sync == "refuse" and self.store.knows_nothing_of(plan.flow.id)
        self.linking.recover_intents(plan, report)
        feeds = self._read(plan, full)
        if fresh:
            self.linking.refuse_if_both_hold_records(plan, feeds.events, feeds.exact_rows)
        if full:
            self._notice_what_is_gone(plan, feeds)
        self.batch = {str(r[plan.entity.key]).lower(): r for r in feeds.exact_rows}
        self.store.index_exact(plan.flow.id, [(key, self.linking.merge_keys_of(plan, row))
                                              for key, row in self.batch.items()])
        for key in feeds.deleted_keys:
            self.store.unindex_exact(plan.flow.id, key)
        self.lines.begin_pass(feeds.line_rows, feeds.deleted_lines)
        to_link, touched = self._sort(plan, feeds, report)
        for crm_id, record in to_link.items():
            guarded(self.store, plan.flow.id, report, crm_id,
                    partial(self.linking.link_or_create, plan, record, report))
        for crm_id, entry in touched.items():
            guarded(self.store, plan.flow.id, report, crm_id,
                    partial(self._reconcile, plan, crm_id, entry.crm, entry.exact, report, forced=entry.forced))
        for name, cursor in feeds.cursors.items():
            self.store.set_cursor(name, cursor)

    def _read(self, plan: FlowPlan, full: bool) -> _Feeds:
        """What changed on each side since the flow's cursors (everything, when `full`)."""
        flow_id = plan.flow.id
        events, next_crm = self.crm.changes(plan.resource, None if full else self.store.cursor(f"{flow_id}:customcrm"))
        exact_rows, next_exact = self.exact.changes(plan.entity, plan.exact_fields,
                                                    0 if full else int(self.store.cursor(f"{flow_id}:exact") or 0))
        deleted_keys, deleted_lines, next_deleted = self.exact.deleted(
            plan.entity, int(self.store.cursor(f"{flow_id}:exact-deleted") or 0))
        cursors = {f"{flow_id}:exact": str(next_exact), f"{flow_id}:exact-deleted": str(next_deleted)}
        if next_crm is not None:
            cursors[f"{flow_id}:customcrm"] = next_crm
        line_rows: dict[str, list[dict[str, Any]]] = {}
        if plan.entity.lines is not None and plan.lines:
            line_rows, next_lines = self.exact.changed_lines(
                plan.entity, [m.exact_field for m in plan.lines], int(self.store.cursor(f"{flow_id}:exact-lines") or 0))
            cursors[f"{flow_id}:exact-lines"] = str(next_lines)
        return _Feeds(events, exact_rows, list(deleted_keys), bool(deleted_lines), line_rows, cursors)

    def _notice_what_is_gone(self, plan: FlowPlan, feeds: _Feeds) -> None:
        """On a full read, linked records missing from it count as deleted (their log entries may be gone)."""
        present = {str(r[plan.entity.key]).lower() for r in feeds.exact_rows}
        mentioned = {str(e["id"]) for e in feeds.events}
        for known in self.store.links(plan.flow.id):
            if known.exact_id not in present and known.exact_id not in feeds.deleted_keys:
                feeds.deleted_keys.append(known.exact_id)  # gone from Exact: its deletion log entry has expired
            if known.crm_id not in mentioned and self.crm.get(plan.resource, known.crm_id) is None:
                feeds.events.append({"id": known.crm_id, "op": "deleted", "record": None})

    def _sort(self, plan: FlowPlan, feeds: _Feeds, report: FlowReport
              ) -> tuple[dict[str, dict[str, Any]], dict[str, _Touched]]:
        """Retire the links of deleted records; return the new Customcrm records to link (by id) and the
        linked pairs to reconcile (by Customcrm id, with what each feed brought of them)."""
        flow_id = plan.flow.id
        latest = {str(event["id"]): event for event in feeds.events}
        touched: dict[str, _Touched] = {}
        to_link: dict[str, dict[str, Any]] = {}
        for crm_id, event in latest.items():
            link = self.store.link_by_crm(flow_id, crm_id)
            if event["op"] == "deleted":
                if link is not None:
                    self.store.retire(flow_id, crm_id, link.exact_id, Side.CRM)
                    report.note(crm_id, "retired", f"deleted in Customcrm; Exact {link.exact_id} is left as it is")
                continue
            if link is not None:
                touched[crm_id] = _Touched(crm=event["record"])
            else:
                to_link[crm_id] = event["record"]
        gone = set(feeds.deleted_keys)
        for key in feeds.deleted_keys:
            link = self.store.link_by_exact(flow_id, key)
            if link is not None:
                self.store.retire(flow_id, link.crm_id, key, Side.ERP)
                touched.pop(link.crm_id, None)
                report.note(link.crm_id, "retired", f"Exact {key} was deleted; the Customcrm record is left as it is")
        for row in feeds.exact_rows:
            key = str(row[plan.entity.key]).lower()
            link = None if key in gone else self.store.link_by_exact(flow_id, key)
            if link is not None:
                touched.setdefault(link.crm_id, _Touched()).exact = row
        for key in set(feeds.line_rows) - gone:
            link = self.store.link_by_exact(flow_id, key)
            if link is not None:
                touched.setdefault(link.crm_id, _Touched())
        this_pass = self.store.passes()
        for crm_id in self.store.pending(flow_id):
            if crm_id in touched or crm_id in to_link:
                continue
            due = self.store.retry_due(flow_id, crm_id)
            if due is not None and due > this_pass:  # refused, unchanged since: not yet
                report.note(crm_id, "skipped", f"still refused, as reported before (tried again in "
                                               f"{due - this_pass} passes, or as soon as it is edited)")
                continue
            if self.store.link_by_crm(flow_id, crm_id) is not None:
                touched[crm_id] = _Touched(forced=True)
            else:
                record = self.crm.get(plan.resource, crm_id)
                if record is None:
                    self.store.drop_pending(flow_id, crm_id)
                else:
                    to_link[crm_id] = record
        return to_link, touched

    # ------------------------------------------------------------------ keeping in sync

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Three-way merge per property against the last synced snapshot (`sync.merge`).

        Returns the values to write to Customcrm, to Exact, and the new snapshot. `changed` names the
        sides whose change feed mentioned the record; the merge itself goes by values, which is what
        keeps the engine's own writes from echoing back.
        """
        merged = merge_values(plan.merged_ids, crm_values, exact_values, snapshot, crm_first,
                              plan.exact_keeps)
        return merged.to_crm, merged.to_exact, merged.snapshot

    def _reconcile(self, plan: FlowPlan, crm_id: str, crm_record: dict[str, Any] | None,
                   exact_record: dict[str, Any] | None, report: FlowReport, *, forced: bool = False) -> None:
        flow_id = plan.flow.id
        link = self.store.link_by_crm(flow_id, crm_id)
        if link is None:
            return
        mentioned = ((Side.CRM, crm_record), (Side.ERP, exact_record))
        changed: set[str] = {side for side, rec in mentioned if rec is not None}
        if UNPAIRED in link.snapshot:
            link = self.lines.pair_created(plan, link)
        if not forced and self.is_echo(plan, link, crm_record, exact_record):
            report.unchanged += 1
            return
        for _attempt in range(3):
            if crm_record is None:
                crm_record = self.crm.get(plan.resource, crm_id)
                if crm_record is None:
                    self._retire(link, Side.CRM, report)
                    return
            if exact_record is None:
                exact_record = self.exact.get(plan.entity, link.exact_id, plan.exact_fields)
                if exact_record is None:
                    self._retire(link, Side.ERP, report)
                    return
            values = self.values
            to_crm, to_exact_, snapshot = self.merge(
                plan, link.snapshot, values.crm_values(plan, crm_record), values.exact_values(plan, exact_record),
                values.crm_wins(plan, crm_record, exact_record), changed)
            line_result = None
            if plan.entity.lines is not None and plan.lines:
                line_result = self.lines.merge(plan, link, crm_record, values.crm_wins(plan, crm_record, exact_record))
                snapshot[LINES] = line_result.snapshot
            lines_change = line_result is not None and line_result.has_writes
            if not to_crm and not to_exact_ and not lines_change:
                if snapshot != link.snapshot:
                    self.store.update_snapshot(flow_id, crm_id, snapshot)
                report.unchanged += 1
                return
            try:
                crm_lines_body = line_result.crm_body if line_result is not None and line_result.crm_changed else None
                self.write(plan, crm_id, link.exact_id, crm_record, to_crm, to_exact_, report, crm_lines_body)
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
            if self.values.crm_values(plan, crm_record) != synced:
                return False
        if exact_record is not None:
            if plan.lines and not self.lines.as_synced(plan, link):
                return False
            if self.values.exact_values(plan, exact_record) != synced:
                return False
        return True

    def write(self, plan: FlowPlan, crm_id: str, exact_key: str, crm_record: dict[str, Any],
               to_crm: dict[str, Any], to_exact_: dict[str, Any], report: FlowReport,
               crm_lines: list[dict[str, Any]] | None = None) -> None:
        """Write the merge's outcome: one update to each side that needs one (lines included)."""
        by_id = {m.id: m for m in plan.header}
        crm_body: dict[str, Any] = {}
        for k, v in to_crm.items():
            try:
                crm_body[by_id[k].crm_field] = self.values.to_crm_value(by_id[k], v)
            except Waiting as exc:
                report.note(crm_id, "waiting", str(exc))
        if crm_lines is not None:
            crm_body[plan.resource.lines] = crm_lines
        if crm_body:
            version = crm_record.get(plan.resource.version)
            self.crm.update(plan.resource, crm_id, crm_body, int(version) if version is not None else None)
            report.updated_customcrm += 1
        if to_exact_:
            values = {by_id[k].exact_field: self.values.to_exact_value(by_id[k], v) for k, v in to_exact_.items()}
            self.exact.update(plan.entity, exact_key, values)
            report.updated_exact += 1

    def _retire(self, link: Link, deleted_in: str, report: FlowReport) -> None:
        self.store.retire(link.flow, link.crm_id, link.exact_id, deleted_in)
        report.note(link.crm_id, "retired", f"deleted in {deleted_in}; the other side is left as it is")


@dataclass
class _Feeds:
    """What one flow's feeds brought in a pass, and the cursors to move to once it is applied."""

    events: list[dict[str, Any]]
    exact_rows: list[dict[str, Any]]
    deleted_keys: list[str]
    deleted_lines: bool
    line_rows: dict[str, list[dict[str, Any]]]
    cursors: dict[str, str]


@dataclass
class _Touched:
    """A linked pair to reconcile: what each feed brought of it (None: not mentioned), or `forced` (a pair
    a failed write left pending, reconciled though neither feed mentions it)."""

    crm: dict[str, Any] | None = None
    exact: dict[str, Any] | None = None
    forced: bool = False
