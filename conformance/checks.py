"""The checklist: one check per claim of the document, generated for every flow and every table row.

A check drives both systems as a user would (through their APIs), lets the engine under test run, and
asserts what the document promises. Failures name the flow, the check, the record and the property.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from conformance.context import CheckFailure, FlowContext
from conformance.machine import stays_in_sync_machine
from conformance.property_rows import property_check
from conformance.registry import Check, Registry, property_checks
from conformance.rule_checks import (
    RULES,
    apply_edits,
    build_match,
    expect_value,
    usable_merge_keys,
)
from conformance.user_checks import user_checks
from sync.dataflow import Flow

__all__ = ["CHECKS", "Check", "CheckFailure", "FlowContext", "checks_for"]

# Exact sets whose merge key Exact itself keeps unique (a second item with one code is refused).
UNIQUE_IN_EXACT = frozenset({"Items"})


# The checks every flow of records has, before the rules' (`rule_checks.RULES`) and the state machines.
FLOW_CHECKS = Registry()


@FLOW_CHECKS.check("create", "A new Customcrm record yields one new Exact record with every property")
def _create(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data)
    crm_id, exact_id = ctx.create_pair("create", ctx.draw_record(data))
    ctx.assert_pair_agrees("create", crm_id, exact_id)


@FLOW_CHECKS.check("link", "An existing Exact record with the merge key is linked, nothing created")
def _link(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data)
    merge_keys = usable_merge_keys(ctx)
    if not merge_keys:
        raise ctx.failure("link", f"the document maps no merge key of Exact {ctx.flow.target_type}")
    index = data.draw(st.integers(0, len(merge_keys) - 1), label="merge key")
    ambiguous = data.draw(st.booleans(), label="ambiguous")
    record = ctx.draw_record(data)
    existing = build_match(ctx, data, record, index)
    # What the example holds in Exact before its own records: read now, before a write of its own makes its
    # next read ask Exact again (a second read of the set between two passes, in a sandbox a call).
    before = set(ctx.exact_records())
    first = ctx.exact.create(ctx.exact_path, existing)
    before.add(str(first[ctx.exact_key]).lower())
    if ambiguous and ctx.safe and ctx.plan.entity.type_name in UNIQUE_IN_EXACT:
        ambiguous = False  # a call meant to be refused is a negative test: none against a sandbox
    if ambiguous:
        try:
            second = ctx.exact.create(ctx.exact_path, existing)
            before.add(str(second[ctx.exact_key]).lower())
        except httpx.HTTPStatusError:
            ambiguous = False  # Exact keeps this key unique (an item code): no ambiguity can arise
    crm_record = ctx.crm.create(ctx.crm_path, record)
    ctx.sync()
    after = set(ctx.exact_records())
    if after != before:
        raise ctx.failure("link",
            f"{ctx.label('crm', crm_record['Id'])} has the merge key {existing!r} of "
            f"{'two existing' if ambiguous else 'an existing'} Exact {ctx.flow.target_type}, yet the sync "
            f"created {len(after - before)} new one(s)")
    if not ambiguous:
        ctx.assert_pair_agrees("link", str(crm_record["Id"]), str(first[ctx.exact_key]).lower())


def _edit(side: str) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"edit-{side}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        ctx.prepare(data)
        crm_id, exact_id = ctx.create_pair(check, ctx.draw_record(data))
        chosen = data.draw(st.lists(st.sampled_from(list(ctx.mappings)), min_size=1, unique=True),
                           label="edited properties")
        written = apply_edits(ctx, data, side, crm_id, exact_id, chosen)
        ctx.sync()
        ctx.assert_pair_agrees(check, crm_id, exact_id)
        for m in chosen:  # agreeing is not enough: both hold what the user entered
            if m.id in written and not (side == "customcrm" and m.exact_field in ctx.plan.entity.immutable):
                expect_value(ctx, check, crm_id, exact_id, m, written[m.id],
                             f"{m.crm_field if side == 'customcrm' else m.exact_field} was set to "
                             f"{written[m.id]!r} in {side}")

    return run


FLOW_CHECKS.check("edit-customcrm", "An edit in Customcrm reaches Exact")(_edit("customcrm"))
FLOW_CHECKS.check("edit-exact", "An edit in Exact reaches Customcrm")(_edit("exact"))
MACHINES = Registry()


@MACHINES.machine("stays-in-sync", "Random creates, edits, clears, deletes and line changes on both sides, with "
                  "sync passes between them: every pass leaves every pair agreeing, nothing duplicated, nothing "
                  "echoed")
def _stays_in_sync(ctx: FlowContext) -> type[RuleBasedStateMachine]:
    return stays_in_sync_machine(ctx, faults=False)


@MACHINES.machine("stays-in-sync-faults", "The same, with 429s, 5xx, latency, lost responses and the engine killed "
                  "mid-pass: two clean passes reach the same end state", alone=True, own_batch=True,
                  batch_per_flow=True,
                  applies=lambda ctx: "safe mode: no faults are injected into a sandbox, and its engine is not "
                  "killed" if ctx.safe else None)
def _stays_in_sync_faults(ctx: FlowContext) -> type[RuleBasedStateMachine]:
    return stays_in_sync_machine(ctx, faults=True)


CHECKS: tuple[Check, ...] = (*FLOW_CHECKS, *RULES, *MACHINES)


def checks_for(flow: Flow) -> list[Check]:
    """The flow-level checks, then one check per property row of the flow's table."""
    if flow.source_type.lower() == "user":
        return user_checks(flow)
    return [*CHECKS, *property_checks(flow, property_check, together=True)]
