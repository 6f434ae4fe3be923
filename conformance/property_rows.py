"""The property rows of a flow: one record per example for all of them, each row judged on its own property.

A property row promises that one property is kept equal: entered in Customcrm, it reaches Exact; edited in
either system, the other follows. Checked row by row, every row of every example creates its own pair of
records, edits each side and waits for two passes: against a sandbox that is one record to delete and one
Exact write per row and example, most of a run's calls, for what one record can show for every row at once.

So the rows of a flow run together (`run_property_rows`). Each example draws one record in which every
row's property holds the value that holds every class of what users type that engines get wrong, creates
it, then edits every property in Exact in one write and in Customcrm in one write, a pass after each. Each
row is judged on its own property only: a row fails for its own value, never for another row's.

A row that fails together is then run again on its own (the row-by-row check, `property_check`), with
shrinking where the target allows it: that run gives the minimal example and the evidence, and it settles
whether the row's own property is at fault. A defect that breaks the whole record (the create refused
because of one value) fails every row together; alone, only the row whose value is at fault fails again,
and the others pass. A row that fails together but passes alone is reported failed with what was seen
together, saying so: some defects show only when several properties change at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance.agreement import assert_entered_kept
from conformance.context import CheckFailure, FlowContext, NotApplicable, skip_the_simplest
from conformance.planner import RowCheck
from conformance.registry import Status
from conformance.rule_checks import apply_edits, changed_value, current_value, expect_value, set_value
from conformance.sandbox import BudgetExhausted
from sync.dataflow import PropertyRow

__all__ = ["RowOutcome", "property_check", "property_scenario", "run_property_rows"]

# (status, detail, evidence) of one row, as the runner's CheckResult takes them.
RowOutcome = tuple[Status, str, str]


def property_check(row: PropertyRow) -> Callable[[FlowContext, st.DataObject], None]:
    """One property row on its own: its own pair of records, its property entered, edited in Exact, then in
    Customcrm, a pass after each."""
    check = f"property:{row.id}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        ctx.prepare(data)
        mapping = ctx.mapping(row)
        record = ctx.draw_record(data)
        _enter(record, mapping, ctx.draw_value(data, mapping, allow_empty=False, every_class=True))
        crm_id, exact_id = ctx.create_pair(check, record, [row])
        ctx.assert_pair_agrees(check + " (create)", crm_id, exact_id, [row])
        for side in ("exact", "customcrm"):
            if side == "exact" and mapping.exact_field in ctx.plan.entity.immutable:
                continue
            if mapping.is_line:
                apply_edits(ctx, data, side, crm_id, exact_id, [mapping])
                ctx.sync()
            else:
                value = changed_value(ctx, data, mapping, current_value(ctx, "customcrm", crm_id, exact_id, mapping))
                expected, why = _expected(ctx, side, crm_id, exact_id, mapping, value)
                set_value(ctx, side, crm_id, exact_id, mapping, value)
                ctx.sync()
                expect_value(ctx, f"{check} (edited in {side})", crm_id, exact_id, mapping, expected, why)
            ctx.assert_pair_agrees(f"{check} (edited in {side})", crm_id, exact_id, [row])

    return run


def property_scenario(ctx: FlowContext, data: st.DataObject, rows: list[PropertyRow]) -> dict[str, str]:
    """One example for every row of `rows` on one pair of records; the first failure of each row that failed
    (row id -> message). A failure of the record as a whole (no pair, an error from a system) is every
    row's."""
    failures: dict[str, str] = {}
    pending = list(rows)

    def judge(row: PropertyRow, verdict: Callable[[], None]) -> None:
        if row.id in failures:
            return
        try:
            verdict()
        except CheckFailure as exc:
            failures[row.id] = str(exc)

    try:
        ctx.prepare(data)
        mappings = {row.id: ctx.mapping(row) for row in rows}
        record = ctx.draw_record(data)
        for row in rows:
            _enter(record, mappings[row.id], ctx.draw_value(data, mappings[row.id], allow_empty=False,
                                                            every_class=True))
        crm_id, exact_id = ctx.create_pair("properties", record, [])
        entered, now = ctx.last_created, ctx.crm.get(ctx.crm_path, crm_id) or {}
        for row in rows:
            judge(row, lambda row=row: assert_entered_kept(ctx, f"property:{row.id}", entered, now,  # type: ignore[misc]
                                                               mappings[row.id]))
            judge(row, lambda row=row: ctx.assert_pair_agrees(f"property:{row.id} (create)",  # type: ignore[misc]
                                                              crm_id, exact_id, [row]))
        for side in ("exact", "customcrm"):
            edited = [row for row in rows if not (side == "exact" and mappings[row.id].exact_field
                                                  in ctx.plan.entity.immutable)]
            if not edited:
                continue
            expectations = _edit_together(ctx, data, side, crm_id, exact_id, [mappings[r.id] for r in edited])
            ctx.sync()
            for row in edited:
                check = f"property:{row.id} (edited in {side})"
                expectation = expectations.get(row.id)
                if expectation is not None:
                    judge(row, lambda row=row, check=check, e=expectation: expect_value(  # type: ignore[misc]
                        ctx, check, crm_id, exact_id, mappings[row.id], e[0], e[1]))
                judge(row, lambda row=row, check=check: ctx.assert_pair_agrees(  # type: ignore[misc]
                    check, crm_id, exact_id, [row]))
        pending = []
    except (BudgetExhausted, NotApplicable):
        raise
    except CheckFailure as exc:  # the record as a whole: every row not yet failed shares it
        for row in pending:
            failures.setdefault(row.id, str(exc))
    except Exception as exc:  # noqa: BLE001 - a system's refusal or a crash, reported on the rows
        for row in pending:
            failures.setdefault(row.id, f"[{ctx.flow.id} / property:{row.id}] {type(exc).__name__}: {exc}")
    return failures


def run_property_rows(rows: list[PropertyRow], ctx: FlowContext, profile_examples: int, seed: int,
                      alone: Callable[[PropertyRow], RowOutcome]) -> list[RowOutcome]:
    """Every row of `rows` together (as many examples as a check of the profile), then each row that failed
    alone (`alone` runs the row-by-row check, shrinking where it may): one outcome per row, in order."""
    seen: dict[str, tuple[str, str]] = {}
    options = settings(max_examples=profile_examples, deadline=None, database=None, derandomize=False,
                       phases=[Phase.generate])

    def prop(data: st.DataObject) -> None:
        ctx.reset()
        skip_the_simplest(ctx, data)
        for row_id, message in property_scenario(ctx, data, rows).items():
            seen.setdefault(row_id, (message, ctx.exchange_note()))

    hypothesis_seed(seed)(options(given(data=st.data())(prop)))()
    outcomes: list[RowOutcome] = []
    for row in rows:
        if row.id not in seen:
            outcomes.append((Status.PASSED, "", ""))
            continue
        status, detail, evidence = alone(row)
        if status == Status.PASSED:
            message, exchanges = seen[row.id]
            status, detail = Status.FAILED, (f"{message} (seen with the flow's other properties in one record; the "
                                        "row alone did not fail again)")
            evidence = exchanges
        outcomes.append((status, detail, evidence))
    return outcomes


# ---------------------------------------------------------------------------------------------- helpers


def _enter(record: dict[str, Any], mapping: RowCheck, value: Any) -> None:
    """Put a row's value where a user enters it: the header, or the first line (a line's reference is the
    line's product, drawn with the line)."""
    if not mapping.is_line:
        record[mapping.crm_field] = value
    elif mapping.kind != "ref":
        record["Lines"][0][mapping.crm_field] = value


def _expected(ctx: FlowContext, side: str, crm_id: str, exact_id: str, mapping: RowCheck, value: Any
              ) -> tuple[Any, str]:
    """What both sides must hold after `value` is set on `side`, and why (Exact's value stands for a
    property Exact cannot change after create)."""
    row = mapping.row
    why = f"{row.source if side == 'customcrm' else row.target} was set to {value!r} in {side}"
    if mapping.exact_field in ctx.plan.entity.immutable:
        expected = current_value(ctx, "exact", crm_id, exact_id, mapping)
        return expected, why + f", which Exact cannot change after create, so Exact's {expected!r} stands on both sides"
    return value, why


def _edit_together(ctx: FlowContext, data: st.DataObject, side: str, crm_id: str, exact_id: str,
                   mappings: list[RowCheck]) -> dict[str, tuple[Any, str]]:
    """Every property of `mappings` changed on `side` as a user would there (one write for the header, one
    line edit when a line property is among them); what each header row must then hold (row id -> (value,
    why))."""
    written = apply_edits(ctx, data, side, crm_id, exact_id, mappings)
    return {m.row.id: _expected(ctx, side, crm_id, exact_id, m, written[m.id]) for m in mappings if m.id in written}
