"""The reference engine against both mocks: Sesam Talk's rules for customer-accounts, pass by pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.engines import BuiltinEngine
from conformance.systems import CustomcrmActor, ExactActor, Systems
from sync.dataflow import load_dataflow
from sync.engine import SyncReport

FLOW = "customer-accounts"


class World:
    """Both mocks in-process, a user on each side, and the engine between them."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self.crm: CustomcrmActor = systems.customcrm_actor()
        self.exact: ExactActor = systems.exact_actor()
        self.engine = BuiltinEngine(load_dataflow(), systems, flows=[FLOW])
        self.engine.reset()

    def sync(self) -> SyncReport:
        return self.engine.sync()

    def accounts(self) -> list[dict[str, Any]]:
        return self.exact.all("sync/CRM/Accounts")

    def set_clocks(self, crm: datetime, exact: datetime) -> None:
        self.systems.admin("customcrm", "clock", {"set": crm.isoformat()})
        self.systems.admin("exact", "clock", {"set": exact.isoformat()})


@pytest.fixture
def world() -> Iterator[World]:
    systems = Systems.start("inproc")
    try:
        yield World(systems)
    finally:
        systems.close()


def test_create_then_second_pass_writes_nothing(world: World) -> None:
    customer = world.crm.create("customers", {"Name": "Visser & Zn", "Email": "info@visser.nl", "City": "Zwolle",
                                              "CreditLimit": 2500, "Blocked": True})
    first = world.sync().flow(FLOW)
    assert first.created == 1
    [account] = world.accounts()
    assert (account["Name"], account["Email"], account["City"], account["CreditLineSales"], account["Blocked"]) == \
        ("Visser & Zn", "info@visser.nl", "Zwolle", 2500.0, True)
    second = world.sync()
    assert second.writes == 0 and second.flow(FLOW).created == 0
    assert second.calls["customcrm"] == {"GET": 1} and second.calls["exact"] == {"GET": 2}
    assert world.crm.get("customers", customer["Id"])["Version"] == 1  # type: ignore[index]


def test_links_on_organisation_number_before_email(world: World) -> None:
    by_kvk = world.exact.create("crm/Accounts", {"Name": "Old name", "ChamberOfCommerce": "12345678"})
    world.exact.create("crm/Accounts", {"Name": "Same mail", "Email": "shared@x.nl"})
    world.crm.create("customers", {"Name": "New name", "OrganisationNumber": "12345678", "Email": "shared@x.nl",
                                   "Phone": "+31 10 123 4567"})
    report = world.sync().flow(FLOW)
    assert (report.linked, report.created) == (1, 0)
    linked = world.exact.get("crm/Accounts", by_kvk["ID"])
    assert linked is not None and linked["Phone"] == "+31 10 123 4567"  # the empty side takes the filled value


def test_ambiguous_match_creates_nothing_and_says_so(world: World) -> None:
    for _ in range(2):
        world.exact.create("crm/Accounts", {"Name": "Twin", "Email": "twin@x.nl"})
    customer = world.crm.create("customers", {"Name": "Twin", "Email": "twin@x.nl"})
    report = world.sync().flow(FLOW)
    assert report.created == 0 and report.linked == 0
    assert [(i.record, i.kind) for i in report.issues] == [(customer["Id"], "ambiguous")]
    assert len(world.accounts()) == 2


def test_edits_flow_both_ways_property_by_property(world: World) -> None:
    customer = world.crm.create("customers", {"Name": "Bos", "City": "Ede", "Phone": "1"})
    world.sync()
    [account] = world.accounts()
    world.crm.update("customers", customer["Id"], {"City": "Epe"})
    world.exact.update("crm/Accounts", account["ID"], {"Phone": "2"})
    report = world.sync().flow(FLOW)
    assert (report.updated_customcrm, report.updated_exact) == (1, 1)
    crm = world.crm.get("customers", customer["Id"])
    exact = world.exact.get("crm/Accounts", account["ID"])
    assert crm is not None and exact is not None
    assert (crm["City"], crm["Phone"]) == (exact["City"], exact["Phone"]) == ("Epe", "2")
    assert world.sync().writes == 0


@pytest.mark.parametrize(("crm_later", "priority", "winner"), [
    (True, "customcrm", "crm"), (False, "customcrm", "exact"), (None, "customcrm", "crm"), (None, "exact", "exact"),
])
def test_conflict_latest_edit_wins_ties_go_to_priority(world: World, crm_later: bool | None, priority: str,
                                                       winner: str) -> None:
    world.engine.engine_options["priority"] = priority
    world.engine.reset()
    customer = world.crm.create("customers", {"Name": "Start"})
    world.sync()
    [account] = world.accounts()
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    crm_time = base.replace(minute=5 if crm_later else 1) if crm_later is not None else base
    exact_time = base.replace(minute=1 if crm_later else 5) if crm_later is not None else base
    world.set_clocks(crm_time, exact_time)
    world.crm.update("customers", customer["Id"], {"Name": "From CRM"})
    world.exact.update("crm/Accounts", account["ID"], {"Name": "From Exact"})
    world.sync()
    expected = "From CRM" if winner == "crm" else "From Exact"
    assert world.crm.get("customers", customer["Id"])["Name"] == expected  # type: ignore[index]
    assert world.exact.get("crm/Accounts", account["ID"])["Name"] == expected  # type: ignore[index]


def test_clearing_a_value_propagates_as_a_clear(world: World) -> None:
    customer = world.crm.create("customers", {"Name": "Clear me", "Fax": "123"})
    world.sync()
    world.crm.update("customers", customer["Id"], {"Fax": None})
    world.sync()
    assert world.accounts()[0]["Fax"] is None


def test_deletes_retire_the_link_and_are_not_propagated(world: World) -> None:
    kept = world.crm.create("customers", {"Name": "Deleted in Exact"})
    gone = world.crm.create("customers", {"Name": "Deleted in CRM"})
    world.sync()
    accounts = {a["Name"]: a["ID"] for a in world.accounts()}
    world.exact.delete("crm/Accounts", accounts["Deleted in Exact"])
    world.crm.delete("customers", gone["Id"])
    report = world.sync().flow(FLOW)
    assert report.retired == 2 and report.created == 0
    assert [a["Name"] for a in world.accounts()] == ["Deleted in CRM"]
    assert world.crm.get("customers", kept["Id"]) is not None
    world.crm.update("customers", kept["Id"], {"City": "Goes"})
    again = world.sync().flow(FLOW)
    assert again.created == 0 and [i.kind for i in again.issues] == ["skipped"]  # not re-created


def test_a_create_interrupted_before_its_link_is_adopted_not_duplicated(world: World) -> None:
    customer = world.crm.create("customers", {"Name": "Crash BV", "Email": "crash@x.nl"})
    engine = world.engine.engine
    assert engine is not None
    original = engine.store.put_link

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the process dies after Exact committed the create

    engine.store.put_link = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        world.sync()
    engine.store.put_link = original  # type: ignore[method-assign]
    # a restarted engine: same store, cursors not advanced, the intent still recorded
    report = world.sync().flow(FLOW)
    assert (report.created, report.linked) == (0, 1)
    assert len(world.accounts()) == 1
    assert engine.store.link_by_crm(FLOW, customer["Id"]) is not None


def test_a_refused_record_is_reported_and_retried_next_pass(world: World) -> None:
    bad = world.crm.create("customers", {"Name": "N" * 60})  # Customcrm allows 100, Exact 50
    world.crm.create("customers", {"Name": "Fine"})
    report = world.sync().flow(FLOW)
    assert report.created == 1 and report.failed == 1
    assert report.issues[0].record == bad["Id"] and "too long" in report.issues[0].reason
    world.crm.update("customers", bad["Id"], {"Name": "Shorter"})
    assert world.sync().flow(FLOW).created == 1


def test_a_record_refused_again_and_again_is_retried_less_often_until_it_is_edited(world: World) -> None:
    """Retried after 1, 2, 4... passes while nothing changes (each retry costs Exact calls and gets the same
    answer), listed as skipped in between; an edit brings it back on the very next pass."""
    bad = world.crm.create("customers", {"Name": "N" * 60})
    tried = []
    for _ in range(12):
        report = world.sync().flow(FLOW)
        [issue] = report.issues
        tried.append("tried again in" not in issue.reason)
    assert [i + 1 for i, t in enumerate(tried) if t] == [1, 2, 4, 8]
    world.crm.update("customers", bad["Id"], {"Name": "Shorter"})
    assert world.sync().flow(FLOW).created == 1
    assert world.sync().flow(FLOW).issues == []


def test_full_reconciliation_recovers_from_lost_cursors(world: World) -> None:
    kept = world.crm.create("customers", {"Name": "Kept"})
    gone = world.crm.create("customers", {"Name": "Gone in Exact"})
    world.sync()
    engine = world.engine.engine
    assert engine is not None
    accounts = {a["Name"]: a["ID"] for a in world.accounts()}
    world.exact.delete("crm/Accounts", accounts["Gone in Exact"])
    world.exact.update("crm/Accounts", accounts["Kept"], {"City": "Goes"})
    # The cursors are lost, and so is the deletion log (Exact keeps it two months).
    engine.store._db.execute("DELETE FROM cursors")
    world.systems.exact_state.division(world.systems.division).deleted.clear()  # type: ignore[union-attr]
    report = engine.run_pass(full=True).flow(FLOW)
    assert report.created == 0 and report.retired == 1
    assert world.crm.get("customers", kept["Id"])["City"] == "Goes"  # type: ignore[index]
    assert engine.store.link_by_crm(FLOW, gone["Id"]) is None
    assert engine.run_pass().writes == 0


def test_a_value_exact_cannot_take_is_reported_once_never_truncated(world: World) -> None:
    """Customcrm takes a 100-character name, Exact's Accounts.Name 50: the record is refused, reported as
    failed once, then listed as skipped while nothing changes; nothing is cut. Shortened, it syncs."""
    long_name = "Stichting Voorbeeld " + "x" * 60
    customer = world.crm.create("customers", {"Name": long_name, "Email": "long@example.com"})
    first = world.sync().flow(FLOW)
    assert first.failed == 1 and "reported once" in first.issues[0].reason
    again = world.sync().flow(FLOW)
    assert again.failed == 0 and again.skipped == 1 and "as reported before" in again.issues[0].reason
    assert world.accounts() == []  # not created with a cut name
    world.crm.update("customers", customer["Id"], {"Name": long_name[:50]})
    fixed = world.sync().flow(FLOW)
    assert fixed.created == 1 and fixed.failed == 0
    assert [a["Name"] for a in world.accounts()] == [long_name[:50]]


def test_one_read_of_the_deletion_log_serves_every_flow_of_a_pass() -> None:
    """Exact's deletion log holds every entity's deletions: a pass reads it once, not once a flow (each read
    is one of Exact's 60 calls a minute), and each flow still sees its own deletions."""
    systems = Systems.start("inproc")
    try:
        doc = load_dataflow()
        engine = BuiltinEngine(doc, systems, flows=[f.id for f in doc.flows])
        engine.reset()
        crm, exact = systems.customcrm_actor(), systems.exact_actor()
        customer = crm.create("customers", {"Name": "Gone Soon BV"})
        product = crm.create("products", {"Name": "Gone Soon", "Code": "GS-1"})
        engine.sync()
        account = exact.all("sync/CRM/Accounts")[0]["ID"]
        item = exact.all("sync/Logistics/Items")[0]["ID"]
        exact.delete("crm/Accounts", account)
        exact.delete("logistics/Items", item)
        before = len(systems.journal("exact", path_contains="sync/Deleted", methods=("GET",)))
        report = engine.sync()
        reads = len(systems.journal("exact", path_contains="sync/Deleted", methods=("GET",))) - before
        assert reads == 1
        retired = {(i.record, f.flow) for f in report.flows for i in f.issues if i.kind == "retired"}
        assert (customer["Id"], "customer-accounts") in retired and (product["Id"], "product-items") in retired
    finally:
        systems.close()
