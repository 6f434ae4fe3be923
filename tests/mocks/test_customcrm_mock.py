"""The Customcrm mock: CRUD with versions, problem details, the change feed and tenant isolation."""

from __future__ import annotations

import httpx
import pytest

from mocks.customcrm.state import CustomcrmState


def test_crud_with_versions_and_etags(crm_http: httpx.Client) -> None:
    created = crm_http.post("/api/v1/customers", json={"Name": "Jansen BV", "Email": "info@jansen.nl"})
    assert created.status_code == 201 and created.headers["ETag"] == '"1"'
    record = created.json()
    assert record["Version"] == 1 and record["CreatedAt"].endswith("Z") and record["City"] is None
    rid = record["Id"]
    patched = crm_http.patch(f"/api/v1/customers/{rid}", json={"City": "Ede"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["Version"] == 2 and patched.json()["Name"] == "Jansen BV"
    stale = crm_http.patch(f"/api/v1/customers/{rid}", json={"City": "Epe"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
    assert crm_http.get(f"/api/v1/customers/{rid}").json()["City"] == "Ede"
    cleared = crm_http.patch(f"/api/v1/customers/{rid}", json={"City": None})
    assert cleared.json()["City"] is None
    assert crm_http.delete(f"/api/v1/customers/{rid}").status_code == 204
    assert crm_http.get(f"/api/v1/customers/{rid}").status_code == 404


def test_invalid_bodies_name_every_field_and_write_nothing(crm_http: httpx.Client, crm_state: CustomcrmState) -> None:
    response = crm_http.post("/api/v1/customers", json={"Name": 7, "Email": "not-an-email", "Bogus": 1,
                                                         "Country": "Netherlands", "City": "x" * 61})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"Name", "Email", "Bogus", "Country", "City"}
    assert crm_http.get("/api/v1/customers").json()["items"] == []
    assert crm_http.post("/api/v1/customers", content=b"{", headers={"content-type": "application/json"}
                         ).status_code == 400


def test_change_feed_in_commit_order_with_tombstones(crm_http: httpx.Client) -> None:
    a = crm_http.post("/api/v1/customers", json={"Name": "A"}).json()["Id"]
    b = crm_http.post("/api/v1/customers", json={"Name": "B"}).json()["Id"]
    crm_http.patch(f"/api/v1/customers/{a}", json={"Name": "A2"})
    crm_http.delete(f"/api/v1/customers/{b}")
    feed = crm_http.get("/api/v1/changes").json()
    assert [(c["id"], c["op"]) for c in feed["changes"]] == [(a, "created"), (b, "created"), (a, "updated"),
                                                              (b, "deleted")]
    assert feed["changes"][-1]["record"] is None and not feed["has_more"]
    after = crm_http.get("/api/v1/changes", params={"after": feed["next_cursor"]}).json()
    assert after["changes"] == [] and after["next_cursor"] == feed["next_cursor"]
    paged = crm_http.get("/api/v1/changes", params={"limit": 3}).json()
    assert paged["has_more"] and len(paged["changes"]) == 3
    rest = crm_http.get("/api/v1/changes", params={"after": paged["next_cursor"]}).json()
    assert [c["op"] for c in rest["changes"]] == ["deleted"]


def test_list_filters_and_cursor_pages(crm_http: httpx.Client) -> None:
    for i in range(7):
        crm_http.post("/api/v1/customers", json={"Name": f"N{i}", "City": "Delft" if i % 2 else "Ede"})
    delft = crm_http.get("/api/v1/customers", params={"City": "Delft"}).json()["items"]
    assert len(delft) == 3
    seen: list[str] = []
    cursor = None
    while True:
        body = crm_http.get("/api/v1/customers", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        seen += [r["Id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7
    assert crm_http.get("/api/v1/customers", params={"Colour": "red"}).status_code == 400


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_authentication_required(crm_http: httpx.Client, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}
    response = crm_http.get("/api/v1/customers", headers=headers)
    assert response.status_code == 401 and response.json()["status"] == 401


def test_tenants_see_only_their_own_data(crm_http: httpx.Client) -> None:
    crm_http.post("/_admin/seed", json={"tenants": {"acme": "acme-key"}})
    crm_http.post("/api/v1/customers", json={"Name": "Default's"})
    acme = crm_http.get("/api/v1/customers", headers={"Authorization": "Bearer acme-key"}).json()
    assert acme["items"] == []
