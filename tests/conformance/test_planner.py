"""The checklist's own reading of the document (conformance/planner.py), independent of the engine's."""

from __future__ import annotations

import pytest

import sync.engine
from conformance.planner import CheckPlan, plan_checks, value_kind
from sync.dataflow import load_dataflow, parse_dataflow
from tests.sync.test_dataflow import seed_shaped


def test_every_row_of_the_document_is_checked() -> None:
    doc = load_dataflow()
    for flow in doc.flows:
        plan = plan_checks(flow, doc)
        assert isinstance(plan, CheckPlan), plan
        if plan.kind == "users":
            continue
        planned = {m.row for m in plan.mappings}
        assert set(flow.properties) <= planned, flow.id
        for m in plan.mappings:
            if m.row in flow.properties and m.kind != "ref":
                assert m.kind == value_kind(m.row.data_type, plan.resource.kind(m.row.source))


def test_owners_of_orders_are_checked_through_the_user_flow() -> None:
    doc = load_dataflow()
    plan = plan_checks(doc.flow("order-salesorders"), doc)
    assert isinstance(plan, CheckPlan)
    owner = [m for m in plan.mappings if m.crm_field == "OwnerId"]
    assert owner and owner[0].ref_flow == "user-salesorders" and owner[0].soft


@pytest.mark.parametrize(("data_type", "crm_kind", "kind"), [
    ("Edm.DateTime", "date", "date"), ("Edm.DateTime", None, "datetime"), ("Edm.Double", "double", "double"),
    ("Edm.Boolean", None, "bool"), (None, None, "string"), ("Edm.Int32", None, "int")])
def test_value_kinds(data_type: str | None, crm_kind: str | None, kind: str) -> None:
    assert value_kind(data_type, crm_kind) == kind


def test_a_row_naming_an_unknown_property_is_refused_with_its_line() -> None:
    doc = parse_dataflow(seed_shaped(rows={"customer-accounts": [("Name", "Name", "Edm.String"),
                                                                 ("Nickname", "Name", "Edm.String")]}))
    reason = plan_checks(doc.flow("customer-accounts"), doc)
    assert isinstance(reason, str) and "no property 'Nickname'" in reason and "table line" in reason


def test_the_checklist_plans_without_the_engines_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow the reference engine could not plan is still planned (and so checked) by the checklist."""
    def broken(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("the checklist asked the engine's planner")

    monkeypatch.setattr(sync.engine, "plan_flow", broken)
    from conformance.context import engine_flows

    doc = load_dataflow()
    for flow in doc.flows:
        assert isinstance(plan_checks(flow, doc), CheckPlan)
    assert engine_flows(doc.flow("order-salesorders"), doc)[:1] == ["order-salesorders"]
