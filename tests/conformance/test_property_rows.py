"""The property rows of a flow run on one record per example; each row is judged on its own property."""

from __future__ import annotations

from conformance.planted import DroppedPropertyEngine
from conformance.runner import run_checklist
from sync.dataflow import load_dataflow

FLOW = "customer-accounts"


def property_ids() -> list[str]:
    return [f"property:{row.id}" for row in load_dataflow().flow(FLOW).properties]


def test_the_rows_together_pass_against_the_reference_engine_and_cost_one_record_per_example() -> None:
    rows = property_ids()
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=3, checks=rows)
    assert [c.status for c in result.flows[0].checks] == ["passed"] * len(rows)
    # Two examples, one record each (the rows alone would have made one per row and example).
    assert result.checklist_calls["customcrm"] < 8 * len(rows)


def test_a_defect_in_one_property_fails_only_its_row_with_the_rows_own_evidence() -> None:
    """Together, every row shares the record; the dropped property fails only its own row, which is then run
    alone for its minimal example."""
    rows = property_ids()
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=1, checks=rows,
                           engine_class=DroppedPropertyEngine)
    statuses = {c.id: c.status for c in result.flows[0].checks}
    assert statuses.pop("property:Phone") == "failed"
    assert set(statuses.values()) == {"passed"}
    failing = next(c for c in result.flows[0].checks if c.id == "property:Phone")
    assert "property:Phone" in failing.detail and "Draw 1" in failing.evidence
