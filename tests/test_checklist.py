"""The checklist passes against the reference engine and bites: each planted bug fails its named check."""

from __future__ import annotations

import pytest

from conformance.planted import PLANTED_BUGS
from conformance.runner import run_checklist
from sync.dataflow import load_dataflow

FLOW = "customer-accounts"


def statuses(result: object) -> dict[str, str]:
    flow = result.flows[0]  # type: ignore[attr-defined]
    return {c.id: c.status for c in flow.checks}


def test_reference_engine_passes_every_check_of_the_flow() -> None:
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=1)
    assert result.ok, [(c.id, c.detail) for c in result.flows[0].checks if c.status != "passed"]
    checks = statuses(result)
    assert {"create", "link", "edit-customcrm", "edit-exact", "stays-in-sync"} <= set(checks)
    rows = load_dataflow().flow(FLOW).properties
    assert {f"property:{r.id}" for r in rows} <= set(checks)
    assert set(checks.values()) == {"passed"}


@pytest.mark.parametrize("bug", sorted(PLANTED_BUGS))
def test_each_planted_bug_fails_its_named_check(bug: str) -> None:
    engine_class, check = PLANTED_BUGS[bug]
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=1, engine_class=engine_class)
    checks = statuses(result)
    assert checks[check] == "failed", f"the {bug} bug went unnoticed by {check}"
    failing = next(c for c in result.flows[0].checks if c.id == check)
    assert FLOW in failing.detail and check in failing.detail
    assert len(checks) == len(result.flows[0].checks) and all(s in ("passed", "failed") for s in checks.values())


def test_flows_that_cannot_be_satisfied_are_skipped_with_a_reason() -> None:
    from sync.dataflow import parse_dataflow
    from tests.test_dataflow import seed_shaped

    result = run_checklist(parse_dataflow(seed_shaped()), flows=["order-salesorders"], profile="smoke")
    assert result.ok and result.count("passed") == 0
    assert all(c.status == "skipped" and "not satisfiable" in c.detail for c in result.flows[0].checks)


@pytest.mark.slow
def test_checklist_passes_against_the_mocks_under_uvicorn() -> None:
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=2, target="server")
    assert result.ok, [(c.id, c.detail) for c in result.flows[0].checks if c.status != "passed"]
