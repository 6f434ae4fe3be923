"""Drawing records for a check: a value for every mapped property, as users type them.

Each property's values come from the catalogue of what users type that engines get wrong, in turn, and
otherwise from a random draw within the property's limits; a merge key's value is made unique to the run
(in a sandbox) or to the example (side by side), so two examples never merge. A record always holds what
either system requires to create it, and a Customcrm field the table does not map but Customcrm requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import note
from hypothesis import strategies as st

from conformance.planner import RowCheck
from conformance.strategies import (
    catalogue,
    catalogue_turn,
    distinct_value,
    field_limits,
    next_unique,
    sink,
    value_strategy,
)
from mocks.customcrm.models import RESOURCES as CRM_RESOURCES
from sync.dataflow import PropertyRow

if TYPE_CHECKING:
    from conformance.context import FlowContext

__all__ = ["crm_default", "crm_model", "crm_required", "draw_line", "draw_record", "draw_value"]


def draw_value(ctx: FlowContext, data: st.DataObject, mapping: RowCheck, *, allow_empty: bool = True,
               not_equal: Any = None, every_class: bool = False) -> Any:
    """A value for the property: `every_class` gives the one value that holds every class of what users
    type that engines get wrong (where the property can take one); otherwise a class of the catalogue in
    turn, or a random draw."""
    if every_class and mapping.kind != "ref":
        combined = sink(ctx.flow, mapping.row, mapping.kind)
        if combined is not None:
            return _keyed(ctx, mapping, chosen(combined, f"{mapping.id} (every class)"))
    if mapping.kind == "ref":
        pool = sorted(ctx.pools.get(ctx.ref_type(mapping), {}))
        choices = [p for p in pool if p != not_equal] or pool
        required = not allow_empty or crm_required(ctx, mapping)
        options = choices if required else [*choices, None]
        return data.draw(st.sampled_from(options), label=f"{mapping.id}")
    value = _catalogue_value(ctx, data, mapping)
    if value is None or value == not_equal:
        value = data.draw(value_strategy(ctx.flow, mapping.row, mapping.kind, allow_empty=allow_empty),
                          label=mapping.id)
    return _keyed(ctx, mapping, value)


def _keyed(ctx: FlowContext, mapping: RowCheck, value: Any) -> Any:
    """A merge key's value made unique: to the run in a sandbox, and everywhere to the record, or two records
    of one example would share it and merge."""
    if not mapping.is_line and mapping.exact_field in ctx.merge_fields:
        if ctx.systems.scope is not None:
            # In a sandbox a merge key must never match a record that was there before the run.
            value = ctx.systems.scope.tag(value, field_limits(ctx.flow, mapping.row)[0])
        else:  # nor one of another example's (in a batch), nor another record's of this example: a random
            # draw repeats as readily as a constant (Hypothesis draws the same number twice), and two records
            # with one key are one record to an engine that links by it
            value = distinct_value(value, next_unique(), field_limits(ctx.flow, mapping.row)[0])
    return value


def _catalogue_value(ctx: FlowContext, data: st.DataObject, mapping: RowCheck) -> Any:
    """This draw's class of value from the catalogue (what users type that engines get wrong), or None
    when the turn is a random draw. Told in Hypothesis's notes, as a draw would be."""
    classes = catalogue(ctx.flow, mapping.row, mapping.kind)
    nth = ctx.draws.get(mapping.id, 0)
    ctx.draws[mapping.id] = nth + 1
    turn = catalogue_turn(ctx.slot, nth, len(classes))
    if turn is None:
        return None
    name, value = classes[turn]
    return chosen(value, f"{mapping.id} ({name})")


def chosen(value: Any, label: str) -> Any:
    """A value taken without a draw (its class's constant), noted for the failing example's report as a draw
    of it would be. A draw of a constant consumes no choice, so shrinking loses nothing, but it costs what a
    draw costs (a third of a millisecond), and the checks take thousands."""
    note(f"{label}: {value!r}")
    return value


def crm_model(ctx: FlowContext) -> Any:
    """The Customcrm contract's model of this flow's records."""
    return CRM_RESOURCES[ctx.plan.resource.path].model


def crm_required(ctx: FlowContext, mapping: RowCheck) -> bool:
    return field_limits(ctx.flow, mapping.row)[1]


def crm_default(ctx: FlowContext, mapping: RowCheck) -> Any:
    """The value Customcrm gives a property left out of a create (such a property is never empty)."""
    info = crm_model(ctx).model_fields.get(mapping.crm_field)
    return None if info is None or info.is_required() else info.get_default(call_default_factory=True)


def _unmapped_required(ctx: FlowContext) -> list[str]:
    """Customcrm fields a record cannot be created without, though this flow's table does not map them."""
    mapped = {m.crm_field for m in ctx.header}
    return [name for name, info in crm_model(ctx).model_fields.items()
            if info.is_required() and name not in mapped]


def draw_line(ctx: FlowContext, data: st.DataObject) -> dict[str, Any]:
    line: dict[str, Any] = {}
    for m in ctx.line_mappings:
        value = draw_value(ctx, data, m, allow_empty=m.kind == "string")
        if value is not None:
            line[m.crm_field] = value
    return line


def draw_record(ctx: FlowContext, data: st.DataObject) -> dict[str, Any]:
    """A Customcrm record with a value for every mapped property (required ones always filled)."""
    record: dict[str, Any] = {}
    for m in ctx.header:
        value = draw_value(ctx, data, m)
        if value is not None:
            record[m.crm_field] = value
    for name in _unmapped_required(ctx):
        row = PropertyRow(name, name, None)
        record[name] = data.draw(value_strategy(ctx.flow, row, ctx.plan.resource.fields.get(name, "string"),
                                                allow_empty=False), label=name)
    for group in ctx.plan.resource.counterpart_when.get(ctx.flow.target_type.lower(), ()):
        if not any(record.get(name) for name in group):
            first = next((x for x in ctx.header if x.crm_field == group[0]), None)
            if first is not None:
                record[group[0]] = draw_value(ctx, data, first, allow_empty=False)
    if ctx.line_mappings:
        record["Lines"] = [draw_line(ctx, data) for _ in range(data.draw(st.integers(1, 3), label="lines"))]
    if (ctx.safe or ctx.batch is not None) and not any(
            record.get(m.crm_field) for m in ctx.header if m.exact_field in ctx.merge_fields):
        # In a sandbox every record carries the run id in a merge key, and in a batch one of its example's
        # own values (the example finds its records by it): fill the first one mapped.
        key = next((x for x in ctx.header if x.exact_field in ctx.merge_fields), None)
        if key is not None:
            record[key.crm_field] = draw_value(ctx, data, key, allow_empty=False)
    for group in ctx.plan.entity.mandatory:
        if not any(record.get(m.crm_field) for m in ctx.header if m.exact_field in group):
            needed = next((x for x in ctx.header if x.exact_field in group), None)
            if needed is not None:
                record[needed.crm_field] = draw_value(ctx, data, needed, allow_empty=False)
    return record
