"""The checklist passes against the reference engine and bites: each planted bug fails its named check."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.planted import PLANTED_BUGS, PlantedBug
from conformance.runner import RunResult, run_checklist
from sync.dataflow import load_dataflow

FLOW = "customer-accounts"


def statuses(result: RunResult) -> dict[str, str]:
    return {c.id: c.status for c in result.flows[0].checks}


def test_reference_engine_passes_every_check_of_the_flow() -> None:
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=1)
    assert result.ok, [(c.id, c.detail) for c in result.flows[0].checks if c.status != "passed"]
    checks = statuses(result)
    assert {"create", "link", "edit-customcrm", "edit-exact", "conflict", "clear", "link-fills-empty", "no-echo",
            "delete-not-propagated", "stays-in-sync", "stays-in-sync-faults"} <= set(checks)
    rows = load_dataflow().flow(FLOW).properties
    assert {f"property:{r.id}" for r in rows} <= set(checks)
    assert checks["references"] == checks["lines"] == "skipped"  # this flow has neither


def test_the_state_machines_pass_on_a_flow_with_lines_and_references() -> None:
    """Smoke here; the main job (`talkcheck run`, ci) runs them at ci on every flow."""
    result = run_checklist(load_dataflow(), flows=["order-salesorders"], profile="smoke", seed=3,
                           checks=["stays-in-sync", "stays-in-sync-faults"])
    assert result.ok, [(c.id, c.detail) for c in result.flows[0].checks if c.status != "passed"]


@pytest.mark.parametrize("bug", PLANTED_BUGS, ids=[b.name for b in PLANTED_BUGS])
def test_each_planted_bug_fails_its_named_check(bug: PlantedBug) -> None:
    """The named check runs against the variant (smoke) and fails. A state-machine check gets the ci budget
    of examples, as a crash has to land mid-pass to matter. Shrinking is off here: it is what a reader of
    the report wants, not what this test is about."""
    doc = load_dataflow()
    result = run_checklist(doc, flows=[bug.flow], profile="smoke", seed=1, engine_class=bug.engine,
                          checks=[bug.check], shrink=False, target=bug.target)
    checks = statuses(result)
    assert checks, "the run did not complete"
    assert all(status in ("passed", "failed", "skipped") for status in checks.values())
    if bug.check.startswith("stays-in-sync") and checks[bug.check] == "passed":
        result = run_checklist(doc, flows=[bug.flow], profile="ci", seed=1, engine_class=bug.engine,
                               checks=[bug.check], shrink=False)
        checks = statuses(result)
    assert checks[bug.check] == "failed", f"the {bug.name} bug went unnoticed by {bug.check}"
    failing = next(c for c in result.flows[0].checks if c.id == bug.check)
    assert bug.flow in failing.detail and bug.check.split(":")[0] in failing.detail
    assert "Draw 1" in failing.evidence or "state = " in failing.evidence, failing.evidence  # the example itself


def test_a_defective_engine_leaves_every_check_of_its_flow_with_a_result() -> None:
    """The whole flow against a variant: the bug fails its check, and every other row still gets a status."""
    bug = next(b for b in PLANTED_BUGS if b.name == "echoes-own-writes")
    result = run_checklist(load_dataflow(), flows=[bug.flow], profile="smoke", seed=1, engine_class=bug.engine,
                           shrink=False)
    checks = statuses(result)
    assert len(checks) == len(result.flows[0].checks) > 20
    assert all(status in ("passed", "failed", "skipped") for status in checks.values())
    assert checks[bug.check] == "failed"


def test_flows_that_cannot_be_satisfied_are_skipped_with_a_reason() -> None:
    from sync.dataflow import parse_dataflow
    from tests.sync.test_dataflow import seed_shaped

    result = run_checklist(parse_dataflow(seed_shaped()), flows=["order-salesorders"], profile="smoke")
    assert result.ok and result.count("passed") == 0
    assert all(c.status == "skipped" and "not satisfiable" in c.detail for c in result.flows[0].checks)


@pytest.mark.slow
def test_checklist_passes_against_the_mocks_under_uvicorn() -> None:
    """Over real HTTP (both mocks under uvicorn on loopback ports): a check of each kind (the whole flow runs
    in process elsewhere)."""
    result = run_checklist(load_dataflow(), flows=[FLOW], profile="smoke", seed=2, target="server",
                           checks=["create", "link", "edit-exact", "conflict", "no-echo", "stays-in-sync",
                                   "property:Name"])
    assert len(result.flows[0].checks) == 7
    assert result.ok, [(c.id, c.detail) for c in result.flows[0].checks if c.status != "passed"]


def test_the_same_seed_draws_the_same_data_whatever_ran_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay means replay: what a check enters depends on the seed alone, not on what ran earlier in the
    process (no process-wide counters or object ids in the data), so a failure replays by its seed."""
    from conformance.systems import CustomcrmActor

    entered: list[dict[str, object]] = []
    create = CustomcrmActor.create

    def recording(self: CustomcrmActor, path: str, values: dict[str, object]) -> dict[str, object]:
        entered.append({"path": path, **values})
        return create(self, path, values)

    monkeypatch.setattr(CustomcrmActor, "create", recording)
    doc = load_dataflow()

    def drawn() -> str:
        entered.clear()
        run_checklist(doc, flows=["contact-contacts"], profile="smoke", seed=7, checks=["create", "link"])
        # Records' ids are the mocks' (random), not drawn; checks run side by side, so the order in which
        # their records arrive is the threads', not the data's.
        uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        return "\n".join(sorted(re.sub(uuid, "<id>", json.dumps(e, sort_keys=True)) for e in entered))

    first = drawn()
    run_checklist(doc, flows=["product-items", "customer-accounts"], profile="smoke", seed=3, checks=["create"])
    assert '"path": "contacts"' in first and drawn() == first


def test_the_same_seed_draws_the_same_data_whatever_code_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """Hypothesis mixes the literals of the code it finds loaded from outside site-packages into what it
    draws: the data would change with every module imported before a draw (a `--doc` of another flow, a
    plugin, an edit of the report's wording) and between an editable and a wheel install. The checklist's
    data depends on the seed alone."""
    from conformance.systems import CustomcrmActor

    entered: list[str] = []
    create = CustomcrmActor.create

    def recording(self: CustomcrmActor, path: str, values: dict[str, object]) -> dict[str, object]:
        entered.append(json.dumps({"path": path, **values}, sort_keys=True))
        return create(self, path, values)

    monkeypatch.setattr(CustomcrmActor, "create", recording)
    doc = load_dataflow()

    def drawn() -> str:
        entered.clear()
        run_checklist(doc, flows=["customer-accounts"], profile="smoke", seed=11, checks=["create", "link"],
                      shrink=False)
        uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        return "\n".join(sorted(re.sub(uuid, "<id>", e) for e in entered))

    first = drawn()
    # A module of the user's own, loaded after the first run, full of literals a draw could pick up.
    literals = ", ".join([*(str(n) for n in range(100, 900)), *(repr(f"lit{n}") for n in range(100)),
                          *(f"{n}.25" for n in range(100))])  # under the 1,024 Hypothesis reads of a module
    (tmp_path / "talkcheck_user_literals.py").write_text(f"VALUES = [{literals}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("talkcheck_user_literals")
    try:
        assert drawn() == first
    finally:
        sys.modules.pop("talkcheck_user_literals", None)


@given(start=st.integers(0, 1000), size=st.integers(1, 12), nth=st.integers(0, 5))
def test_the_checks_of_a_flow_give_every_property_every_class_of_value(start: int, size: int, nth: int) -> None:
    """Certain, not probable: any run of checks in a row as long as the cycle (a flow's checks have
    consecutive slots) gives a property each of its classes at the same draw, and some turns stay random."""
    from conformance.strategies import catalogue_turn, cycle

    turns = [catalogue_turn(slot, nth, size) for slot in range(start, start + cycle(size))]
    assert {t for t in turns if t is not None} == set(range(size))
    assert turns.count(None) == cycle(size) - size >= 1


def test_every_property_of_the_project_document_meets_every_class_in_a_run() -> None:
    """The flows have enough checks for the rotation to reach every class of every property's catalogue."""
    from conformance.checks import checks_for
    from conformance.planner import plan_checks
    from conformance.strategies import catalogue, cycle

    doc = load_dataflow()
    for flow in doc.flows:
        plan = plan_checks(flow, doc)
        assert not isinstance(plan, str)
        for mapping in plan.mappings:
            assert len(checks_for(flow)) >= cycle(len(catalogue(flow, mapping.row, mapping.kind))), mapping.id


def test_a_failure_s_evidence_shows_code_points_the_example_and_the_exchanges() -> None:
    """A Unicode-normalisation defect prints two values that look the same: the failure shows their code
    points; the evidence holds the minimal example and the checklist's HTTP exchanges of that example."""
    bug = next(b for b in PLANTED_BUGS if b.name == "normalises-unicode")
    result = run_checklist(load_dataflow(), flows=[bug.flow], profile="smoke", seed=1, engine_class=bug.engine,
                           checks=[bug.check], shrink=False)
    failing = result.flows[0].checks[0]
    assert failing.status == "failed"
    assert "\\u0308" in failing.detail or "\\xeb" in failing.detail, failing.detail  # code points, not look-alikes
    assert "Draw 1" in failing.evidence and "The checklist's last HTTP exchanges" in failing.evidence
    assert "Bearer" not in failing.evidence and "client_secret" not in failing.evidence


@pytest.mark.parametrize("name", ["rounds-numbers", "lower-cases-e-mails", "wrong-time-zone"])
def test_stays_in_sync_judges_against_what_the_user_entered(name: str) -> None:
    """These engines change a value on the way to Exact and then copy Exact's value back, so both systems
    agree on a value no user entered: agreement alone passed them; the state machine's oracle of intent
    fails them and names the value entered."""
    bug = next(b for b in PLANTED_BUGS if b.name == name)
    result = run_checklist(load_dataflow(), flows=[bug.flow], profile="smoke", seed=1, engine_class=bug.engine,
                           checks=["stays-in-sync"], shrink=False)
    row = result.flows[0].checks[0]
    assert row.status == "failed" and "which no user entered" in row.detail, row.detail


def test_an_owner_matched_later_gives_the_orders_it_owns_their_salesperson() -> None:
    """The users flow's link: once an Exact user with an unmatched owner's e-mail appears, the next pass fills
    the Salesperson of the orders that owner already had (found by the mutation benchmark: an engine that
    only fills it when an order is edited passed every check)."""
    from conformance.planted import _at_the_boundary

    class _FindsNoOwnedOrders(httpx.BaseTransport):
        """Customcrm answers a search by owner with nothing: the engine never learns what a user owns."""

        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and "OwnerId" in request.url.params:
                return httpx.Response(200, json={"items": [], "next_cursor": None, "has_more": False},
                                      request=request)
            return self.inner.handle_request(request)

    FillsOnlyOnEdit = _at_the_boundary("FillsOnlyOnEdit", "Fills an order's Salesperson only when it is edited.",
                                       "crm", _FindsNoOwnedOrders)
    doc = load_dataflow()
    assert statuses(run_checklist(doc, flows=["user-salesorders"], profile="smoke", checks=["link"])) == {
        "link": "passed"}
    result = run_checklist(doc, flows=["user-salesorders"], profile="smoke", checks=["link"], shrink=False,
                           engine_class=FillsOnlyOnEdit)
    row = result.flows[0].checks[0]
    assert row.status == "failed" and "appeared later" in row.detail, row.detail
