"""Linking and creating: how a Customcrm record finds its Exact counterpart, or gets one.

A new Customcrm record is linked to the Exact record with the same merge key (found in the index the
sync feed keeps, so no call is made per record), or one is created. Before a create an intent is
recorded, so a pass that crashes between the create and the link adopts the created record on restart
instead of creating it twice. Two existing records are linked by a merge in which an empty value never
overwrites a filled one. A state that knows nothing while both systems hold records is refused: creating
would duplicate what the lost state had linked.

An engine takes its `Linking` from its class (`Engine.linking_class`), the seam a variant of the engine
uses to link differently (a planted bug that never looks for a match, say) without touching the pass.
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

from sync.errors import StateError
from sync.lines import LINES, UNLINKED, UNPAIRED
from sync.merge import empty, merge_values
from sync.planning import FlowPlan
from sync.reports import FlowReport, guarded

if TYPE_CHECKING:
    from sync.engine import Engine

__all__ = ["Linking", "merge_key"]


def merge_key(values: dict[str, Any]) -> str:
    """A merge key's values as one comparable text (case-insensitive, as Exact compares them)."""
    return json.dumps(sorted((k, str(v).lower()) for k, v in values.items()))


class Linking:
    """Links and creates records for one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def refuse_if_both_hold_records(self, plan: FlowPlan, events: list[dict[str, Any]],
                                     exact_rows: list[dict[str, Any]]) -> None:
        """A state that knows nothing while both systems hold records of this flow: the state file may have
        been lost, and creating what has no merge key would duplicate it. A person decides."""
        live = {str(e["id"]) for e in events if e["op"] != "deleted"}
        linked = self.engine.store.linked_exact_ids()  # records another flow made or linked (Contacts serve two flows)
        unlinked = [r for r in exact_rows if str(r[plan.entity.key]).lower() not in linked]
        if live and unlinked:
            raise StateError(
                f"the state file {self.engine.store.path} holds no links, but both systems already hold "
                f"{plan.flow.id} records ({len(live)} in Customcrm, {len(unlinked)} in Exact). If the state "
                "file was lost or emptied, run `talkcheck sync --relink` once: it links records by their merge "
                "keys and creates none. If this is the first sync of two systems that both hold data, run "
                "`talkcheck sync --first-sync` once.")

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
                return {name: self.engine.values.to_exact_value(by_exact[name], v) for name, v in values.items()}
        return {}

    def merge_keys_of(self, plan: FlowPlan, row: dict[str, Any]) -> list[str]:
        """The merge keys an Exact record can be found by (every alternative whose values are filled)."""
        keys = []
        for alternative in plan.entity.merge_keys:
            names = (*alternative, *plan.entity.merge_scope)
            values = {name: row.get(name) for name in names}
            if all(v not in (None, "") for v in values.values()):
                keys.append(merge_key(values))
        return keys

    def find_matches(self, plan: FlowPlan, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        """Exact records with the merge key's values, from the index the sync feed keeps (no API call);
        a record seen in an earlier pass is read back by its key."""
        found = []
        for exact_id in self.engine.store.lookup_exact(plan.flow.id, merge_key(conditions)):
            row = self.engine.batch.get(exact_id) or self.engine.exact.get(plan.entity, exact_id, plan.exact_fields)
            if row is None:
                self.engine.store.unindex_exact(plan.flow.id, exact_id)
            else:
                found.append(row)
        return found

    def recover_intents(self, plan: FlowPlan, report: FlowReport) -> None:
        """After a crash between a create and its link, adopt the created record instead of creating again.

        The record is found by its merge key or, without one, among the records Exact changed since the
        flow's cursor (which a crashed pass never advanced) as the unlinked one with exactly the intended values.
        """
        for crm_id, intent in self.engine.store.intents(plan.flow.id).items():
            conditions = intent.get("conditions") or {}
            intended = intent.get("values") or {}
            if conditions:
                found = self.find_matches(plan, conditions)
            else:
                after = int(self.engine.store.cursor(f"{plan.flow.id}:exact") or 0)
                rows, _ = self.engine.exact.changes(plan.entity, plan.exact_fields, after)
                values = self.engine.values
                found = [r for r in rows if intended and
                         {k: v for k, v in values.exact_values(plan, r).items() if k in intended} == intended]
            candidates = [m for m in found
                          if self.engine.store.link_by_exact(plan.flow.id, str(m[plan.entity.key]).lower()) is None]
            record = self.engine.crm.get(plan.resource, crm_id)
            if len(candidates) == 1 and record is not None:
                guarded(self.engine.store, plan.flow.id, report, crm_id,
                        partial(self.link_existing, plan, record, candidates[0], report))
                continue
            self.engine.store.drop_intent(plan.flow.id, crm_id)
            self.engine.store.add_pending(plan.flow.id, crm_id)

    def link_or_create(self, plan: FlowPlan, record: dict[str, Any], report: FlowReport) -> None:
        flow_id = plan.flow.id
        crm_id = str(record[plan.resource.key])
        deleted_in = self.engine.store.retired(flow_id, crm_id)
        if deleted_in is not None:
            report.note(crm_id, "skipped", f"its link was retired after a delete in {deleted_in}; not re-created")
            return
        if not self.has_counterpart(plan, record):
            return
        crm_values = self.engine.values.crm_values(plan, record)
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
                owner = self.engine.store.link_by_exact(flow_id, str(match[plan.entity.key]).lower())
                if owner is not None:
                    report.note(crm_id, "ambiguous",
                                f"the Exact record matching {conditions} is linked to Customcrm {owner.crm_id} "
                                "already; nothing created")
                    return
                self.engine.store.unhold(flow_id, crm_id)
                self.link_existing(plan, record, match, report)
                return
        if self.engine.first_sync == "relink" or self.engine.store.is_held(flow_id, crm_id):
            self.engine.store.hold(flow_id, crm_id)
            report.note(crm_id, "held", "no Exact record matches its merge keys since the state was relinked; it "
                                        "is not created (`talkcheck sync --release-held` lets it be)")
            return
        self.create(plan, record, crm_values, conditions, report)

    def create(self, plan: FlowPlan, record: dict[str, Any], crm_values: dict[str, Any],
                conditions: dict[str, Any], report: FlowReport) -> None:
        crm_id = str(record[plan.resource.key])
        by_id = {m.id: m for m in plan.header}
        values = {by_id[k].exact_field: self.engine.values.to_exact_value(by_id[k], v)
                  for k, v in crm_values.items() if not empty(v)}
        missing = [" or ".join(group) for group in plan.entity.mandatory
                   if all(empty(values.get(name)) for name in group)]
        if missing:
            report.note(crm_id, "skipped",
                        f"Exact {plan.flow.target_type} needs {', '.join(missing)}, which is empty in Customcrm")
            return
        crm_lines = self.engine.lines.crm_lines(plan, record)
        if plan.entity.lines is not None and plan.lines:
            if not crm_lines:
                report.note(crm_id, "skipped", f"Exact {plan.flow.target_type} needs at least one line")
                return
            values[plan.entity.lines.nav] = [self.engine.lines.exact_body(plan, line) for line in crm_lines.values()]
        self.engine.store.add_intent(plan.flow.id, crm_id, {"conditions": conditions, "values": {
            k: v for k, v in crm_values.items() if not empty(v)}})
        created = self.engine.exact.create(plan.entity, values)
        exact_key = str(created[plan.entity.key]).lower()
        self.engine.store.index_exact(plan.flow.id, [(exact_key, [merge_key(conditions)] if conditions else [])])
        snapshot = dict(crm_values)
        # Exact fills defaults (an order date, a quotation date): they go back to Customcrm in this pass,
        # so the next pass finds both sides equal and writes nothing.
        filled = {k: v for k, v in self.engine.values.exact_values(plan, created).items()
                  if not empty(v) and v != crm_values.get(k) and not str(v).startswith(UNLINKED)}
        if filled:
            snapshot.update(filled)
        if plan.entity.lines is not None and plan.lines:
            # Exact numbers the lines in the order they were posted, and its line feed brings them on the
            # next pass: they are paired then (`Lines.pair_created`), rather than read back one header at
            # a time now.
            snapshot[LINES] = crm_lines
            snapshot[UNPAIRED] = list(crm_lines)
        self.engine.store.put_link(plan.flow.id, crm_id, exact_key, snapshot)
        report.created += 1
        if filled:
            self.engine.write(plan, crm_id, exact_key, record, filled, {}, report)

    def link_existing(self, plan: FlowPlan, crm_record: dict[str, Any], exact_record: dict[str, Any],
                      report: FlowReport) -> None:
        """Link two existing records; an empty value never overwrites a filled one."""
        values = self.engine.values
        merged = merge_values(plan.merged_ids, values.crm_values(plan, crm_record),
                              values.exact_values(plan, exact_record), None,
                              values.crm_wins(plan, crm_record, exact_record), plan.exact_keeps)
        to_crm, to_exact_, snapshot = merged.to_crm, merged.to_exact, merged.snapshot
        exact_key = str(exact_record[plan.entity.key]).lower()
        self.engine.write(plan, str(crm_record[plan.resource.key]), exact_key, crm_record, to_crm, to_exact_, report)
        if plan.entity.lines is not None and plan.lines:
            crm_record = self.engine.crm.get(plan.resource, str(crm_record[plan.resource.key])) or crm_record
            snapshot[LINES] = self.engine.lines.link(plan, crm_record, exact_key, report)
        self.engine.store.put_link(plan.flow.id, str(crm_record[plan.resource.key]), exact_key, snapshot)
        report.linked += 1
