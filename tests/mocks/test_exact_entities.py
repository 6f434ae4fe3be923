"""Every entity set the dataflow touches: properties, derived values, lines, references, sync and bulk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.systems import ExactActor
from mocks.exact.entities import ENTITY_SETS
from mocks.exact.properties import TABLES
from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI, ExactState

# The reference's property counts per set (its "Property count" rows).
REFERENCE_COUNTS = {"Accounts": 164, "Contacts": 70, "SalesOrders": 73, "SalesOrderLines": 51, "Items": 117,
                    "Quotations": 69, "QuotationLines": 29}


@pytest.fixture
def actor(exact_http: httpx.Client, division: int) -> ExactActor:
    return ExactActor(exact_http, division, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI)


@pytest.fixture
def auth(actor: ExactActor) -> dict[str, str]:
    return actor._headers()


@pytest.fixture
def basics(actor: ExactActor) -> Iterator[dict[str, Any]]:
    account = actor.create("crm/Accounts", {"Name": "Acme", "City": "Delft", "Country": "NL"})
    item = actor.create("logistics/Items", {"Code": "W-1", "Description": "Widget"})
    yield {"account": account, "item": item}


@pytest.mark.parametrize("set_name", sorted(REFERENCE_COUNTS))
def test_every_property_of_the_reference_is_served_with_its_type(set_name: str, actor: ExactActor,
                                                                 basics: dict[str, Any], division: int) -> None:
    table = TABLES[set_name]
    assert len(table) == REFERENCE_COUNTS[set_name]
    entity_set = ENTITY_SETS[set_name]
    sample = _sample(set_name, actor, basics)
    served = actor.get(entity_set.path, sample[entity_set.key])
    assert served is not None
    for name, edm, _access, _mandatory, _length in table:
        assert name in served, f"{set_name}.{name} is missing"
        value = served[name]
        if edm == "Collection":
            assert "__deferred" in value
        elif value is not None:
            expected = {"Edm.String": str, "Edm.Guid": str, "Edm.DateTime": str, "Edm.Int64": str,
                        "Edm.Boolean": bool, "Edm.Double": (int, float), "Edm.Int32": int, "Edm.Int16": int,
                        "Edm.Byte": int, "Edm.Binary": str}[edm]
            assert isinstance(value, expected), f"{set_name}.{name}: {value!r} is not {edm}"
            if edm == "Edm.DateTime":
                assert value.startswith("/Date(")


def _sample(set_name: str, actor: ExactActor, basics: dict[str, Any]) -> dict[str, Any]:
    account, item = basics["account"], basics["item"]
    if set_name == "Accounts":
        return dict(account)
    if set_name == "Items":
        return dict(item)
    if set_name == "Contacts":
        return actor.create("crm/Contacts", {"Account": account["ID"], "LastName": "Jansen"})
    order = actor.create("salesorder/SalesOrders", {"OrderedBy": account["ID"],
                                                    "SalesOrderLines": [{"Item": item["ID"], "Quantity": 1}]})
    if set_name == "SalesOrders":
        return order
    if set_name == "SalesOrderLines":
        return actor.create("salesorder/SalesOrderLines", {"OrderID": order["OrderID"], "Item": item["ID"]})
    quote = actor.create("crm/Quotations", {"OrderAccount": account["ID"],
                                            "QuotationLines": [{"Item": item["ID"], "Quantity": 1}]})
    if set_name == "Quotations":
        return quote
    return actor.create("crm/QuotationLines", {"QuotationID": quote["QuotationID"], "Item": item["ID"]})


_SAMPLE_VALUES = {"Edm.String": "T", "Edm.Double": 1.5, "Edm.Int32": 3, "Edm.Int16": 2, "Edm.Byte": 1,
                  "Edm.Boolean": True, "Edm.DateTime": "2021-06-01T12:00:00"}


@pytest.mark.parametrize("set_name", sorted(REFERENCE_COUNTS))
def test_access_of_every_property(set_name: str, actor: ExactActor, basics: dict[str, Any]) -> None:
    """Every RW property takes a value through PUT; every read-only one ignores what a client sends."""
    entity_set = ENTITY_SETS[set_name]
    sample = _sample(set_name, actor, basics)
    key = sample[entity_set.key]
    skip = set(entity_set.references) | set(entity_set.immutable) | {"Code", "State"}
    writable = {name: _SAMPLE_VALUES[edm] for name, edm, access, _m, _l in TABLES[set_name]
                if access == "RW" and edm in _SAMPLE_VALUES and name not in skip}
    writable |= {name: str(__import__("uuid").uuid4()) for name, edm, access, _m, _l in TABLES[set_name]
                 if access == "RW" and edm == "Edm.Guid" and name not in skip}
    actor.update(entity_set.path, key, writable)
    after = actor.get(entity_set.path, key)
    assert after is not None
    for name, value in writable.items():
        got = after[name]
        if isinstance(value, str) and value.startswith("2021-06-01"):
            assert isinstance(got, str) and got.startswith("/Date("), name
        elif name not in ("AmountFC", "AmountDC", "NetPrice"):  # recomputed from the lines
            assert got == value, f"{set_name}.{name}: wrote {value!r}, read {got!r}"
    before = after
    read_only = {name: _SAMPLE_VALUES.get(edm, "00000000-0000-0000-0000-0000000000aa")
                 for name, edm, access, _m, _l in TABLES[set_name]
                 if access == "R" and edm.startswith("Edm.") and edm not in ("Edm.Binary", "Edm.Int64")}
    actor.update(entity_set.path, key, read_only)
    after = actor.get(entity_set.path, key)
    assert after is not None
    changed = [n for n in read_only if n not in ("Modified", "Timestamp") and after[n] != before[n]]
    assert changed == [], f"read-only properties of {set_name} were written: {changed}"


def test_derived_values(actor: ExactActor, basics: dict[str, Any]) -> None:
    account, item = basics["account"], basics["item"]
    contact = actor.create("crm/Contacts", {"Account": account["ID"], "FirstName": "Anna", "MiddleName": "van",
                                            "LastName": "Dijk"})
    assert (contact["FullName"], contact["AccountName"], contact["City"], contact["Country"]) == \
        ("Anna van Dijk", "Acme", "Delft", "NL")
    actor.update("crm/Accounts", account["ID"], {"City": "Leiden"})
    assert actor.get("crm/Contacts", contact["ID"])["City"] == "Leiden"  # type: ignore[index]
    order = actor.create("salesorder/SalesOrders", {"OrderedBy": account["ID"], "SalesOrderLines": [
        {"Item": item["ID"], "Quantity": 2, "NetPrice": 10.5}, {"Item": item["ID"], "Quantity": 1, "UnitPrice": 4,
                                                               "Discount": 0.25}]})
    assert order["AmountFC"] == 24.0 and order["OrderNumber"] == 1 and order["OrderedByName"] == "Acme"
    assert order["DeliverTo"] == order["InvoiceTo"] == account["ID"]
    second = actor.create("salesorder/SalesOrders", {"OrderedBy": account["ID"],
                                                     "SalesOrderLines": [{"Item": item["ID"]}]})
    assert second["OrderNumber"] == 2
    quote = actor.create("crm/Quotations", {"OrderAccount": account["ID"], "QuotationLines": [
        {"Item": item["ID"], "Quantity": 3, "UnitPrice": 5}]})
    assert (quote["QuotationNumber"], quote["VersionNumber"], quote["AmountFC"]) == (1, 1, 15.0)


def test_lines_inline_expanded_and_on_their_own(actor: ExactActor, basics: dict[str, Any], exact_http: httpx.Client,
                                                auth: dict[str, str], division: int) -> None:
    item = basics["item"]
    order = actor.create("salesorder/SalesOrders", {"OrderedBy": basics["account"]["ID"], "SalesOrderLines": [
        {"Item": item["ID"], "Quantity": 1, "NetPrice": 2}]})
    key = order["OrderID"]
    expanded = exact_http.get(f"/api/v1/{division}/salesorder/SalesOrders(guid'{key}')",
                              params={"$expand": "SalesOrderLines", "$select": "OrderID,SalesOrderLines/Item"},
                              headers=auth).json()["d"]
    [line] = expanded["SalesOrderLines"]["results"]
    assert set(line) == {"__metadata", "Item"} and line["Item"] == item["ID"]
    added = actor.create("salesorder/SalesOrderLines", {"OrderID": key, "Item": item["ID"], "Quantity": 4,
                                                         "NetPrice": 1})
    assert added["LineNumber"] == 2
    assert actor.get("salesorder/SalesOrders", key)["AmountFC"] == 6.0  # type: ignore[index]
    actor.update("salesorder/SalesOrderLines", added["ID"], {"Quantity": 1})
    assert actor.get("salesorder/SalesOrders", key)["AmountFC"] == 3.0  # type: ignore[index]
    nav = exact_http.get(f"/api/v1/{division}/salesorder/SalesOrders(guid'{key}')/SalesOrderLines", headers=auth)
    assert len(nav.json()["d"]["results"]) == 2
    actor.delete("salesorder/SalesOrderLines", added["ID"])
    assert actor.get("salesorder/SalesOrders", key)["AmountFC"] == 2.0  # type: ignore[index]


@pytest.mark.parametrize(("path", "body", "status", "text"), [
    ("crm/Contacts", {"FirstName": "No account"}, 500, "Account: Mandatory"),
    ("crm/Contacts", {"Account": "{account}"}, 500, "FirstName or LastName: Mandatory"),
    ("crm/Contacts", {"Account": "00000000-0000-0000-0000-000000000001", "LastName": "X"}, 500, "does not exist"),
    ("logistics/Items", {"Code": "W-1", "Description": "again"}, 500, "Data already exists"),
    ("salesorder/SalesOrders", {"OrderedBy": "{account}"}, 500, "SalesOrderLines: Mandatory"),
    ("salesorder/SalesOrders", {"OrderedBy": "{account}", "SalesOrderLines": [{"Quantity": 1}]}, 500,
     "Item: Mandatory"),
    ("crm/Quotations", {"QuotationLines": [{"Item": "{item}"}]}, 500, "OrderAccount: Mandatory"),
])
def test_validation_errors_write_nothing(actor: ExactActor, basics: dict[str, Any], exact_http: httpx.Client,
                                         auth: dict[str, str], division: int, exact_state: ExactState, path: str,
                                         body: dict[str, Any], status: int, text: str) -> None:
    filled = {k: (v.format(account=basics["account"]["ID"], item=basics["item"]["ID"]) if isinstance(v, str) else
                  [{kk: (vv.format(item=basics["item"]["ID"]) if isinstance(vv, str) else vv) for kk, vv in x.items()}
                   for x in v] if isinstance(v, list) else v) for k, v in body.items()}
    before = exact_http.get("/_admin/state").json()
    response = exact_http.post(f"/api/v1/{division}/{path}", json=filled, headers=auth)
    assert response.status_code == status and text in response.json()["error"]["message"]["value"]
    after = exact_http.get("/_admin/state").json()
    assert before["divisions"] == after["divisions"]


def test_immutable_order_references_are_refused(actor: ExactActor, basics: dict[str, Any]) -> None:
    other = actor.create("crm/Accounts", {"Name": "Other"})
    order = actor.create("salesorder/SalesOrders", {"OrderedBy": basics["account"]["ID"],
                                                    "SalesOrderLines": [{"Item": basics["item"]["ID"]}]})
    with pytest.raises(httpx.HTTPStatusError) as caught:
        actor.update("salesorder/SalesOrders", order["OrderID"], {"OrderedBy": other["ID"]})
    assert caught.value.response.status_code == 500
    actor.update("salesorder/SalesOrders", order["OrderID"], {"Description": "fine"})


def test_deletes_cascade_to_lines_and_refuse_records_in_use(actor: ExactActor, basics: dict[str, Any],
                                                            exact_http: httpx.Client, auth: dict[str, str],
                                                            division: int) -> None:
    order = actor.create("salesorder/SalesOrders", {"OrderedBy": basics["account"]["ID"],
                                                    "SalesOrderLines": [{"Item": basics["item"]["ID"]}] * 2})
    refused = exact_http.delete(f"/api/v1/{division}/crm/Accounts(guid'{basics['account']['ID']}')", headers=auth)
    assert refused.status_code == 500 and "in use" in refused.json()["error"]["message"]["value"]
    actor.delete("salesorder/SalesOrders", order["OrderID"])
    deleted = exact_http.get(f"/api/v1/{division}/sync/Deleted", headers=auth).json()["d"]["results"]
    assert sorted(d["EntityType"] for d in deleted) == [32, 33, 33]


@pytest.mark.parametrize("sync_path", ["CRM/Accounts", "CRM/Contacts", "Logistics/Items",
                                       "SalesOrder/SalesOrderHeaders", "SalesOrder/SalesOrderLines",
                                       "CRM/QuotationHeaders", "CRM/QuotationLines"])
def test_sync_endpoints_for_every_set(sync_path: str, actor: ExactActor, basics: dict[str, Any]) -> None:
    for set_name in ("Contacts", "SalesOrderLines", "QuotationLines"):
        _sample(set_name, actor, basics)
    rows = actor.all(f"sync/{sync_path}")
    assert rows and all(isinstance(r["Timestamp"], str) and r["ID"] for r in rows)


def test_bulk_needs_select_and_pages_by_1000(actor: ExactActor, exact_http: httpx.Client, auth: dict[str, str],
                                             division: int) -> None:
    exact_http.post("/_admin/seed", json={"records": {"Accounts": [{"Name": f"A{i}"} for i in range(1001)]}})
    refused = exact_http.get(f"/api/v1/{division}/bulk/CRM/Accounts", headers=auth)
    assert refused.status_code == 400 and "$select" in refused.json()["error"]["message"]["value"]
    page = exact_http.get(f"/api/v1/{division}/bulk/CRM/Accounts", params={"$select": "ID,Name"}, headers=auth)
    body = page.json()["d"]
    assert len(body["results"]) == 1000 and "__next" in body
    assert len(exact_http.get(body["__next"], headers=auth).json()["d"]["results"]) == 1


def test_users_and_current_user(exact_http: httpx.Client, auth: dict[str, str], division: int) -> None:
    exact_http.post("/_admin/seed", json={"users": [{"Email": "sales@example.com", "FullName": "Sam Sales"}]})
    users = exact_http.get(f"/api/v1/{division}/users/Users", headers=auth).json()["d"]["results"]
    assert {u["Email"] for u in users} >= {"sales@example.com"}
    system = exact_http.get("/api/v1/system/Users", headers=auth)
    assert system.status_code == 200 and len(system.json()["d"]["results"]) == len(users)
    assert exact_http.get(f"/api/v1/{division}/system/Users", headers=auth).status_code == 501
    assert exact_http.post(f"/api/v1/{division}/users/Users", json={}, headers=auth).status_code == 405
    me = exact_http.get("/api/v1/current/Me", headers=auth).json()["d"]["results"][0]
    assert me["CurrentDivision"] == division


def test_paths_are_case_insensitive(exact_http: httpx.Client, auth: dict[str, str], division: int,
                                    actor: ExactActor) -> None:
    account = actor.create("crm/Accounts", {"Name": "Case"})
    for path in (f"/api/v1/{division}/CRM/Accounts(guid'{account['ID']}')",
                 f"/api/v1/{division}/crm/accounts(guid'{account['ID']}')"):
        assert exact_http.get(path, headers=auth).status_code == 200
    assert exact_http.get(f"/api/v1/{division}/SYNC/crm/accounts", params={"$filter": "Timestamp gt 1L"},
                          headers=auth).status_code == 200
