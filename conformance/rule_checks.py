"""Checks of the sync rules themselves, one row each: conflict, clear, link-fills-empty, no-echo,
delete-not-propagated, references and lines.

Each check stages one rule of the document's semantics (who wins a conflict, what a clear does, what
happens at link time, on a delete, to a reference, to a line) so that a report row names the rule an
engine breaks, rather than a generic "edit" failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from conformance.context import CheckFailure, FlowContext, expect_from_crm, expect_from_exact
from conformance.drawing import crm_default, crm_required
from conformance.ownership import key_of
from conformance.planner import RowCheck
from conformance.registry import Check, Registry
from conformance.strategies import ENUMERATED, catalogue, distinct_value, lengths

__all__ = ["RULE_CHECKS", "RULES", "apply_edits", "apply_line_edit", "assert_quiet",
           "build_match", "changed_value", "current_value", "distinct", "expect_value", "set_value",
           "usable_merge_keys"]


# ---------------------------------------------------------------------------------------------- helpers


def current_value(ctx: FlowContext, side: str, crm_id: str, exact_id: str, m: RowCheck) -> Any:
    """A property's value on one side, in Customcrm's terms."""
    if side == "customcrm":
        return expect_from_crm((ctx.crm.get(ctx.crm_path, crm_id) or {}).get(m.crm_field), m.kind)
    raw = (ctx.exact.get(ctx.exact_path, exact_id) or {}).get(m.exact_field)
    value = expect_from_exact(raw, m.kind)
    if m.kind == "ref" and value is not None:
        back = {v: k for k, v in ctx.pools.get(ctx.ref_type(m), {}).items()}
        return back.get(value, value)
    return value


def distinct(ctx: FlowContext, data: st.DataObject, m: RowCheck, avoid: list[Any], label: str) -> Any:
    """A filled value of `m` unlike every value in `avoid` (compared as the systems store them)."""
    if m.kind == "bool":
        return not bool(avoid[0]) if avoid else True
    if m.kind == "ref":
        pool = [p for p in sorted(ctx.pools.get(ctx.ref_type(m), {})) if p not in avoid]
        if not pool:
            raise ctx.failure(None, f"no {ctx.ref_type(m)} record left to point {m.crm_field} at")
        return data.draw(st.sampled_from(pool), label=label)
    seen = {expect_from_crm(a, m.kind) for a in avoid}
    value = ctx.draw_value(data, m, allow_empty=False)
    for step in range(1, 40):  # a drawn value that collides is nudged deterministically (shrinking-safe)
        if expect_from_crm(value, m.kind) not in seen:
            return value
        value = _nudge(value, m, step)
    raise ctx.failure(None, f"could not find a value of {m.crm_field} unlike {avoid!r}")


def _nudge(value: Any, m: RowCheck, step: int) -> Any:
    """Another valid value close to `value` (same length for strings, so length limits still hold)."""
    if m.kind == "date":
        return (date.fromisoformat(value) + timedelta(days=step)).isoformat()
    if m.kind in ("double", "int"):
        return value + step
    choices = ENUMERATED.get(m.crm_field.split(".")[-1])
    if choices:
        return choices[step % len(choices)]
    text = str(value)
    if "@" in text:
        return f"{'abcdefghijklmnopqrstuvwxyz'[step % 26]}{text[1:]}"
    return text[:-1] + "abcdefghijklmnopqrstuvwxyz0123456789"[step % 36]


def set_value(ctx: FlowContext, side: str, crm_id: str, exact_id: str, m: RowCheck, value: Any) -> None:
    """Change one property on one side, as a user would there."""
    if side == "customcrm":
        ctx.crm.update(ctx.crm_path, crm_id, {m.crm_field: value})
    else:
        ctx.exact.update(ctx.exact_path, exact_id, {m.exact_field: ctx.to_exact_wire(m, value)})


def expect_value(ctx: FlowContext, check: str, crm_id: str, exact_id: str, m: RowCheck, expected: Any,
                  why: str) -> None:
    for side in ("customcrm", "exact"):
        actual = current_value(ctx, side, crm_id, exact_id, m)
        if not ctx.same(m, actual, expect_from_crm(expected, m.kind)):
            where = ctx.label("crm", crm_id) if side == "customcrm" else ctx.label("exact", exact_id)
            field = m.crm_field if side == "customcrm" else m.exact_field
            raise ctx.failure(check, f"{why}: expected {field}={expected!r} on {where}, found {actual!r}",
                              record=where, prop=field, expected=expected, found=actual)


def _mutable(ctx: FlowContext) -> list[RowCheck]:
    """Header properties a user can change on both sides."""
    return [m for m in ctx.header if m.exact_field not in ctx.plan.entity.immutable]


def _key_fields(ctx: FlowContext) -> set[str]:
    """Exact properties a record is found by (merge keys and their scope)."""
    return {name for alt in ctx.plan.entity.merge_keys for name in alt} | set(ctx.plan.entity.merge_scope)


def _conflict_candidates(ctx: FlowContext) -> list[RowCheck]:
    """Properties with room for three different values, not keys a record is found by."""
    keys = _key_fields(ctx)
    return [m for m in _mutable(ctx) if m.kind in ("string", "double", "int", "date", "datetime")
            and m.exact_field not in keys and m.crm_field not in ENUMERATED]


def _optional(ctx: FlowContext, m: RowCheck) -> bool:
    """Either side may leave this property empty, and emptying it keeps the record in the flow."""
    groups = [*ctx.plan.entity.mandatory]
    crm_groups = ctx.plan.resource.counterpart_when.get(ctx.flow.target_type.lower(), ())
    keys = _key_fields(ctx)
    return (m.kind != "bool" and not ctx.exact_mandatory(m) and crm_default(ctx, m) is None and not crm_required(ctx, m)
            and not any(m.exact_field in g for g in groups) and not any(m.crm_field in g for g in crm_groups)
            and m.exact_field not in keys)


def _clearable(ctx: FlowContext) -> list[RowCheck]:
    return [m for m in _mutable(ctx) if _optional(ctx, m)]


def assert_quiet(ctx: FlowContext, check: str, pairs: int | None = None) -> None:
    """A sync with no user edits writes nothing, and (given `pairs`) each side holds exactly that many."""
    before = ctx.versions()
    ctx.sync()
    after = ctx.versions()
    if before != after:
        changed = [f"{system} {key}" for system in after for key in after[system]
                   if before.get(system, {}).get(key) != after[system].get(key)]
        raise ctx.failure(check,
            f"a sync with no edits wrote to {', '.join(changed)}: the engine echoes "
            "its own writes")
    if pairs is not None and (len(after["exact"]) != pairs or len(after["customcrm"]) != pairs):
        raise ctx.failure(check,
            f"{pairs} linked pairs expected, found {len(after['customcrm'])} Customcrm "
            f"and {len(after['exact'])} Exact records")


def build_match(ctx: FlowContext, data: st.DataObject, record: dict[str, Any], key_index: int
                ) -> dict[str, Any]:
    """The Exact record a user already has for `record`: same merge key (alternative `key_index`), plus what
    Exact requires. `record` is adjusted so that this key is the one the engine must use."""
    by_target = {m.exact_field: m for m in ctx.header}
    merge_keys = usable_merge_keys(ctx)
    for earlier in merge_keys[:key_index]:  # an earlier, filled merge key would be used instead
        for name in earlier:
            record.pop(by_target[name].crm_field, None)
    existing: dict[str, Any] = {}
    for name in (*merge_keys[key_index], *ctx.plan.entity.merge_scope):
        m = by_target[name]
        if record.get(m.crm_field) is None:
            record[m.crm_field] = ctx.draw_value(data, m, allow_empty=False)
        existing[name] = ctx.to_exact_wire(m, record[m.crm_field])
    for group in ctx.plan.entity.mandatory:
        if not any(name in existing for name in group):
            m = next(x for x in ctx.header if x.exact_field in group)
            existing[m.exact_field] = ctx.to_exact_wire(m, record.get(m.crm_field)
                                                        or ctx.draw_value(data, m, allow_empty=False))
    if ctx.line_mappings:
        line = ctx.draw_line(data)
        existing[ctx.plan.entity.lines.nav] = [  # type: ignore[union-attr]
            {m.exact_field: ctx.to_exact_wire(m, line.get(m.crm_field)) for m in ctx.line_mappings
             if line.get(m.crm_field) is not None}]
    return existing


def usable_merge_keys(ctx: FlowContext) -> list[tuple[str, ...]]:
    by_target = {m.exact_field for m in ctx.header}
    return [alt for alt in ctx.plan.entity.merge_keys
            if all(name in by_target for name in (*alt, *ctx.plan.entity.merge_scope))]


def changed_value(ctx: FlowContext, data: st.DataObject, m: RowCheck, current: Any) -> Any:
    """A new value for the property as a user would type it (empty where allowed), never the one it holds: an
    edit to the same value tests nothing, and a boolean is flipped, so `false` is sent as often as `true`."""
    value = ctx.draw_value(data, m, allow_empty=not ctx.exact_mandatory(m), not_equal=current)
    if expect_from_crm(value, m.kind) == expect_from_crm(current, m.kind):
        value = distinct(ctx, data, m, [current], f"{m.id} (another value)")
    return value


def apply_edits(ctx: FlowContext, data: st.DataObject, side: str, crm_id: str, exact_id: str,
                mappings: list[RowCheck]) -> dict[str, Any]:
    """Change the given properties on one side, as a user would there; the header values written (mapping
    id -> value in Customcrm's terms), what the user meant both systems to hold."""
    crm_record = ctx.crm.get(ctx.crm_path, crm_id) or {}
    crm_body: dict[str, Any] = {}
    exact_body: dict[str, Any] = {}
    written: dict[str, Any] = {}
    for m in mappings:
        if m.is_line:
            continue
        if side == "exact" and m.exact_field in ctx.plan.entity.immutable:
            continue
        value = written[m.id] = changed_value(ctx, data, m, crm_record.get(m.crm_field))
        if side == "customcrm":
            crm_body[m.crm_field] = value
        else:
            exact_body[m.exact_field] = ctx.to_exact_wire(m, value)
    if crm_body:
        ctx.crm.update(ctx.crm_path, crm_id, crm_body)
    if any(m.is_line for m in mappings):
        action = data.draw(st.sampled_from(["change", "add", "remove"]), label="line action")
        apply_line_edit(ctx, data, side, action, crm_id, exact_id)
    if exact_body:
        ctx.exact.update(ctx.exact_path, exact_id, exact_body)
    return written


# Which line an edit picks is drawn from a fixed range, not from the lines a system holds now: Hypothesis runs a
# failing example again and needs the same draws to mean the same thing, whatever the systems hold by then (a
# draw shaped by their state hides the first failure behind "inconsistent data generation").
LINE_PICKS = 8


def _line_index(data: st.DataObject, count: int) -> int:
    return data.draw(st.integers(0, LINE_PICKS - 1), label="line") % count


def apply_line_edit(ctx: FlowContext, data: st.DataObject, side: str, action: str, crm_id: str,
                    exact_id: str) -> None:
    """Add, change or remove one line on one side, as a user would there (the last line is changed, not
    removed: an order keeps at least one)."""
    if side == "customcrm":
        lines = [dict(line) for line in (ctx.crm.get(ctx.crm_path, crm_id) or {}).get("Lines") or []]
        if action == "add" or not lines:
            lines.append(ctx.draw_line(data))
        elif action == "remove" and len(lines) > 1:
            lines.pop(_line_index(data, len(lines)))
        else:
            line = lines[_line_index(data, len(lines))]
            for m in ctx.line_mappings:
                line[m.crm_field] = ctx.draw_value(data, m, allow_empty=m.kind == "string")
        ctx.crm.update(ctx.crm_path, crm_id, {"Lines": lines})
        return
    lines_def = ctx.plan.entity.lines
    assert lines_def is not None
    exact_lines = ctx.exact_lines(exact_id)
    if action == "add" or not exact_lines:
        line = ctx.draw_line(data)
        ctx.exact.create(lines_def.path, {lines_def.parent_key: exact_id, **{
            m.exact_field: ctx.to_exact_wire(m, line[m.crm_field]) for m in ctx.line_mappings
            if line.get(m.crm_field) is not None}})
    elif action == "remove" and len(exact_lines) > 1:
        target = exact_lines[_line_index(data, len(exact_lines))]
        ctx.exact.delete(lines_def.path, target["ID"])
    else:
        target = exact_lines[_line_index(data, len(exact_lines))]
        ctx.exact.update(lines_def.path, target["ID"], {
            m.exact_field: ctx.to_exact_wire(m, ctx.draw_value(data, m, allow_empty=m.kind == "string"))
            for m in ctx.line_mappings})


# ---------------------------------------------------------------------------------------------- the checks

# The rules of the document as checks, in the order of the report. Declared `alone`: the checks that stage time
# on the systems' clocks or hold writes in flight (which every other check would see), and the volume check
# (its 1,001 records would sit in every other check's reads of the shared mirror): on the mocks they run on
# their own after the batch (`conflict`, like `stays-in-sync-faults`, with its own examples side by side).
RULES = Registry()


def _conflict_applies(ctx: FlowContext) -> str | None:
    if not _conflict_candidates(ctx) and len(_mutable(ctx)) < 2:
        return "the flow has no property both sides can edit"
    return None


@RULES.check("conflict",
             "Both sides edit: the later edit wins, equal times go to Customcrm, different properties merge",
             applies=_conflict_applies, alone=True, own_batch=True)
def _conflict(ctx: FlowContext, data: st.DataObject) -> None:
    """Both sides edit: the later edit wins per property, equal times go to Customcrm, and edits of
    different properties on the two sides are both kept (a three-way merge, not an overwrite)."""
    check = "conflict"
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
    candidates = _conflict_candidates(ctx)
    ctx.clocks.freeze()
    try:
        if candidates:
            m = data.draw(st.sampled_from(candidates), label="property edited on both sides")
            first = data.draw(st.sampled_from(["customcrm", "exact"]), label="edited first")
            second = "exact" if first == "customcrm" else "customcrm"
            old = current_value(ctx, "customcrm", crm_id, exact_id, m)
            v1 = distinct(ctx, data, m, [old], "earlier value")
            v2 = distinct(ctx, data, m, [old, v1], "later value")
            set_value(ctx, first, crm_id, exact_id, m, v1)
            ctx.clocks.advance(5)
            set_value(ctx, second, crm_id, exact_id, m, v2)
            ctx.sync()
            expect_value(ctx, check, crm_id, exact_id, m, v2,
                          f"{m.crm_field} was edited in {first} and later in {second}: the later edit wins")
            if ctx.clocks.can_stage_same_instant:
                v3 = distinct(ctx, data, m, [v2], "Customcrm's value at the same instant")
                v4 = distinct(ctx, data, m, [v2, v3], "Exact's value at the same instant")
                with ctx.clocks.same_instant():  # no other check moves the clocks between the two writes
                    ctx.clocks.advance(5)
                    set_value(ctx, "customcrm", crm_id, exact_id, m, v3)
                    set_value(ctx, "exact", crm_id, exact_id, m, v4)
                ctx.sync()
                expect_value(ctx, check, crm_id, exact_id, m, v3,
                              f"{m.crm_field} was edited on both sides at the same instant: Customcrm has priority")
        mutable = _mutable(ctx)
        if len(mutable) >= 2:
            a, b = data.draw(st.permutations(mutable), label="properties (Customcrm's, Exact's)")[:2]
            va = distinct(ctx, data, a, [current_value(ctx, "customcrm", crm_id, exact_id, a)], "Customcrm's edit")
            vb = distinct(ctx, data, b, [current_value(ctx, "exact", crm_id, exact_id, b)], "Exact's edit")
            ctx.clocks.advance(5)
            set_value(ctx, "customcrm", crm_id, exact_id, a, va)
            ctx.clocks.advance(5)
            set_value(ctx, "exact", crm_id, exact_id, b, vb)
            ctx.sync()
            why = (f"{a.crm_field} was edited in Customcrm and then {b.exact_field} in Exact: both edits must "
                   "survive")
            expect_value(ctx, check, crm_id, exact_id, a, va, why)
            expect_value(ctx, check, crm_id, exact_id, b, vb, why)
        ctx.assert_pair_agrees(check, crm_id, exact_id)
    finally:
        ctx.clocks.release()


def _clear_applies(ctx: FlowContext) -> str | None:
    return None if _clearable(ctx) else "every property of this flow is required on one side"


@RULES.check("clear", "A value cleared on either side is cleared on the other", applies=_clear_applies)
def _clear(ctx: FlowContext, data: st.DataObject) -> None:
    """A value cleared after the link is cleared on the other side too (in both directions)."""
    check = "clear"
    ctx.prepare(data)
    m = data.draw(st.sampled_from(_clearable(ctx)), label="cleared property")
    record = ctx.draw_record(data)
    record[m.crm_field] = ctx.draw_value(data, m, allow_empty=False)
    crm_id, exact_id = ctx.create_pair(check, record)
    expect_value(ctx, check, crm_id, exact_id, m, record[m.crm_field], "the value was set at create")
    set_value(ctx, "customcrm", crm_id, exact_id, m, None)
    ctx.sync()
    expect_value(ctx, check, crm_id, exact_id, m, None, f"{m.crm_field} was cleared in Customcrm")
    refill = ctx.draw_value(data, m, allow_empty=False)
    set_value(ctx, "exact", crm_id, exact_id, m, refill)
    ctx.sync()
    expect_value(ctx, check, crm_id, exact_id, m, refill, f"{m.exact_field} was filled in again in Exact")
    set_value(ctx, "exact", crm_id, exact_id, m, None)
    ctx.sync()
    expect_value(ctx, check, crm_id, exact_id, m, None, f"{m.exact_field} was cleared in Exact")
    ctx.assert_pair_agrees(check, crm_id, exact_id)


def _link_fills_empty_applies(ctx: FlowContext) -> str | None:
    if not usable_merge_keys(ctx):
        return f"the document maps no merge key of Exact {ctx.flow.target_type}"
    return None


@RULES.check("link-fills-empty",
             "At link time an empty value never overwrites a filled one",
             applies=_link_fills_empty_applies)
def _link_fills_empty(ctx: FlowContext, data: st.DataObject) -> None:
    """At link time an empty value never overwrites a filled one: each side takes the other's filled values."""
    check = "link-fills-empty"
    ctx.prepare(data)
    record = ctx.draw_record(data)
    existing = build_match(ctx, data, record, data.draw(st.integers(0, len(usable_merge_keys(ctx)) - 1),
                                                          label="merge key"))
    optional = [m for m in _mutable(ctx) if _optional(ctx, m) and m.exact_field not in existing]
    order = data.draw(st.permutations(optional), label="properties")
    exact_side = set(order[1::2])  # every other one is filled only in Exact, the rest only in Customcrm
    expected: dict[str, Any] = {}
    for m in order:
        value = ctx.draw_value(data, m, allow_empty=False)
        if m in exact_side:
            record.pop(m.crm_field, None)
            existing[m.exact_field] = ctx.to_exact_wire(m, value)
        else:
            record[m.crm_field] = value
        expected[m.id] = value
    before = set(ctx.exact_records())  # before its own write, which would make this read ask Exact again
    first = ctx.exact.create(ctx.exact_path, existing)
    exact_id = str(first[ctx.exact_key]).lower()
    before.add(exact_id)
    crm_id = str(ctx.crm.create(ctx.crm_path, record)["Id"])
    ctx.sync()
    if set(ctx.exact_records()) != before:
        raise ctx.failure(check, f"{ctx.label('crm', crm_id)} matches Exact {exact_id} by its "
                           "merge key, yet the sync created a new Exact record")
    for m in order:
        origin = "Exact" if m in exact_side else "Customcrm"
        expect_value(ctx, check, crm_id, exact_id, m, expected[m.id],
                      f"{m.crm_field} was filled only in {origin} when the records were linked")
    ctx.assert_pair_agrees(check, crm_id, exact_id)


@RULES.check("no-echo", "A second sync with no edits writes nothing")
def _no_echo(ctx: FlowContext, data: st.DataObject) -> None:
    """After edits on both sides have been synced, one more sync writes nothing to either system."""
    check = "no-echo"
    ctx.prepare(data)
    count = data.draw(st.integers(1, 3), label="records")
    pairs = [ctx.create_pair(check, ctx.draw_record(data)) for _ in range(count)]
    for side in ("customcrm", "exact"):
        crm_id, exact_id = data.draw(st.sampled_from(pairs), label="pair")
        choices = _mutable(ctx)
        if choices:
            m = data.draw(st.sampled_from(choices), label=f"property edited in {side}")
            set_value(ctx, side, crm_id, exact_id, m,
                 distinct(ctx, data, m, [current_value(ctx, side, crm_id, exact_id, m)], "value"))
        if ctx.line_mappings:
            apply_line_edit(ctx, data, side, "change", crm_id, exact_id)
    ctx.sync()
    assert_quiet(ctx, check, len(pairs))


@RULES.check("delete-not-propagated", "A delete retires the link; the other side is kept and never re-created")
def _delete_not_propagated(ctx: FlowContext, data: st.DataObject) -> None:
    """A record deleted on one side retires its link: the other side is left as it is and not re-created,
    even when it is edited afterwards."""
    check = "delete-not-propagated"
    ctx.prepare(data)
    (crm_a, exact_a), (crm_b, exact_b) = (ctx.create_pair(check, ctx.draw_record(data)) for _ in range(2))
    survivors_before = ctx.versions()
    ctx.crm.delete(ctx.crm_path, crm_a)
    ctx.exact.delete(ctx.exact_path, exact_b)
    ctx.sync()
    after = ctx.versions()
    if exact_a not in after["exact"]:
        raise ctx.failure(check, f"{ctx.label('crm', crm_a)} was deleted in Customcrm and the "
                           f"sync deleted {ctx.label('exact', exact_a)} too: deletes must not propagate")
    if crm_b not in after["customcrm"]:
        raise ctx.failure(check, f"{ctx.label('exact', exact_b)} was deleted in Exact and the "
                           f"sync deleted {ctx.label('crm', crm_b)} too: deletes must not propagate")
    if after["exact"][exact_a] != survivors_before["exact"][exact_a] or \
            after["customcrm"][crm_b] != survivors_before["customcrm"][crm_b]:
        raise ctx.failure(check, f"the sync wrote to the survivor of a deleted pair "
                           f"({ctx.label('exact', exact_a)} or {ctx.label('crm', crm_b)}); it must be left as it is")
    if len(after["exact"]) != 1 or len(after["customcrm"]) != 1:
        raise ctx.failure(check, f"after one delete on each side, one record must remain on "
                           f"each side; found {len(after['customcrm'])} in Customcrm and {len(after['exact'])} "
                           "in Exact (a deleted record was re-created)")
    for side, crm_id, exact_id in (("exact", crm_a, exact_a), ("customcrm", crm_b, exact_b)):
        choices = [m for m in _mutable(ctx)]
        if choices:
            m = data.draw(st.sampled_from(choices), label=f"survivor's property edited in {side}")
            set_value(ctx, side, crm_id, exact_id, m,
                 distinct(ctx, data, m, [current_value(ctx, side, crm_id, exact_id, m)], "value"))
    ctx.sync()
    final = ctx.versions()
    if len(final["exact"]) != 1 or len(final["customcrm"]) != 1:
        raise ctx.failure(check, f"after the survivors were edited, the sync re-created a "
                           f"deleted record: {len(final['customcrm'])} in Customcrm, {len(final['exact'])} in Exact")


def _references_applies(ctx: FlowContext) -> str | None:
    return None if any(m.kind == "ref" for m in ctx.mappings) else "the flow has no reference properties"


@RULES.check("references",
             "Each reference points at the linked record, after create and after a change on either side",
             applies=_references_applies)
def _references(ctx: FlowContext, data: st.DataObject) -> None:
    """Each reference points at the record linked to the one it names, after create and after it is changed
    on either side."""
    check = "references"
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
    refs = [m for m in ctx.header if m.kind == "ref"]
    line_refs = [m for m in ctx.line_mappings if m.kind == "ref"]
    rows = [m.row for m in (*refs, *line_refs)]
    ctx.assert_pair_agrees(f"{check} (at create)", crm_id, exact_id, rows)
    # On each side a user points every reference elsewhere (and a line at another product) before one pass:
    # each reference is judged on its own row, so a pass per reference would only cost more of Exact's calls.
    for side in ("customcrm", "exact"):
        changed: list[str] = []
        for m in refs:
            if side == "exact" and m.exact_field in ctx.plan.entity.immutable:
                continue
            current = current_value(ctx, side, crm_id, exact_id, m)
            try:
                target = distinct(ctx, data, m, [current], f"new {m.crm_field}")
            except CheckFailure:
                continue
            set_value(ctx, side, crm_id, exact_id, m, target)
            changed.append(m.crm_field if side == "customcrm" else m.exact_field)
        if line_refs:
            apply_line_edit(ctx, data, side, "change", crm_id, exact_id)
            changed.append("a line")
        if changed:
            ctx.sync()
            ctx.assert_pair_agrees(f"{check} ({', '.join(changed)} changed in {side})", crm_id, exact_id, rows)


def _lines_applies(ctx: FlowContext) -> str | None:
    return None if ctx.line_mappings else "the flow has no line collection"


@RULES.check("lines", "Lines added, changed and removed on either side reach the other side", applies=_lines_applies)
def _lines(ctx: FlowContext, data: st.DataObject) -> None:
    """Lines added, changed and removed on either side reach the other side."""
    check = "lines"
    ctx.prepare(data)
    record = ctx.draw_record(data)
    record["Lines"] = [ctx.draw_line(data) for _ in range(2)]
    crm_id, exact_id = ctx.create_pair(check, record)
    rows = [m.row for m in ctx.line_mappings]
    ctx.assert_pair_agrees(f"{check} (at create)", crm_id, exact_id, rows)
    # A user reworks the order on one side, then on the other: one line changed, one removed and one added
    # before each pass, as people edit (the engine must pair what is left, not assume one change a pass).
    for side in ("customcrm", "exact"):
        for action in ("change", "remove", "add"):
            apply_line_edit(ctx, data, side, action, crm_id, exact_id)
        ctx.sync()
        ctx.assert_pair_agrees(f"{check} (a line changed, one removed and one added in {side})", crm_id, exact_id,
                               rows)


def _too_long_applies(ctx: FlowContext) -> str | None:
    if _longer_in_customcrm(ctx):
        return None
    return "no property of this flow takes longer text in Customcrm than in Exact"


@RULES.check("too-long",
             "Text longer than Exact takes is never cut to fit: it waits, reported, until it is shortened",
             applies=_too_long_applies)
def _too_long(ctx: FlowContext, data: st.DataObject) -> None:
    """A value longer than Exact takes is never cut to fit (the document promises equal values): the record
    waits unsynced (the engine reports it) until the user shortens it, and then it syncs whole."""
    check = "too-long"
    ctx.prepare(data)
    m = data.draw(st.sampled_from(_longer_in_customcrm(ctx)), label="property")
    crm_max, exact_max = lengths(ctx.flow, m.row)
    assert exact_max is not None
    length = data.draw(st.integers(exact_max + 1, min(crm_max or exact_max + 60, exact_max + 60)), label="length")
    long_value = ("Zoë Ångström " * 30)[:length - 1] + "!"
    record = ctx.draw_record(data)
    record[m.crm_field] = long_value
    before = set(ctx.exact_records())
    created = ctx.crm.create(ctx.crm_path, record)
    crm_id = str(created["Id"])
    ctx.sync()
    for key, row in ctx.exact_records().items():
        if key in before:
            continue
        value = row.get(m.exact_field)
        kind = "cut to fit" if isinstance(value, str) and value and long_value.startswith(value.rstrip()) else \
            "without it"
        raise ctx.failure(check,
            f"{ctx.label('crm', crm_id)} has {m.crm_field} of {length} characters and "
            f"Exact's {m.exact_field} takes {exact_max}; the engine created {ctx.label('exact', key)} {kind} "
            f"({m.exact_field}={value!r}) instead of leaving it unsynced and saying so")
    shortened = long_value[:exact_max].rstrip() or "x"
    ctx.crm.update(ctx.crm_path, crm_id, {m.crm_field: shortened})
    ctx.sync()
    new = sorted(set(ctx.exact_records()) - before)
    if len(new) != 1:
        raise ctx.failure(check,
            f"{ctx.label('crm', crm_id)} was shortened to {m.crm_field}={shortened!r}, "
            f"which Exact takes; expected one new Exact {ctx.flow.target_type} after a sync, found {len(new)}")
    ctx.assert_pair_agrees(f"{check} (shortened)", crm_id, new[0])


def _writes_to(ctx: FlowContext, crm_id: str, exact_id: str) -> Counter[tuple[str, str, str, str]]:
    """The writes each mock has answered on this pair's records (its journal, by record path)."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for system, marker in (("customcrm", f"/{crm_id}"), ("exact", f"(guid'{exact_id}')")):
        for entry in ctx.systems.journal(system, path_contains=marker, methods=("PUT", "PATCH", "POST")):
            out[(system, str(entry["at"]), str(entry["method"]), str(entry["path"]))] += 1
    return out


@RULES.check("write-budget", "One user edit costs at most one write to the other side; a quiet pass costs none")
def _write_budget(ctx: FlowContext, data: st.DataObject) -> None:
    """One user edit costs at most one write to the other side, and the pass after it none: an engine that
    rewrites what did not change, or sends an update twice, spends the other system's limits for nothing
    (Exact allows 60 calls a minute). Counted from the mocks' journals, or from Customcrm's versions in a
    sandbox (where Exact's side is left to no-echo)."""
    check = "write-budget"
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
    journal = None if ctx.safe else _writes_to(ctx, crm_id, exact_id)  # the pair's writes so far
    for side in ("customcrm", "exact"):
        m = data.draw(st.sampled_from(_mutable(ctx)), label=f"property edited in {side}")
        value = distinct(ctx, data, m, [current_value(ctx, side, crm_id, exact_id, m)], "value")
        other = "exact" if side == "customcrm" else "customcrm"
        before_version = (ctx.crm.get(ctx.crm_path, crm_id) or {}).get("Version")
        set_value(ctx, side, crm_id, exact_id, m, value)
        ctx.sync()
        version = (ctx.crm.get(ctx.crm_path, crm_id) or {}).get("Version")
        if journal is not None:
            after = _writes_to(ctx, crm_id, exact_id)
            # The user's own write went to `side`: every write to the other side since is the engine's.
            made = len([k for k in (after - journal) if k[0] == other])
            journal = after
        elif side == "exact" and isinstance(before_version, int) and isinstance(version, int):
            made = version - before_version
        else:
            made = 0
        if made > 1:
            target = ctx.label("crm", crm_id) if other == "customcrm" else ctx.label("exact", exact_id)
            edited = m.crm_field if side == "customcrm" else m.exact_field
            raise ctx.failure(check, f"one edit of {edited} in {side} cost {made} writes to "
                               f"{target}; at most one is needed")
    quiet = journal  # nothing was written to the pair since the journals were last read
    version = (ctx.crm.get(ctx.crm_path, crm_id) or {}).get("Version")
    ctx.sync()
    if quiet is not None:
        echoed = _writes_to(ctx, crm_id, exact_id) - quiet
        if echoed:
            raise ctx.failure(check, f"a pass with no edits wrote to {ctx.label('crm', crm_id)} or "
                               f"{ctx.label('exact', exact_id)}: {sorted(echoed)}")
    if (ctx.crm.get(ctx.crm_path, crm_id) or {}).get("Version") != version:
        raise ctx.failure(check, f"a pass with no edits wrote to {ctx.label('crm', crm_id)}")
    ctx.assert_pair_agrees(check, crm_id, exact_id)


def _concurrent_applies(ctx: FlowContext) -> str | None:
    if ctx.safe:
        return "safe mode: a sandbox's writes cannot be held in flight (no faults are injected into a sandbox)"
    if ctx.systems.target == "inproc":
        return ("the in-process mocks answer one request at a time, so no edit can land while a write is in "
                "flight: run with --target server (an engine run as a command always is)")
    return None if _three_valued(ctx) else "the flow has no property both sides can edit to three values"


@RULES.check("concurrent-edit",
             "A user's edit made while the engine writes to the same record survives",
             applies=_concurrent_applies, alone=True)
def _concurrent_edit(ctx: FlowContext, data: st.DataObject) -> None:
    """A user edits a record while the engine is writing an older edit from the other side to it: the user's
    edit survives (the engine's write is refused by its If-Match, or merged on the next pass), and the later
    edit wins on both sides. The engine's write is held in flight by the mock (0.4 s of latency on it), so the
    user's edit lands between the engine's read and its write, every time."""
    check = "concurrent-edit"
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
    m = data.draw(st.sampled_from(_three_valued(ctx)), label="property")
    current = current_value(ctx, "customcrm", crm_id, exact_id, m)
    older = distinct(ctx, data, m, [current], "edited in Exact")
    set_value(ctx, "exact", crm_id, exact_id, m, older)
    ctx.systems.admin("customcrm", "faults", {"rules": [
        {"method": "PATCH", "path": f"/{crm_id}$", "latency_ms": 400, "times": 1}]})
    failure: list[BaseException] = []

    def one_pass() -> None:
        try:
            ctx.engine.sync(ctx.flows)
        except BaseException as exc:  # noqa: BLE001 - told to the check below
            failure.append(exc)

    engine = threading.Thread(target=one_pass, name="talkcheck-concurrent-pass", daemon=True)
    engine.start()
    try:
        deadline = time.monotonic() + 20
        while not any(r.get("fired") for r in ctx.systems.admin("customcrm", "faults") or []):
            if not engine.is_alive() or time.monotonic() > deadline:
                raise ctx.failure(check, f"{m.exact_field} of {ctx.label('exact', exact_id)} was "
                                   f"edited in Exact, and the pass never wrote it to {ctx.label('crm', crm_id)}")
            time.sleep(0.02)
        newer = distinct(ctx, data, m, [current, older], "edited in Customcrm during the pass")
        set_value(ctx, "customcrm", crm_id, exact_id, m, newer)
        engine.join(60)
    finally:
        ctx.systems.clear_faults()
    if failure:
        raise failure[0]
    ctx.sync()
    expect_value(ctx, check, crm_id, exact_id, m, newer,
                 f"{m.crm_field} was set to {newer!r} in Customcrm while the engine was writing Exact's older "
                 f"{older!r} to it")


def _three_valued(ctx: FlowContext) -> list[RowCheck]:
    """Properties both sides can edit that take three different values (not a yes/no, not a reference to one
    of two records), and that do not find the record (merge keys)."""
    return [m for m in _mutable(ctx) if m.exact_field not in _key_fields(ctx) and m.kind not in ("bool", "ref")]


def _longer_in_customcrm(ctx: FlowContext) -> list[RowCheck]:
    """Free-text properties Customcrm lets a user fill beyond what Exact takes (a name of 100 against 50)."""
    out = []
    for m in ctx.header:
        crm_max, exact_max = lengths(ctx.flow, m.row)
        if m.kind == "string" and exact_max is not None and (crm_max is None or crm_max > exact_max) \
                and m.exact_field not in ctx.merge_fields and catalogue(ctx.flow, m.row, m.kind):
            out.append(m)
    return out


# Customcrm's change feed and lists give at most 1,000 entries a page: one more crosses a page whatever page
# size an engine asks for.
PAGE_CROSSING = 1001


def _paging_applies(ctx: FlowContext) -> str | None:
    if ctx.safe:
        return f"safe mode: {PAGE_CROSSING} records would each cost a delete of the sandbox's daily calls"
    if not ctx.volume:
        return ("one flow carries the volume for the whole run (the document's first flow with neither "
                "references nor lines), at the ci and thorough profiles")
    return None


@RULES.check("paging", f"{PAGE_CROSSING} records created between two passes (past a page of Customcrm's change feed) "
             "all reach Exact, once", applies=_paging_applies, alone=True, once=True)
def _paging(ctx: FlowContext, data: st.DataObject) -> None:
    """More records created between two passes than the largest page of Customcrm's change feed: each reaches
    Exact, once. An engine that reads only a feed's first page leaves the rest behind (or for a later pass)."""
    check = "paging"
    ctx.prepare(data)
    record = ctx.draw_record(data)
    key = next((m for m in ctx.header if m.exact_field in _key_fields(ctx) and record.get(m.crm_field)), None)
    if key is None:
        raise ctx.failure(check, f"no merge key of the flow to tell {PAGE_CROSSING} records apart")
    limit = lengths(ctx.flow, key.row)[0]
    rows = [{**record, key.crm_field: distinct_value(record[key.crm_field], n, limit)}
            for n in range(1, PAGE_CROSSING + 1)]
    # Through the mock's admin plane in one call (the check runs on the mocks only): each record is created
    # as the API creates it, with its entry in the change feed, without a thousand calls to set it up.
    ctx.systems.admin("customcrm", "seed", {"records": {ctx.crm_path: rows}})
    ctx.sync()
    crm, exact = ctx.crm_records(), ctx.exact_records()
    carried = {key_of(r.get(key.exact_field)) for r in exact.values()}
    missing = [r for r in crm if key_of(r.get(key.crm_field)) not in carried]
    if missing or len(exact) != len(crm):
        first = f"; the first not carried: {ctx.label('crm', str(missing[0]['Id']))}" if missing else ""
        raise ctx.failure(check,
            f"{len(crm)} Customcrm {ctx.flow.source_type} records were created between two "
            f"passes (more than a page of its change feed: 1,000 entries); after the pass Exact holds "
            f"{len(exact)} of them{first}")


RULE_CHECKS: tuple[Check, ...] = tuple(RULES)
