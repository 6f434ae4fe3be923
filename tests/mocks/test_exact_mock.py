"""The Exact mock behaves as the reference describes: OAuth, OData envelope, paging, sync API, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from mocks.exact.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    ExactState,
)


def authorize(client: httpx.Client) -> dict[str, str]:
    redirect = client.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                     "redirect_uri": DEFAULT_REDIRECT_URI, "state": "s1"})
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["location"]).query)
    assert query["state"] == ["s1"]
    response = client.post("/api/oauth2/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": DEFAULT_REDIRECT_URI,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


@pytest.fixture
def auth(exact_http: httpx.Client) -> dict[str, str]:
    token = authorize(exact_http)
    return {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}


def url(division: int, path: str) -> str:
    return f"/api/v1/{division}/{path}"


def test_token_response_shape_and_single_use_code(exact_http: httpx.Client) -> None:
    token = authorize(exact_http)
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == "600"  # a string, as Exact sends it


def test_refresh_is_refused_before_570_seconds_and_rotates_after(exact_http: httpx.Client,
                                                                 exact_state: ExactState) -> None:
    exact_state.clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    token = authorize(exact_http)
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET}
    early = exact_http.post("/api/oauth2/token", data=form)
    assert early.status_code == 401
    exact_state.clock.advance(571)
    fresh = exact_http.post("/api/oauth2/token", data=form)
    assert fresh.status_code == 200
    assert fresh.json()["refresh_token"] != token["refresh_token"]
    reused = exact_http.post("/api/oauth2/token", data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_expired_access_token_gets_401_with_www_authenticate(exact_http: httpx.Client, exact_state: ExactState,
                                                             auth: dict[str, str]) -> None:
    assert exact_http.get("/api/v1/current/Me", headers=auth).status_code == 200
    exact_state.clock.advance(601)
    response = exact_http.get("/api/v1/current/Me", headers=auth)
    assert response.status_code == 401
    assert "access token expired" in response.headers["WWW-Authenticate"]


def test_no_token_no_data(exact_http: httpx.Client, division: int) -> None:
    response = exact_http.get(url(division, "crm/Accounts"), params={"$filter": "Name eq 'x'"})
    assert response.status_code == 401
    assert response.json()["error"]["message"]["value"]


def test_create_read_update_delete_account(exact_http: httpx.Client, auth: dict[str, str], division: int) -> None:
    created = exact_http.post(url(division, "crm/Accounts"), json={"Name": "Bakkerij de Vries", "Email": "x@y.nl"},
                              headers=auth | {"Prefer": "return=representation"})
    assert created.status_code == 201
    d = created.json()["d"]
    assert d["__metadata"]["type"] == "Exact.Web.Api.Models.Account"
    assert d["__metadata"]["uri"].endswith(f"crm/Accounts(guid'{d['ID']}')")
    assert d["ID"] == d["ID"].lower()
    assert d["Code"] == "1".rjust(18)
    assert d["City"] is None and d["Blocked"] is False
    assert d["Created"].startswith("/Date(") and d["BankAccounts"]["__deferred"]["uri"].endswith("/BankAccounts")
    key = d["ID"]
    put = exact_http.put(url(division, f"crm/Accounts(guid'{key}')"), json={"City": "Utrecht"}, headers=auth)
    assert put.status_code == 204 and put.content == b""
    got = exact_http.get(url(division, f"crm/Accounts(guid'{key}')"), headers=auth).json()["d"]
    assert got["City"] == "Utrecht" and got["Name"] == "Bakkerij de Vries"  # partial PUT keeps the rest
    assert exact_http.delete(url(division, f"crm/Accounts(guid'{key}')"), headers=auth).status_code == 204
    assert exact_http.get(url(division, f"crm/Accounts(guid'{key}')"), headers=auth).status_code == 404


def test_post_without_prefer_returns_nulls(exact_http: httpx.Client, auth: dict[str, str], division: int) -> None:
    d = exact_http.post(url(division, "crm/Accounts"), json={"Name": "A"}, headers=auth).json()["d"]
    assert d["ID"] and d["Name"] is None


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"Nam": "typo"}, 400, "The property name 'Nam' specified for type 'Exact.Web.Api.Models.Account' is not valid"),
    ({"Email": "a@b.nl"}, 500, "Name: Mandatory"),
    ({"Name": "x" * 51}, 500, "too long"),
    ({"Name": "A", "CreditLineSales": "lots"}, 400, "invalid value"),
])
def test_bad_bodies_get_exact_errors_and_write_nothing(exact_http: httpx.Client, auth: dict[str, str],
                                                       division: int, exact_state: ExactState,
                                                       body: dict[str, object], status: int, text: str) -> None:
    response = exact_http.post(url(division, "crm/Accounts"), json=body, headers=auth)
    assert response.status_code == status
    assert text in response.json()["error"]["message"]["value"]
    assert exact_state.rows(division, __import__("mocks.exact.entities", fromlist=["x"]).ENTITY_SETS["Accounts"]) == []


def test_mandatory_filtering_and_pages_of_60(exact_http: httpx.Client, auth: dict[str, str], division: int) -> None:
    unfiltered = exact_http.get(url(division, "crm/Accounts"), headers=auth)
    assert unfiltered.status_code == 400 and "mandatory filtering" in unfiltered.json()["error"]["message"]["value"]
    for i in range(125):
        exact_http.post(url(division, "crm/Accounts"), json={"Name": f"Klant {i}", "City": "Delft"}, headers=auth)
    seen: list[str] = []
    response = exact_http.get(url(division, "crm/Accounts"),
                              params={"$filter": "City eq 'Delft'", "$select": "ID,Name"}, headers=auth)
    pages = 0
    while True:
        body = response.json()["d"]
        pages += 1
        assert len(body["results"]) <= 60
        seen += [r["ID"] for r in body["results"]]
        assert set(body["results"][0]) == {"__metadata", "ID", "Name"}
        if "__next" not in body:
            break
        assert body["__next"].startswith("http://exact.test/")
        response = exact_http.get(body["__next"], headers=auth)
    assert pages == 3 and len(seen) == len(set(seen)) == 125


@pytest.mark.parametrize(("expr", "count"), [
    ("Name eq 'O''Brien'", 1), ("startswith(Name, 'Klant') eq true", 2), ("substringof('Brien', Name)", 1),
    ("trim(Code) eq '2'", 1), ("Blocked eq true or City eq 'Delft'", 2),
    ("not (Name eq 'Klant 1') and Name ne null", 2),
    ("CreditLineSales gt 99.5 and Name ne null", 1), ("Email eq null and Name ne 'x'", 3),
])
def test_filter_expressions(exact_http: httpx.Client, auth: dict[str, str], division: int, expr: str,
                            count: int) -> None:
    for body in ({"Name": "Klant 1", "City": "Delft"}, {"Name": "Klant 2", "Blocked": True},
                 {"Name": "O'Brien", "CreditLineSales": 100}):
        exact_http.post(url(division, "crm/Accounts"), json=body, headers=auth)
    response = exact_http.get(url(division, "crm/Accounts"), params={"$filter": expr}, headers=auth)
    assert response.status_code == 200, response.text
    assert len(response.json()["d"]["results"]) == count


@pytest.mark.parametrize("expr", ["Name eq", "Name eq 'x", "(Name eq 'x'", "Nope eq 1"])
def test_malformed_filters_are_400(exact_http: httpx.Client, auth: dict[str, str], division: int, expr: str) -> None:
    response = exact_http.get(url(division, "crm/Accounts"), params={"$filter": expr}, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["message"]["value"]


def test_sync_api_timestamps_and_deleted(exact_http: httpx.Client, auth: dict[str, str], division: int) -> None:
    a = exact_http.post(url(division, "crm/Accounts"), json={"Name": "A"}, headers=auth).json()["d"]["ID"]
    exact_http.post(url(division, "crm/Accounts"), json={"Name": "B"}, headers=auth)
    rows = exact_http.get(url(division, "sync/CRM/Accounts"),
                          params={"$filter": "Timestamp gt 1L", "$select": "ID,Timestamp,Name"},
                          headers=auth).json()["d"]["results"]
    stamps = [int(r["Timestamp"]) for r in rows]
    assert all(isinstance(r["Timestamp"], str) for r in rows) and stamps == sorted(stamps) and len(set(stamps)) == 2
    exact_http.put(url(division, f"crm/Accounts(guid'{a}')"), json={"City": "Ede"}, headers=auth)
    later = exact_http.get(url(division, "sync/CRM/Accounts"), params={"$filter": f"Timestamp gt {max(stamps)}L",
                                                                        "$select": "ID,City"}, headers=auth)
    assert [r["ID"] for r in later.json()["d"]["results"]] == [a]
    exact_http.delete(url(division, f"crm/Accounts(guid'{a}')"), headers=auth)
    deleted = exact_http.get(url(division, "sync/Deleted"), params={"$filter": "Timestamp gt 1L"},
                             headers=auth).json()["d"]["results"]
    assert [(d["EntityKey"], d["EntityType"]) for d in deleted] == [(a, 2)]
    bad = exact_http.get(url(division, "sync/CRM/Accounts"), params={"$filter": "Name eq 'A'"}, headers=auth)
    assert bad.status_code == 400


@pytest.mark.parametrize("template", ["Timestamp gt {n}L", "Timestamp ge {m}L", "not (Timestamp le {n}L)",
                                      "Timestamp gt {n}L and Timestamp lt {hi}L", "Timestamp gt {n}"])
def test_the_sync_api_answers_every_timestamp_filter_alike(exact_http: httpx.Client, auth: dict[str, str],
                                                           division: int, template: str) -> None:
    """The index above a `Timestamp gt N` must answer what a scan of every row answers, for that form and
    for the others (which are filtered row by row)."""
    keys = [exact_http.post(url(division, "crm/Accounts"), json={"Name": f"A{n}"}, headers=auth).json()["d"]["ID"]
            for n in range(4)]
    exact_http.put(url(division, f"crm/Accounts(guid'{keys[0]}')"), json={"City": "Ede"}, headers=auth)
    everything = exact_http.get(url(division, "sync/CRM/Accounts"), params={"$filter": "Timestamp gt 1L",
                                                                             "$select": "ID,Timestamp"}, headers=auth)
    stamps = {r["ID"]: int(r["Timestamp"]) for r in everything.json()["d"]["results"]}
    n = stamps[keys[1]]  # the second account: those after it and the edited first one are above it
    expression = template.format(n=n, m=n + 1, hi=max(stamps.values()))
    rows = exact_http.get(url(division, "sync/CRM/Accounts"), params={"$filter": expression, "$select": "ID"},
                          headers=auth).json()["d"]["results"]
    expected = [k for k, stamp in sorted(stamps.items(), key=lambda kv: kv[1]) if stamp > n]
    if "lt" in expression:
        expected = [k for k in expected if stamps[k] < max(stamps.values())]
    assert [r["ID"] for r in rows] == expected


def test_a_kept_page_follows_the_records_it_shows_values_of(exact_http: httpx.Client, auth: dict[str, str],
                                                           division: int) -> None:
    """A contact shows its account's name: read twice with the account renamed between, it shows the new
    name, though the contact itself did not change."""
    account = exact_http.post(url(division, "crm/Accounts"), json={"Name": "Oud BV"}, headers=auth).json()["d"]["ID"]
    exact_http.post(url(division, "crm/Contacts"), json={"Account": account, "LastName": "Smit"}, headers=auth)

    def shown() -> list[str]:
        response = exact_http.get(url(division, "crm/Contacts"), params={"$filter": f"Account eq guid'{account}'"},
                                  headers=auth)
        return [r["AccountName"] for r in response.json()["d"]["results"]]

    assert shown() == ["Oud BV"]
    exact_http.put(url(division, f"crm/Accounts(guid'{account}')"), json={"Name": "Nieuw BV"}, headers=auth)
    assert shown() == ["Nieuw BV"]


def test_dates_are_amsterdam_wall_time(exact_http: httpx.Client, auth: dict[str, str], division: int,
                                       exact_state: ExactState) -> None:
    exact_state.clock.set(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))  # 10:00 in Amsterdam (CEST)
    d = exact_http.post(url(division, "crm/Accounts"), json={"Name": "A"},
                        headers=auth | {"Prefer": "return=representation"}).json()["d"]
    expected = int(datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert d["Created"] == f"/Date({expected})/"


def test_other_divisions_are_forbidden(exact_http: httpx.Client, auth: dict[str, str]) -> None:
    response = exact_http.get(url(1, "crm/Accounts"), params={"$filter": "Name eq 'x'"}, headers=auth)
    assert response.status_code == 403


def test_admin_plane_resets_and_seeds(exact_http: httpx.Client, exact_state: ExactState, division: int) -> None:
    seeded = exact_http.post("/_admin/seed", json={"records": {"Accounts": [{"Name": "Seeded"}]}})
    assert len(seeded.json()["created"]["Accounts"]) == 1
    state = exact_http.get("/_admin/state").json()
    assert state["divisions"][str(division)]["records"]["Accounts"][0]["Name"] == "Seeded"
    assert exact_http.post("/_admin/reset").status_code == 204
    assert exact_http.get("/_admin/state").json()["divisions"][str(division)]["records"] == {}


def test_authorization_codes_are_single_use_and_expire_after_3_minutes(exact_http: httpx.Client,
                                                                       exact_state: ExactState) -> None:
    def code() -> str:
        redirect = exact_http.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                             "redirect_uri": DEFAULT_REDIRECT_URI})
        return parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]

    def trade(value: str) -> httpx.Response:
        return exact_http.post("/api/oauth2/token", data={
            "grant_type": "authorization_code", "code": value, "redirect_uri": DEFAULT_REDIRECT_URI,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET})

    exact_state.clock.set(datetime(2026, 2, 1, 9, 0, tzinfo=UTC))
    first = code()
    assert trade(first).status_code == 200
    assert trade(first).json()["error"] == "invalid_grant"
    late = code()
    exact_state.clock.advance(181)
    assert trade(late).json()["error"] == "invalid_grant"
    wrong_secret = exact_http.post("/api/oauth2/token", data={
        "grant_type": "authorization_code", "code": code(), "redirect_uri": DEFAULT_REDIRECT_URI,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": "nope"})
    assert wrong_secret.status_code == 400 and wrong_secret.json()["error"] == "invalid_request"
