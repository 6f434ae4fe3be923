"""The reference engine on a flow with lines: a created header's lines are paired from Exact's line feed,
and the pass after a create tells its own writes from a user's without reading any header's lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.engines import BuiltinEngine
from conformance.systems import CustomcrmActor, ExactActor, Systems
from sync.dataflow import load_dataflow

FLOWS = ["customer-accounts", "product-items", "order-salesorders"]
LINES = "sync/SalesOrder/SalesOrderLines"


class Orders:
    """Both mocks in-process, a customer and two products linked, and the engine between them."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self.crm: CustomcrmActor = systems.customcrm_actor()
        self.exact: ExactActor = systems.exact_actor()
        self.engine = BuiltinEngine(load_dataflow(), systems, flows=FLOWS)
        self.engine.reset()
        self.customer = self.crm.create("customers", {"Name": "Bakkerij Jansen", "Email": "info@jansen.nl"})["Id"]
        self.products = [self.crm.create("products", {"Code": f"P-{n}", "Name": f"Brood {n}", "Price": 2.5})["Id"]
                         for n in range(2)]
        self.engine.sync()

    def order(self, *quantities: float) -> str:
        order = self.crm.create("orders", {
            "OrderNumber": "SO-1", "CustomerId": self.customer, "OrderDate": "2026-11-02", "Currency": "EUR",
            "Lines": [{"ProductId": self.products[n % 2], "Quantity": q, "UnitPrice": 2.5}
                      for n, q in enumerate(quantities)]})
        return str(order["Id"])

    def exact_lines(self) -> list[dict[str, Any]]:
        return sorted(self.exact.all(LINES), key=lambda r: int(r["LineNumber"]))

    def crm_quantities(self, order_id: str) -> list[float]:
        return [line["Quantity"] for line in (self.crm.get("orders", order_id) or {})["Lines"]]


@pytest.fixture
def world() -> Iterator[Orders]:
    systems = Systems.start("inproc")
    try:
        yield Orders(systems)
    finally:
        systems.close()


def test_the_pass_after_a_create_is_quiet_and_reads_no_headers_lines(world: Orders) -> None:
    world.order(1, 2, 3)
    first = world.engine.sync()
    assert first.flow("order-salesorders").created == 1
    journal_before = len(world.systems.journal("exact"))
    second = world.engine.sync()
    assert second.writes == 0
    reads = [e["path"] for e in world.systems.journal("exact")[journal_before:] if e["method"] == "GET"]
    assert reads and all("/sync/" in str(path) for path in reads), reads  # the feeds, nothing per record
    assert world.engine.sync().writes == 0


def test_lines_edited_in_exact_before_they_were_paired_reach_customcrm(world: Orders) -> None:
    order_id = world.order(1, 2, 3)
    world.engine.sync()
    first, second, third = world.exact_lines()
    world.exact.update("salesorder/SalesOrderLines", first["ID"], {"Quantity": 7})
    world.exact.delete("salesorder/SalesOrderLines", second["ID"])
    world.engine.sync()
    assert world.crm_quantities(order_id) == [7, 3]
    assert world.engine.sync().writes == 0
    assert [line["Quantity"] for line in world.exact_lines()] == [7, 3]


def test_a_line_added_in_exact_after_the_pairing_is_added_in_customcrm(world: Orders) -> None:
    order_id = world.order(1)
    world.engine.sync()
    world.engine.sync()  # pairs the line
    [line] = world.exact_lines()
    world.exact.create("salesorder/SalesOrderLines", {"OrderID": line["OrderID"], "Item": line["Item"],
                                                      "Quantity": 4, "UnitPrice": 2.5})
    world.engine.sync()
    assert world.crm_quantities(order_id) == [1, 4]
    world.engine.sync()  # Customcrm filled the new line's empty Discount with 0: Exact is given it too
    assert world.engine.sync().writes == 0
    assert [line["Quantity"] for line in world.exact_lines()] == [1, 4]
