"""The pieces that let checks share the systems: one pass per round, unique data, owned records."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.disruption import Disruption
from conformance.lockstep import Lockstep, run_side_by_side
from conformance.ownership import Owned, key_of
from conformance.strategies import PER_EXAMPLE, SLOTS, distinct_value, unique_number


@given(st.lists(st.integers(0, 6), min_size=1, max_size=12))
def test_a_round_costs_one_pass_however_many_checks_wait_for_it(syncs: list[int]) -> None:
    """Checks that ask for 0..6 syncs each share the passes: as many passes as the longest check asks for,
    and no check goes on before the pass it waited for has run."""
    passes: list[int] = []
    lockstep = Lockstep(lambda: passes.append(len(passes)))

    def job(count: int) -> list[int]:
        seen = []
        for _ in range(count):
            lockstep.sync()
            seen.append(len(passes))
        return seen

    results = run_side_by_side(lockstep, [lambda n=n: job(n) for n in syncs])
    assert len(passes) == max(syncs)
    for count, seen in zip(syncs, results, strict=True):
        assert seen == list(range(1, count + 1))


def test_a_failed_pass_fails_every_check_that_waited_for_it() -> None:
    def broken() -> None:
        raise RuntimeError("engine crashed")

    lockstep = Lockstep(broken)
    errors: list[str] = []
    lock = threading.Lock()

    def job() -> None:
        try:
            lockstep.sync()
        except RuntimeError as exc:
            with lock:
                errors.append(str(exc))

    run_side_by_side(lockstep, [job, job, job])
    assert errors == ["engine crashed"] * 3 and lockstep.passes == 1


@given(st.lists(st.one_of(st.none(), st.builds(Disruption, st.integers(0, 9), st.sampled_from([None, -1, 4]),
                                               st.integers(1, 2))), min_size=1, max_size=8))
def test_a_round_runs_the_disruption_of_the_lowest_rank_then_the_clean_passes_asked_for(
        asked: list[Disruption | None]) -> None:
    """Participants that ask for a disrupted pass at once get one, the lowest rank's, whatever order their
    threads arrive in; then as many clean passes as any of them asked for; plain participants share it."""
    log: list[object] = []
    lockstep = Lockstep(lambda: log.append("clean"), log.append)

    def job(rank: int, disruption: Disruption | None) -> None:
        lockstep.sync(disruption, rank=rank)

    run_side_by_side(lockstep, [lambda r=r, d=d: job(r, d) for r, d in reversed(list(enumerate(asked)))])
    wanted = [d for d in asked if d is not None]
    expected = ([wanted[0]] if wanted else []) + ["clean"] * max((d.clean for d in wanted), default=1)
    assert log == expected and lockstep.passes == len(expected)


@given(st.tuples(st.integers(0, SLOTS - 1), st.integers(0, 10_000), st.integers(1, PER_EXAMPLE - 1)),
       st.tuples(st.integers(0, SLOTS - 1), st.integers(0, 10_000), st.integers(1, PER_EXAMPLE - 1)))
def test_unique_numbers_are_unique_across_checks_and_examples(a: tuple[int, int, int], b: tuple[int, int, int]
                                                             ) -> None:
    assert (unique_number(*a) == unique_number(*b)) == (a == b)


def test_a_unique_number_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        unique_number(SLOTS, 0, 1)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40), st.integers(0, 10**9),
       st.integers(0, 10**9), st.sampled_from([None, 20, 30, 254]))
def test_distinct_numbers_give_distinct_merge_keys(a: str, b: str, n: int, m: int, limit: int | None) -> None:
    """Whatever two examples drew, their merge keys differ when their numbers do, and fit the field."""
    x, y = distinct_value(a, n, limit), distinct_value(b, m, limit)
    if n != m:  # as the engines compare keys: trimmed, in any case
        assert key_of(x) != key_of(y)
    if limit is not None:
        assert len(x) <= limit and len(y) <= limit


@given(st.emails().filter(lambda e: "~" not in e), st.integers(0, 10**9))
def test_a_unique_e_mail_keeps_its_domain(email: str, n: int) -> None:
    tagged = distinct_value(email, n, 254)
    assert tagged.startswith(f"t{n}.") and tagged.endswith(email.split("@")[-1]) or tagged == f"t{n}@example.com"


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["k1", "K1 ", "k2", "", None])),
       st.sampled_from(["k1", "k2", "k3"]))
def test_an_example_sees_the_records_with_its_keys_and_keeps_seeing_them(emails: dict[str, str | None], mine: str
                                                                        ) -> None:
    owned = Owned(("Email",), ("Email",))
    owned.note_exact({"Email": mine})
    records = {rid: {"ID": rid, "Email": value} for rid, value in emails.items()}
    view = owned.exact_view(records)
    assert set(view) == {rid for rid, value in emails.items() if key_of(value) == mine}
    cleared = {rid: {"ID": rid, "Email": None} for rid in records}  # the key edited away: still its record
    assert set(owned.exact_view(cleared)) == set(view)


def test_the_checks_of_a_flow_share_the_engine_passes_and_per_example_mode_stays() -> None:
    """Side by side, a flow's checks cost the passes of the longest of them, not the sum; the old way, one
    example at a time on reset systems, still runs and agrees."""
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    doc = load_dataflow()
    checks = ["create", "edit-customcrm", "edit-exact", "no-echo", "property:Code"]
    batched = run_checklist(doc, flows=["product-items"], profile="smoke", checks=checks)
    alone = run_checklist(doc, flows=["product-items"], profile="smoke", checks=checks, mode="per-example")
    assert [c.status for c in batched.flows[0].checks] == [c.status for c in alone.flows[0].checks] == \
        ["passed"] * 5
    assert batched.mode == "batched" and alone.mode == "per-example"
    passes = batched.phases["side by side"]["engine passes"]
    assert 0 < passes <= 12  # about the passes of one check's two examples, not of all ten
    assert "side by side" not in alone.phases


def test_an_engine_that_reads_only_the_first_page_fails_a_named_check() -> None:
    """Side by side, the division holds more users than one page of Exact's list (60): an engine that never
    follows `__next` leaves owners unmatched, and the owner checks say which order and which user."""
    from conformance.planted import FIRST_PAGE_ONLY
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    # Eight examples of five owner checks side by side match 80 users, the later ones past the first page;
    # no shrinking (which example fails depends on how the checks' steps interleave, so a replay may not).
    result = run_checklist(load_dataflow(), flows=["user-salesorders"], profile="ci", shrink=False,
                           checks=["create", "edit-customcrm", "edit-exact", "stays-in-sync",
                                   "property:Id->Salesperson"], engine_class=FIRST_PAGE_ONLY.engine)
    failed = {f"{f.id} / {c.id}": c.detail for f in result.flows for c in f.checks if c.status == "failed"}
    assert any("Salesperson" in detail and "is owned by" in detail for detail in failed.values()), failed


def test_the_mirror_reads_again_only_what_a_write_can_have_changed() -> None:
    """A Customcrm write does not make Exact worth reading again, nor an Exact write to one set another set;
    a line's write does change its header (its amounts), and an engine pass changes everything."""
    from conformance.systems import Systems

    systems = Systems.start()
    try:
        mirror = systems.start_mirror()
        exact, crm = systems.exact_actor(), systems.customcrm_actor()
        for path in ("sync/CRM/Accounts", "sync/CRM/Contacts", "sync/SalesOrder/SalesOrderHeaders"):
            exact.all(path)
        crm.all("customers")

        def reads() -> int:
            before = mirror.reads
            for path in ("sync/CRM/Accounts", "sync/CRM/Contacts", "sync/SalesOrder/SalesOrderHeaders"):
                exact.all(path)
            crm.all("customers")
            return mirror.reads - before

        assert reads() == 0
        crm.create("customers", {"Name": "Mirror", "Email": "mirror@example.com"})
        assert reads() == 1  # the change feed only
        account = exact.create("crm/Accounts", {"Name": "Mirror"})
        assert reads() == 1  # Accounts only
        exact.update("crm/Accounts", str(account["ID"]), {"Name": "Mirror 2"})
        assert reads() == 1
        assert exact._sets_changed_by("salesorder/SalesOrderLines") == (
            "sync/SalesOrder/SalesOrderHeaders", "sync/SalesOrder/SalesOrderLines")
        mirror.touch("exact", deleted=False, sets=exact._sets_changed_by("salesorder/SalesOrderLines"))
        assert reads() == 1  # the header's set (the lines' set is not read here)
        assert exact._sets_changed_by("salesorder/SalesOrders", {"Description": "x"}) == (
            "sync/SalesOrder/SalesOrderHeaders",)  # a header's update that names no lines changes no line
        assert exact._sets_changed_by("salesorder/SalesOrders", {"SalesOrderLines": []}) == (
            "sync/SalesOrder/SalesOrderHeaders", "sync/SalesOrder/SalesOrderLines")
        assert exact._sets_changed_by("salesorder/SalesOrders") == (
            "sync/SalesOrder/SalesOrderHeaders", "sync/SalesOrder/SalesOrderLines")  # a create or a delete
        mirror.touch()  # an engine pass
        assert reads() == 4
    finally:
        systems.close()


def test_a_row_one_check_deleted_is_gone_from_its_reads_after_another_check_read_the_set() -> None:
    """Check A deletes an Exact record; check B then reads the set (and so makes it fresh for everyone); A's
    next read must not hold the deleted record (it did: A then edited a line that was gone, a 404 the engine
    was blamed for)."""
    from concurrent.futures import ThreadPoolExecutor

    from conformance.systems import Systems

    systems = Systems.start()
    check_a, check_b = ThreadPoolExecutor(1), ThreadPoolExecutor(1)  # each check reads in a thread of its own
    try:
        systems.start_mirror()
        exact = systems.exact_actor()
        accounts = [str(exact.create("crm/Accounts", {"Name": f"Mirror {n}"})["ID"]).lower() for n in range(2)]

        def read() -> set[str]:
            return {str(r["ID"]).lower() for r in exact.all("sync/CRM/Accounts")}

        check_a.submit(read).result()
        check_b.submit(read).result()
        check_a.submit(exact.delete, "crm/Accounts", accounts[0]).result()
        check_b.submit(exact.update, "crm/Accounts", accounts[1], {"Name": "Mirror B"}).result()
        check_b.submit(read).result()  # B's own write makes B read the set again
        seen = check_a.submit(read).result()
        assert accounts[0] not in seen and accounts[1] in seen
    finally:
        check_a.shutdown()
        check_b.shutdown()
        systems.close()


def test_the_references_of_a_batch_are_created_once_for_all_its_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Customers and products that orders refer to are the batch's, not each example's: in a sandbox every
    record is a call to delete, and two of each per example were most of a run's clean-up."""
    import conformance.context
    import conformance.runner
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    made: list[set[str]] = []
    original = conformance.context.create_references

    def counted(*args: object, **kwargs: object) -> dict[str, dict[str, str]]:
        made.append(set(args[3]))  # type: ignore[call-overload]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(conformance.context, "create_references", counted)
    monkeypatch.setattr(conformance.runner, "create_references", counted)
    result = run_checklist(load_dataflow(), flows=["order-salesorders"], profile="smoke",
                           checks=["create", "references"])
    assert [c.status for c in result.flows[0].checks] == ["passed", "passed"]
    assert len(made) == 1 and {"Customer", "Product"} <= made[0]


def test_another_checks_write_does_not_make_a_reader_read_again() -> None:
    """Each check reads only its own records, and only its own writes (or a pass) change them: a write from
    another check's thread leaves this reader's mirror fresh, and costs a read only to the writer."""
    import threading

    from conformance.systems import Systems

    systems = Systems.start()
    try:
        mirror = systems.start_mirror()
        exact = systems.exact_actor()
        exact.all("sync/CRM/Accounts")

        def reads() -> int:
            before = mirror.reads
            exact.all("sync/CRM/Accounts")
            return mirror.reads - before

        def other_check() -> None:
            exact.create("crm/Accounts", {"Name": "Another check's"})
            assert reads() == 1  # the writer reads its write

        writer = threading.Thread(target=other_check)
        writer.start()
        writer.join()
        assert reads() == 0
        exact.create("crm/Accounts", {"Name": "Mine"})
        assert reads() == 1
        mirror.touch()  # an engine pass: every reader reads again
        assert reads() == 1
    finally:
        systems.close()


def test_a_lane_after_the_first_passes_over_the_simplest_example() -> None:
    """Hypothesis tries the simplest example first; the lanes of a check after the first would all repeat
    it, so they pass it over: their examples are their own."""
    from types import SimpleNamespace

    from hypothesis import given, seed, settings
    from hypothesis import strategies as st

    from conformance.context import skip_the_simplest

    def examples(lane: int) -> list[tuple[int, ...]]:
        seen: list[tuple[int, ...]] = []

        @seed(lane)
        @settings(max_examples=4, database=None)
        @given(st.data())
        def run(data: st.DataObject) -> None:
            skip_the_simplest(SimpleNamespace(lane=lane), data)  # type: ignore[arg-type]
            seen.append(tuple(data.draw(st.integers(0, 10**6)) for _ in range(3)))

        run()
        return seen

    assert examples(0)[0] == (0, 0, 0)
    assert len(examples(1)) == 4 and (0, 0, 0) not in examples(1)


def test_a_row_of_several_lanes_reports_the_first_failure() -> None:
    from conformance.runner import CheckResult, _merged

    passed, failed = CheckResult("c", "t", "passed", duration_s=1), CheckResult("c", "t", "failed", "boom",
                                                                              duration_s=3)
    skipped = CheckResult("c", "t", "skipped", "budget", stopped=True)
    assert _merged([passed, failed, passed]).detail == "boom"
    assert _merged([passed, failed]).duration_s == 3
    assert _merged([passed, skipped]).status == "skipped"
    assert _merged([passed, passed]).status == "passed"


def test_at_ci_a_check_runs_its_examples_in_lanes_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight examples of a state machine one after another take dozens of passes; in four lanes side by side
    they take about a lane's."""
    import conformance.runner
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    def passes() -> int:
        result = run_checklist(load_dataflow(), flows=["product-items"], profile="ci",
                               checks=["create", "stays-in-sync"])
        assert [c.status for c in result.flows[0].checks] == ["passed", "passed"]
        return int(result.phases["side by side"]["engine passes"])

    in_lanes = passes()
    monkeypatch.setitem(conformance.runner.LANES, "ci", 1)
    assert in_lanes < 0.7 * passes()


def test_a_pass_past_a_page_of_the_change_feed_carries_every_record_and_a_first_page_reader_fails() -> None:
    """At ci one flow creates 1,001 records between two passes, past the largest page Customcrm's change feed
    gives: the reference engine carries all of them; an engine that reads only a feed's first page (at the
    HTTP boundary, whatever its code) fails the named row."""
    from conformance.planted import FIRST_FEED_PAGE_ONLY
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    doc = load_dataflow()
    passed = run_checklist(doc, flows=[FIRST_FEED_PAGE_ONLY.flow], profile="ci", checks=["paging"])
    assert [c.status for c in passed.flows[0].checks] == ["passed"]
    failed = run_checklist(doc, flows=[FIRST_FEED_PAGE_ONLY.flow], profile="ci", checks=["paging"], shrink=False,
                           engine_class=FIRST_FEED_PAGE_ONLY.engine)
    row = failed.flows[0].checks[0]
    assert row.status == "failed" and "1001 Customcrm Customer records" in row.detail, row.detail


def test_two_records_of_one_example_never_share_a_merge_key_even_drawn_alike() -> None:
    """Outside a batch too (the checks that run alone): Hypothesis draws the same chamber of commerce number
    for two customers of one state machine, and an engine that links by it rightly makes them one record."""
    from conformance.context import FlowContext
    from conformance.drawing import _keyed
    from conformance.engines import make_driver
    from conformance.systems import Systems
    from sync.dataflow import load_dataflow

    doc = load_dataflow()
    systems = Systems.start()
    try:
        ctx = FlowContext.for_flow(doc.flow("customer-accounts"), doc, systems, make_driver("builtin", doc, systems))
        assert not isinstance(ctx, str) and ctx.batch is None
        key = next(m for m in ctx.header if m.exact_field in ctx.merge_fields)
        assert _keyed(ctx, key, "68419878") != _keyed(ctx, key, "68419878")
    finally:
        systems.close()


class _ClockedSystems:
    """What `Clocks` uses of the systems: the admin plane's clock calls are recorded, not sent."""

    safe = False

    def __init__(self) -> None:
        self.clock_lock = threading.RLock()
        self.clock_holds = 0
        self.calls: list[tuple[str, str]] = []

    def admin(self, system: str, action: str, payload: dict[str, object]) -> None:
        self.calls.append((system, next(iter(payload))))


def test_checks_side_by_side_share_the_stopped_clocks() -> None:
    """The first check to stop the clocks stops them, the last to let go lets them go, and no check moves them
    while another writes at one staged instant."""
    from conformance.clocks import Clocks

    systems = _ClockedSystems()
    first, second = Clocks(systems), Clocks(systems)  # type: ignore[arg-type]
    first.freeze()
    second.freeze()
    assert [kind for _system, kind in systems.calls] == ["set", "set"]
    first.release()
    assert systems.calls[-1][1] == "set"  # still held by the second check
    moved = threading.Event()
    with second.same_instant():
        mover = threading.Thread(target=lambda: (first.advance(5), moved.set()))
        mover.start()
        assert not moved.wait(0.2), "another check moved the clocks between two writes at one instant"
    mover.join()
    assert moved.is_set()
    second.release()
    assert [kind for _system, kind in systems.calls[-2:]] == ["reset", "reset"]


def test_a_lockstep_that_cannot_disrupt_a_pass_refuses_to_be_asked_for_one() -> None:
    """Never a plain pass in place of a disrupted one: a check would pass without the faults it asked for."""
    lockstep = Lockstep(lambda: None)
    lockstep.enter()
    with pytest.raises(ValueError, match="disrupted pass"):
        lockstep.sync(Disruption(fault_seed=1, kill=None, clean=1))


def test_conflict_of_every_flow_shares_one_batch_and_the_faults_check_keeps_one_per_flow() -> None:
    """`conflict` of every flow runs in one batch of its own (they share the stopped clocks); the faults check
    runs one batch per flow, since its kills count from a pass's start and would land in the first flow."""
    from conformance.checks import checks_for
    from conformance.context import FlowContext
    from conformance.engines import make_driver
    from conformance.runner import FlowResult, _own_batches
    from conformance.systems import Systems
    from sync.dataflow import load_dataflow

    doc = load_dataflow()
    systems = Systems.start()
    try:
        driver = make_driver("builtin", doc, systems)
        rows = []
        for flow_id in ("customer-accounts", "contact-contacts", "product-items"):
            ctx = FlowContext.for_flow(doc.flow(flow_id), doc, systems, driver)
            result = FlowResult(flow_id, flow_id)
            rows += [(result, check, ctx) for check in checks_for(doc.flow(flow_id))]
        batches = _own_batches(rows, list(range(len(rows))))
        named = sorted(sorted((rows[i][1].id, rows[i][0].id) for i in batch) for batch in batches)
        assert named == sorted([
            [("conflict", "contact-contacts"), ("conflict", "customer-accounts"), ("conflict", "product-items")],
            [("stays-in-sync-faults", "customer-accounts")], [("stays-in-sync-faults", "contact-contacts")],
            [("stays-in-sync-faults", "product-items")]])
    finally:
        systems.close()


def test_the_workers_share_the_tail_and_every_row_comes_back_once_in_the_flows_order() -> None:
    """With two workers, the checks that run apart (own batches, one at a time) of every flow go to whichever
    worker is free: each row is reported once, under its flow, in the order the flow declares its checks.
    What starts a thread in the run's process (the terminal's live display) is started once the workers are:
    a worker is forked only from a process of one thread, and a spawned one imports everything again."""
    import multiprocessing

    from conformance.checks import checks_for
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    doc = load_dataflow()
    flows = ["customer-accounts", "contact-contacts", "product-items"]
    chosen = ["stays-in-sync-faults", "create", "conflict", "concurrent-edit"]
    workers_at_start: list[int] = []
    result = run_checklist(doc, flows=flows, checks=chosen, profile="smoke", seed=3, jobs=2,
                           on_started=lambda: workers_at_start.append(len(multiprocessing.active_children())))
    assert len(workers_at_start) == 1 and workers_at_start[0] >= 1, workers_at_start
    assert [f.id for f in result.flows] == [f.id for f in doc.flows if f.id in flows]  # the document's order
    for flow in result.flows:
        declared = [c.id for c in checks_for(doc.flow(flow.id)) if c.id in chosen]
        assert [c.id for c in flow.checks] == declared, flow.id
    statuses = {(f.id, c.id): c.status for f in result.flows for c in f.checks}
    assert all(statuses[(f, c)] == "passed" for f in flows for c in ("create", "conflict", "stays-in-sync-faults")), \
        statuses
    assert {"side by side", "own batches"} <= set(result.phases)
