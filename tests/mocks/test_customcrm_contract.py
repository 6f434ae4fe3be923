"""The Customcrm contract: every resource and operation over HTTP, integrity rules, and the published file."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mocks.customcrm.app import create_app
from mocks.customcrm.contract import CONTRACT_FILE, DOC_FILE, render_markdown
from mocks.customcrm.models import RESOURCES
from sync.dataflow import load_dataflow


def make(crm_http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = crm_http.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


@pytest.fixture
def world(crm_http: httpx.Client) -> dict[str, dict[str, Any]]:
    customer = make(crm_http, "customers", {"Name": "Acme BV", "Email": "info@acme.example"})
    user = make(crm_http, "users", {"FullName": "Sam Sales", "Email": "sam@acme.example"})
    product = make(crm_http, "products", {"Code": "W-1", "Name": "Widget", "Price": 9.5, "SupplierId": customer["Id"],
                                          "ContactLastName": "Vries", "ContactEmail": "v@supplier.example"})
    return {"customer": customer, "user": user, "product": product}


def bodies(world: dict[str, dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """A valid create body and a patch per resource."""
    c, u, p = world["customer"]["Id"], world["user"]["Id"], world["product"]["Id"]
    line = {"ProductId": p, "Quantity": 2, "UnitPrice": 9.5, "Discount": 0.1, "Description": "Two widgets"}
    return {
        "customers": ({"Name": "Beta BV", "Country": "NL", "CreditLimit": 500}, {"City": "Utrecht"}),
        "contacts": ({"CustomerId": c, "FirstName": "Anna", "LastName": "Bakker", "BirthDate": "1990-04-01"},
                     {"JobTitle": "Buyer"}),
        "products": ({"Code": "G-2", "Name": "Gadget", "Unit": "pc"}, {"Price": 12.0}),
        "orders": ({"OrderNumber": "SO-1", "CustomerId": c, "OwnerId": u, "OrderDate": "2026-03-01",
                    "Currency": "EUR", "Lines": [line]}, {"Description": "Rush"}),
        "quotes": ({"QuoteNumber": "Q-1", "CustomerId": c, "ValidUntil": "2026-04-01", "Lines": [line]},
                   {"Remarks": "Valid one month"}),
        "users": ({"FullName": "Pat Planner", "Email": "pat@acme.example"}, {"Active": False}),
    }


@pytest.mark.parametrize("path", sorted(RESOURCES))
def test_every_operation_on_every_resource(path: str, crm_http: httpx.Client,
                                           world: dict[str, dict[str, Any]]) -> None:
    create_body, patch = bodies(world)[path]
    record = make(crm_http, path, create_body)
    rid = record["Id"]
    assert record["Version"] == 1 and record["CreatedAt"] == record["ModifiedAt"]
    got = crm_http.get(f"/api/v1/{path}/{rid}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    field, value = next(iter(patch.items()))
    listed = crm_http.get(f"/api/v1/{path}", params={next(iter(create_body)): str(next(iter(create_body.values())))})
    assert rid in [r["Id"] for r in listed.json()["items"]]
    updated = crm_http.patch(f"/api/v1/{path}/{rid}", json=patch, headers={"If-Match": '"1"'})
    assert updated.status_code == 200 and updated.json()[field] == value and updated.json()["Version"] == 2
    assert crm_http.patch(f"/api/v1/{path}/{rid}", json=patch, headers={"If-Match": '"1"'}).status_code == 412
    assert crm_http.delete(f"/api/v1/{path}/{rid}").status_code == 204
    assert crm_http.get(f"/api/v1/{path}/{rid}").status_code == 404
    feed = crm_http.get("/api/v1/changes", params={"resource": path}).json()["changes"]
    assert [c["op"] for c in feed if c["id"] == rid] == ["created", "updated", "deleted"]


def test_lines_keep_their_ids(crm_http: httpx.Client, world: dict[str, dict[str, Any]]) -> None:
    create_body, _ = bodies(world)["orders"]
    order = make(crm_http, "orders", create_body)
    [line] = order["Lines"]
    assert line["Id"]
    second = {"ProductId": world["product"]["Id"], "Quantity": 1}
    updated = crm_http.patch(f"/api/v1/orders/{order['Id']}",
                             json={"Lines": [line | {"Quantity": 5}, second]}).json()
    assert [x["Id"] for x in updated["Lines"]][0] == line["Id"] and updated["Lines"][0]["Quantity"] == 5
    assert updated["Lines"][1]["Id"] and updated["Lines"][1]["Id"] != line["Id"]
    bad = crm_http.patch(f"/api/v1/orders/{order['Id']}", json={"Lines": [{**second, "Id": "made-up"}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Lines.0.Id"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("contacts", {"CustomerId": "nope", "LastName": "X"}, "CustomerId"),
    ("orders", {"OrderNumber": "1", "CustomerId": "{customer}", "OwnerId": "nobody"}, "OwnerId"),
    ("orders", {"OrderNumber": "1", "CustomerId": "{customer}", "Lines": [{"ProductId": "gone"}]}, "Lines.0.ProductId"),
    ("products", {"Code": "X", "Name": "X", "SupplierId": "nope"}, "SupplierId"),
])
def test_references_must_exist(crm_http: httpx.Client, world: dict[str, dict[str, Any]], path: str,
                               body: dict[str, Any], field: str) -> None:
    filled = json.loads(json.dumps(body).replace("{customer}", world["customer"]["Id"]))
    response = crm_http.post(f"/api/v1/{path}", json=filled)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_records_in_use_cannot_be_deleted_and_unique_values_stay_unique(
        crm_http: httpx.Client, world: dict[str, dict[str, Any]]) -> None:
    create_body, _ = bodies(world)["orders"]
    make(crm_http, "orders", create_body)
    for path, key in (("customers", "customer"), ("products", "product"), ("users", "user")):
        response = crm_http.delete(f"/api/v1/{path}/{world[key]['Id']}")
        assert response.status_code == 409, path
    duplicate = crm_http.post("/api/v1/products", json={"Code": "W-1", "Name": "Again"})
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "Code"


@pytest.mark.parametrize(("body", "fields"), [
    ({"CustomerId": "x", "LastName": "y" * 51, "BirthDate": 19900401}, {"LastName", "BirthDate"}),
    ({"CustomerId": "x", "LastName": "y", "BirthDate": "1990-13-45", "Email": "a@"}, {"BirthDate", "Email"}),
])
def test_invalid_contacts_name_every_field(crm_http: httpx.Client, body: dict[str, Any], fields: set[str]) -> None:
    response = crm_http.post("/api/v1/contacts", json=body)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == fields


def test_rate_limit_answers_429_with_retry_after(crm_http: httpx.Client) -> None:
    crm_http.post("/_admin/seed", json={"rate_limit": {"enabled": True, "per_minute": 2}})
    assert crm_http.get("/api/v1/customers").headers["RateLimit-Remaining"] == "1"
    crm_http.get("/api/v1/customers")
    limited = crm_http.get("/api/v1/customers")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["status"] == 429


def test_published_contract_equals_the_served_schema_and_docs_are_current() -> None:
    served = create_app().openapi()
    published = json.loads(CONTRACT_FILE.read_text())
    assert published == json.loads(json.dumps(served)), \
        "the served schema changed: run `python -m mocks.customcrm.contract write` and review the diff"
    assert DOC_FILE.read_text() == render_markdown(published) + "\n"


_COMPATIBLE = {"Edm.String": {"string"}, "Edm.Guid": {"string"}, "Edm.DateTime": {"date", "date-time"},
               "Edm.Double": {"number", "integer"}, "Edm.Int32": {"integer"}, "Edm.Boolean": {"boolean"}}


def _types(spec: dict[str, Any]) -> set[str]:
    out = set()
    for option in spec.get("anyOf", [spec]):
        if option.get("type") == "null":
            continue
        out.add(option.get("format") if option.get("format") in ("date", "date-time") else option.get("type"))
    return out


def test_every_property_the_document_maps_exists_in_the_contract_with_a_compatible_type() -> None:
    schemas = json.loads(CONTRACT_FILE.read_text())["components"]["schemas"]
    problems = []
    for flow in load_dataflow().flows:
        schema = schemas.get(flow.source_type)
        assert schema is not None, f"the contract has no {flow.source_type}"
        for row in flow.properties:
            spec = schema["properties"].get(row.source.split(".")[0])
            if spec is not None and "." in row.source:
                items = spec.get("items", {})
                items = schemas[items["$ref"].split("/")[-1]] if "$ref" in items else items
                spec = items["properties"].get(row.source.split(".", 1)[1])
            if spec is None:
                problems.append(f"{flow.id}: {row.source} is not in the contract")
            elif not _types(spec) & _COMPATIBLE[row.data_type or "Edm.String"]:
                problems.append(f"{flow.id}: {row.source} is {_types(spec)} in the contract, {row.data_type} in Exact")
    assert problems == []
