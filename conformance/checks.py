"""The checklist: one check per claim of the document, generated for every flow and every table row.

A check drives both systems as a user would (through their APIs), lets the engine under test run, and
asserts what the document promises. Failures name the flow, the check, the record and the property.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import strategies as st

from conformance.context import CheckFailure, FlowContext
from sync.dataflow import Flow, PropertyRow
from sync.engine import Mapping

__all__ = ["CHECKS", "Check", "CheckFailure", "FlowContext", "checks_for"]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[FlowContext, st.DataObject], None]
    row: PropertyRow | None = None


def _create(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair("create", ctx.draw_record(data))
    ctx.assert_pair_agrees("create", crm_id, exact_id)


def _link(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data)
    by_target = {m.exact_field: m for m in ctx.header}
    merge_keys = [alt for alt in ctx.plan.entity.merge_keys
                  if all(name in by_target for name in (*alt, *ctx.plan.entity.merge_scope))]
    if not merge_keys:
        raise CheckFailure(f"[{ctx.flow.id} / link] the document maps no merge key of Exact {ctx.flow.target_type}")
    index = data.draw(st.integers(0, len(merge_keys) - 1), label="merge key")
    ambiguous = data.draw(st.booleans(), label="ambiguous")
    record = ctx.draw_record(data)
    for earlier in merge_keys[:index]:  # an earlier, filled merge key would be used instead
        for name in earlier:
            record.pop(by_target[name].crm_field, None)
    existing: dict[str, Any] = {}
    for name in (*merge_keys[index], *ctx.plan.entity.merge_scope):
        m = by_target[name]
        if record.get(m.crm_field) is None:
            record[m.crm_field] = ctx.draw_value(data, m, allow_empty=False)
        existing[name] = ctx.to_exact_wire(m, record[m.crm_field])
    for group in ctx.plan.entity.mandatory:
        if not any(name in existing for name in group):
            m = next(x for x in ctx.header if x.exact_field in group)
            existing[m.exact_field] = ctx.to_exact_wire(m, ctx.draw_value(data, m, allow_empty=False))
    if ctx.line_mappings:
        line = ctx.draw_line(data)
        existing[ctx.plan.entity.lines.nav] = [  # type: ignore[union-attr]
            {m.exact_field: ctx.to_exact_wire(m, line.get(m.crm_field)) for m in ctx.line_mappings
             if line.get(m.crm_field) is not None}]
    first = ctx.exact.create(ctx.exact_path, existing)
    if ambiguous:
        try:
            ctx.exact.create(ctx.exact_path, existing)
        except httpx.HTTPStatusError:
            ambiguous = False  # Exact keeps this key unique (an item code): no ambiguity can arise
    before = set(ctx.exact_records())
    crm_record = ctx.crm.create(ctx.crm_path, record)
    ctx.sync()
    after = set(ctx.exact_records())
    if after != before:
        raise CheckFailure(
            f"[{ctx.flow.id} / link] {ctx.label('crm', crm_record['Id'])} has the merge key {existing!r} of "
            f"{'two existing' if ambiguous else 'an existing'} Exact {ctx.flow.target_type}, yet the sync "
            f"created {len(after - before)} new one(s)")
    if not ambiguous:
        ctx.assert_pair_agrees("link", str(crm_record["Id"]), str(first[ctx.exact_key]).lower())


def apply_edits(ctx: FlowContext, data: st.DataObject, side: str, crm_id: str, exact_id: str,
                mappings: list[Mapping]) -> None:
    """Change the given properties on one side, as a user would there."""
    crm_record = ctx.crm.get(ctx.crm_path, crm_id) or {}
    crm_body: dict[str, Any] = {}
    exact_body: dict[str, Any] = {}
    for m in mappings:
        if m.is_line:
            continue
        if side == "exact" and m.exact_field in ctx.plan.entity.immutable:
            continue
        value = ctx.draw_value(data, m, allow_empty=not ctx.exact_mandatory(m),
                               not_equal=crm_record.get(m.crm_field))
        if side == "customcrm":
            crm_body[m.crm_field] = value
        else:
            exact_body[m.exact_field] = ctx.to_exact_wire(m, value)
    line_edits = [m for m in mappings if m.is_line]
    if line_edits:
        if side == "customcrm":
            lines = [dict(line) for line in crm_record.get("Lines") or []]
            action = data.draw(st.sampled_from(["change", "add", "remove"]), label="line action")
            if action == "add" or not lines:
                lines.append(ctx.draw_line(data))
            elif action == "remove" and len(lines) > 1:
                lines.pop(data.draw(st.integers(0, len(lines) - 1), label="line"))
            else:
                line = lines[data.draw(st.integers(0, len(lines) - 1), label="line")]
                for m in line_edits:
                    line[m.crm_field] = ctx.draw_value(data, m, allow_empty=m.kind == "string")
            crm_body["Lines"] = lines
        else:
            lines_def = ctx.plan.entity.lines
            assert lines_def is not None
            exact_lines = ctx.exact_lines(exact_id)
            action = data.draw(st.sampled_from(["change", "add", "remove"]), label="line action")
            if action == "add" or not exact_lines:
                line = ctx.draw_line(data)
                ctx.exact.create(lines_def.path, {lines_def.parent_key: exact_id, **{
                    m.exact_field: ctx.to_exact_wire(m, line[m.crm_field]) for m in ctx.line_mappings
                    if line.get(m.crm_field) is not None}})
            elif action == "remove" and len(exact_lines) > 1:
                target = exact_lines[data.draw(st.integers(0, len(exact_lines) - 1), label="line")]
                ctx.exact.delete(lines_def.path, target["ID"])
            else:
                target = exact_lines[data.draw(st.integers(0, len(exact_lines) - 1), label="line")]
                ctx.exact.update(lines_def.path, target["ID"], {
                    m.exact_field: ctx.to_exact_wire(m, ctx.draw_value(data, m, allow_empty=m.kind == "string"))
                    for m in line_edits})
    if crm_body:
        ctx.crm.update(ctx.crm_path, crm_id, crm_body)
    if exact_body:
        ctx.exact.update(ctx.exact_path, exact_id, exact_body)


def _edit(side: str) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"edit-{side}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        ctx.prepare(data)
        crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
        chosen = data.draw(st.lists(st.sampled_from(list(ctx.mappings)), min_size=1, unique=True),
                           label="edited properties")
        apply_edits(ctx, data, side, crm_id, exact_id, chosen)
        ctx.sync()
        ctx.assert_pair_agrees(check, crm_id, exact_id)

    return run


def _stays_in_sync(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data)
    count = data.draw(st.integers(1, 3), label="records")
    pairs = [ctx.create_pair("stays-in-sync", ctx.draw_record(data)) for _ in range(count)]
    steps = data.draw(st.lists(st.sampled_from(["edit-customcrm", "edit-exact", "sync"]), max_size=6),
                      label="steps")
    for step in steps:
        if step == "sync":
            ctx.sync()
            continue
        crm_id, exact_id = data.draw(st.sampled_from(pairs), label="pair")
        mapping = data.draw(st.sampled_from(list(ctx.mappings)), label="property")
        apply_edits(ctx, data, step.removeprefix("edit-"), crm_id, exact_id, [mapping])
    ctx.sync()
    for crm_id, exact_id in pairs:
        ctx.assert_pair_agrees("stays-in-sync", crm_id, exact_id)
    before = ctx.versions()
    ctx.sync()
    after = ctx.versions()
    if before != after:
        changed = [f"{system} {key}" for system in after for key in after[system]
                   if before.get(system, {}).get(key) != after[system].get(key)]
        raise CheckFailure(
            f"[{ctx.flow.id} / stays-in-sync] a sync with no edits wrote to {', '.join(changed)}: the engine "
            "echoes its own writes")
    if len(after["exact"]) != len(pairs) or len(after["customcrm"]) != len(pairs):
        raise CheckFailure(
            f"[{ctx.flow.id} / stays-in-sync] {len(pairs)} linked pairs expected, found "
            f"{len(after['customcrm'])} Customcrm and {len(after['exact'])} Exact records")


def _property(row: PropertyRow) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"property:{row.id}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        ctx.prepare(data)
        mapping = ctx.mapping(row)
        record = ctx.draw_record(data)
        if not mapping.is_line:
            record[mapping.crm_field] = ctx.draw_value(data, mapping, allow_empty=False)
        crm_id, exact_id = ctx.create_pair(check, record)
        ctx.assert_pair_agrees(check + " (create)", crm_id, exact_id, [row])
        for side in ("exact", "customcrm"):
            if side == "exact" and mapping.exact_field in ctx.plan.entity.immutable:
                continue
            apply_edits(ctx, data, side, crm_id, exact_id, [mapping])
            ctx.sync()
            ctx.assert_pair_agrees(f"{check} (edited in {side})", crm_id, exact_id, [row])

    return run


CHECKS: tuple[Check, ...] = (
    Check("create", "A new Customcrm record yields one new Exact record with every property", _create),
    Check("link", "An existing Exact record with the merge key is linked, nothing created", _link),
    Check("edit-customcrm", "An edit in Customcrm reaches Exact", _edit("customcrm")),
    Check("edit-exact", "An edit in Exact reaches Customcrm", _edit("exact")),
    Check("stays-in-sync", "Random edits on both sides converge; a sync without edits writes nothing",
          _stays_in_sync),
)


def property_checks(flow: Flow, make: Callable[[PropertyRow], Callable[[FlowContext, st.DataObject], None]]
                    ) -> list[Check]:
    """One check per property row of the flow's table."""
    return [Check(f"property:{row.id}", f"{row.source} is kept equal to {row.target} ({row.data_type})",
                  make(row), row) for row in flow.properties]


def checks_for(flow: Flow) -> list[Check]:
    """The flow-level checks, then one check per property row of the flow's table."""
    if flow.source_type.lower() == "user":
        from conformance.user_checks import user_checks

        return user_checks(flow)
    return [*CHECKS, *property_checks(flow, _property)]
