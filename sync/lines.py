"""The line collections of orders and quotes: how the engine keeps a header's lines in sync.

Lines are matched by the links the engine keeps (a Customcrm line to an Exact line); a header's lines merge
three ways against the last synced snapshot like its properties (`merge`), then the writes go to Exact one
line at a time and to Customcrm as one update of the whole collection (`apply_exact`). At link time lines
are paired by product (`link`); after the engine creates a header, its lines are paired on the next pass
from Exact's line feed (`pair_created`), and a header whose lines the feed shows as synced is not read
(`as_synced`). Part of the engine (it uses the engine's store, connectors and value conversions); apart so
that the pass reads as a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync.merge import empty, link_value, merged_value
from sync.store import Link

if TYPE_CHECKING:
    from sync.engine import Engine, FlowPlan, FlowReport

__all__ = ["LINES", "UNLINKED", "UNPAIRED", "LineMerge", "Lines"]

LINES = "__lines__"
UNPAIRED = "__lines_unpaired__"  # Customcrm line ids of a header just created, in the order they were posted
UNLINKED = "exact:"  # prefix of a canonical reference to an Exact record no Customcrm record is linked to


class Lines:
    """The line collections of one engine's flows, and what this pass's line feed brought."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: dict[str, list[dict[str, Any]]] = {}  # the lines the flow's line feed brought, by header
        self.deleted = False  # a line of the flow's entity was deleted since the last pass

    def begin_pass(self, rows: dict[str, list[dict[str, Any]]], deleted: bool) -> None:
        """A flow's pass starts: the lines its feed brought (by header) and whether any line was deleted."""
        self.rows, self.deleted = rows, deleted

    def as_synced(self, plan: FlowPlan, link: Link) -> bool:
        """Every line of the header that Exact's line feed brought this pass is linked and holds the values
        of the last sync, and no line was deleted: the header's lines are as synced, unread. Any doubt (a
        line deleted anywhere, a line not linked) sends the header down the path that reads its lines."""
        if self.deleted or UNPAIRED in link.snapshot:
            return False
        synced: dict[str, dict[str, Any]] = link.snapshot.get(LINES) or {}
        for row in self.rows.get(link.exact_id, []):
            line_link = self.engine.store.link_by_exact(plan.line_flow, str(row[_exact_line_key(plan)]).lower())
            if line_link is None or line_link.crm_id not in synced:
                return False
            values = {m.id: self.engine.values.exact_value(m, row.get(m.exact_field)) for m in plan.lines}
            if values != synced[line_link.crm_id]:
                return False
        return True

    def pair_created(self, plan: FlowPlan, link: Link) -> Link:
        """Link the lines of a header this engine created to the Customcrm lines they were made from: Exact
        numbered them 1, 2, ... in the order they were posted. They come from this pass's line feed when all
        of them are there, else from one read of the header's lines."""
        assert plan.entity.lines is not None
        order_by = plan.entity.lines.order_by
        crm_line_ids = [str(lid) for lid in link.snapshot[UNPAIRED]]
        numbered = {int(r.get(order_by) or 0): r for r in self.rows.get(link.exact_id, [])}
        if not all(n in numbered for n in range(1, len(crm_line_ids) + 1)):
            numbered = {int(r.get(order_by) or 0): r for r in self.engine.exact.lines(plan.entity, link.exact_id)}
        for number, crm_line_id in enumerate(crm_line_ids, start=1):
            exact_line = numbered.get(number)
            self.engine.store.drop_link(plan.line_flow, crm_line_id)
            if exact_line is not None:
                exact_line_id = str(exact_line[_exact_line_key(plan)]).lower()
                self.engine.store.put_link(plan.line_flow, crm_line_id, exact_line_id, {})
        snapshot = {k: v for k, v in link.snapshot.items() if k != UNPAIRED}
        self.engine.store.update_snapshot(plan.flow.id, link.crm_id, snapshot)
        return Link(link.flow, link.crm_id, link.exact_id, snapshot)

    def crm_lines(self, plan: FlowPlan, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Customcrm's lines of a record, canonical, by line Id."""
        key = plan.resource.line_key
        return {str(line[key]): {m.id: self.engine.values.crm_value(m, line.get(m.crm_field)) for m in plan.lines}
                for line in record.get(plan.resource.lines) or [] if line.get(key)}

    def exact_body(self, plan: FlowPlan, values: dict[str, Any], *, clears: bool = False) -> dict[str, Any]:
        """A line as Exact takes it; a create leaves empty values out, an update sends them as clears."""
        by_id = {m.id: m for m in plan.lines}
        return {by_id[k].exact_field: self.engine.values.to_exact_value(by_id[k], v) for k, v in values.items()
                if clears or not empty(v)}

    def _exact_by_crm_id(self, plan: FlowPlan, exact_key: str) -> tuple[dict[str, dict[str, Any]],
                                                                                  dict[str, dict[str, Any]]]:
        """Exact's lines of a header, canonical, by the Customcrm line they are linked to (or 'exact:<ID>')."""
        out: dict[str, dict[str, Any]] = {}
        raw: dict[str, dict[str, Any]] = {}
        for line in self.engine.exact.lines(plan.entity, exact_key):
            exact_line_id = str(line[_exact_line_key(plan)]).lower()
            link = self.engine.store.link_by_exact(plan.line_flow, exact_line_id)
            lid = link.crm_id if link is not None else UNLINKED + exact_line_id
            out[lid] = {m.id: self.engine.values.exact_value(m, line.get(m.exact_field)) for m in plan.lines}
            raw[lid] = line
        return out, raw

    def link(self, plan: FlowPlan, crm_record: dict[str, Any], exact_key: str,
                    report: FlowReport) -> dict[str, dict[str, Any]]:
        """At link time lines are paired by product; unpaired lines of either side are added to the other."""
        crm_lines = self.crm_lines(plan, crm_record)
        exact_lines, raw = self._exact_by_crm_id(plan, exact_key)
        product = next((m.id for m in plan.lines if m.kind == "ref"), None)
        unpaired_exact = dict(exact_lines)
        snapshot: dict[str, dict[str, Any]] = {}
        for crm_line_id, values in crm_lines.items():
            match = next((lid for lid, ev in unpaired_exact.items()
                          if product is not None and ev.get(product) == values.get(product)), None)
            if match is not None:
                ev = unpaired_exact.pop(match)
                merged = {k: link_value(values[k], ev.get(k), True) for k in values}
                self.engine.store.drop_link(plan.line_flow, match)
                self.engine.store.drop_link(plan.line_flow, crm_line_id)
                self.engine.store.put_link(plan.line_flow, crm_line_id, _line_id(plan, raw, match), {})
                if merged != ev:
                    self.engine.exact.update_line(plan.entity, _line_id(plan, raw, match),
                                           self.exact_body(plan, merged, clears=True))
                snapshot[crm_line_id] = merged
            else:
                body = self.exact_body(plan, values)
                created = self.engine.exact.create_line(plan.entity, exact_key, body)
                self.engine.store.put_link(plan.line_flow, crm_line_id, str(created[_exact_line_key(plan)]).lower(), {})
                snapshot[crm_line_id] = values
        if unpaired_exact or any(snapshot[k] != crm_lines[k] for k in snapshot):
            body_lines = [{plan.resource.line_key: lid, **self.crm_body(plan, v)} for lid, v in snapshot.items()]
            new_exact = list(unpaired_exact.items())
            body_lines += [self.crm_body(plan, ev) for _lid, ev in new_exact]
            updated = self.engine.crm.update(plan.resource, str(crm_record[plan.resource.key]),
                                             {plan.resource.lines: body_lines}, None)
            known = set(snapshot)
            key = plan.resource.line_key
            fresh = [line for line in updated.get(plan.resource.lines, []) if str(line[key]) not in known]
            for (lid, ev), line in zip(new_exact, fresh, strict=False):
                self.engine.store.drop_link(plan.line_flow, lid)
                self.engine.store.put_link(plan.line_flow, str(line[key]), _line_id(plan, raw, lid), {})
                snapshot[str(line[plan.resource.line_key])] = ev
            report.updated_customcrm += 1
        return snapshot

    def crm_body(self, plan: FlowPlan, values: dict[str, Any]) -> dict[str, Any]:
        by_id = {m.id: m for m in plan.lines}
        body = {}
        for k, v in values.items():
            if empty(v) and by_id[k].crm_field in plan.resource.line_defaults:
                continue
            body[by_id[k].crm_field] = self.engine.values.to_crm_value(by_id[k], v)
        return body

    def merge(self, plan: FlowPlan, link: Link, crm_record: dict[str, Any], crm_first: bool) -> LineMerge:
        """Three-way merge of line collections: adds, changes and removals on either side."""
        crm_lines = self.crm_lines(plan, crm_record)
        exact_lines, raw = self._exact_by_crm_id(plan, link.exact_id)
        old: dict[str, dict[str, Any]] = link.snapshot.get(LINES) or {}
        result = LineMerge(exact_ids={lid: _line_id(plan, raw, lid) for lid in raw})
        # Customcrm's order first: the lines keep the order a user gave them (the snapshot is stored sorted)
        for lid in list(dict.fromkeys([*crm_lines, *old, *exact_lines])):
            c, e, s = crm_lines.get(lid), exact_lines.get(lid), old.get(lid)
            if s is None:
                if c is not None and e is None:
                    result.exact_create[lid] = c
                    result.snapshot[lid] = c
                elif e is not None and c is None:
                    result.crm_add.append((lid, e))
                elif c is not None and e is not None:
                    merged = {k: link_value(c[k], e.get(k), crm_first) for k in c}
                    result.snapshot[lid] = merged
                    if merged != e:
                        result.exact_update[lid] = merged
                    if merged != c:
                        result.crm_changed = True
                continue
            if c is None or e is None:
                # Removed on one side: removed on the other too.
                if c is not None:
                    result.crm_changed = True
                if e is not None:
                    result.exact_delete.append(lid)
                continue
            merged = {k: merged_value(c.get(k), e.get(k), s.get(k), crm_first) for k in s}
            result.snapshot[lid] = merged
            if merged != e:
                result.exact_update[lid] = merged
            if merged != c:
                result.crm_changed = True
        if result.crm_add:
            result.crm_changed = True
        if result.crm_changed:
            key = plan.resource.line_key
            result.crm_body = [{key: lid, **self.crm_body(plan, v)} for lid, v in result.snapshot.items()
                               if lid in crm_lines]
            result.crm_body += [self.crm_body(plan, v) for lid, v in result.snapshot.items()
                                if lid not in crm_lines]
            result.crm_body += [self.crm_body(plan, v) for _lid, v in result.crm_add]
        return result

    def apply_exact(self, plan: FlowPlan, exact_key: str, crm_id: str, result: LineMerge,
                           report: FlowReport) -> dict[str, dict[str, Any]]:
        """Write the line changes to Exact and link lines new on either side; returns the new line snapshot."""
        snapshot = dict(result.snapshot)
        wrote = False
        for lid, values in result.exact_create.items():
            created = self.engine.exact.create_line(plan.entity, exact_key, self.exact_body(plan, values))
            self.engine.store.put_link(plan.line_flow, lid, str(created[_exact_line_key(plan)]).lower(), {})
            wrote = True
        for lid, values in result.exact_update.items():
            if lid in result.exact_ids:
                self.engine.exact.update_line(plan.entity, result.exact_ids[lid],
                                       self.exact_body(plan, values, clears=True))
                wrote = True
        for lid in result.exact_delete:
            if lid in result.exact_ids:
                self.engine.exact.delete_line(plan.entity, result.exact_ids[lid])
            self.engine.store.drop_link(plan.line_flow, lid)
            wrote = True
        if result.crm_add:
            record = self.engine.crm.get(plan.resource, crm_id) or {}
            known = set(result.snapshot)
            key = plan.resource.line_key
            fresh = [line for line in record.get(plan.resource.lines) or [] if str(line[key]) not in known]
            for (lid, values), line in zip(result.crm_add, fresh, strict=False):
                self.engine.store.put_link(plan.line_flow, str(line[plan.resource.line_key]), result.exact_ids[lid], {})
                snapshot[str(line[plan.resource.line_key])] = values
        for lid in list(snapshot):
            if lid in result.exact_delete:
                snapshot.pop(lid)
        if wrote and not result.crm_changed:
            report.updated_exact += 1
        return snapshot


@dataclass
class LineMerge:
    """What a three-way merge of two line collections decided: the new snapshot and the writes to make."""

    snapshot: dict[str, dict[str, Any]] = field(default_factory=dict)
    exact_create: dict[str, dict[str, Any]] = field(default_factory=dict)
    exact_update: dict[str, dict[str, Any]] = field(default_factory=dict)
    exact_delete: list[str] = field(default_factory=list)
    crm_add: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    crm_changed: bool = False
    crm_body: list[dict[str, Any]] = field(default_factory=list)
    exact_ids: dict[str, str] = field(default_factory=dict)  # line id as merged -> Exact line ID

    @property
    def has_writes(self) -> bool:
        return bool(self.exact_create or self.exact_update or self.exact_delete or self.crm_changed)


def _line_id(plan: FlowPlan, raw: dict[str, dict[str, Any]], lid: str) -> str:
    """The Exact ID of a line listed under `lid` (a Customcrm line id, or 'exact:<ID>')."""
    return str(raw[lid][_exact_line_key(plan)]).lower()


def _exact_line_key(plan: FlowPlan) -> str:
    """The key of the flow's Exact line rows, as declared (`ExactLines.key`)."""
    assert plan.entity.lines is not None
    return plan.entity.lines.key

