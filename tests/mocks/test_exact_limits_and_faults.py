"""Rate limits with Exact's headers, and the fault injection of the admin plane, in both mocks."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from conformance.systems import ExactActor
from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI, ExactState


def test_minutely_and_daily_limits_with_headers(exact_http: httpx.Client, exact_state: ExactState,
                                                division: int) -> None:
    exact_state.clock.set(datetime(2026, 5, 12, 8, 18, 25, tzinfo=UTC))
    exact_http.post("/_admin/seed", json={"rate_limits": {"enabled": True, "minutely": 3, "daily": 5}})
    actor = ExactActor(exact_http, division, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI)
    auth = actor._headers()
    url = f"/api/v1/{division}/crm/Accounts"
    params = {"$filter": "Name eq 'x'"}
    first = exact_http.get(url, params=params, headers=auth)
    assert first.headers["X-RateLimit-Minutely-Remaining"] == "2" and first.headers["X-RateLimit-Remaining"] == "4"
    assert first.headers["X-RateLimit-Minutely-Reset"] == str(int(datetime(2026, 5, 12, 8, 19, tzinfo=UTC)
                                                                 .timestamp() * 1000))
    assert first.headers["X-RateLimit-Reset"] == str(int(datetime(2026, 5, 13, tzinfo=UTC).timestamp() * 1000))
    for _ in range(2):
        exact_http.get(url, params=params, headers=auth)
    limited = exact_http.get(url, params=params, headers=auth)
    assert limited.status_code == 429
    assert "X-RateLimit-Minutely-Reset" in limited.headers and "X-RateLimit-Reset" not in limited.headers
    assert "X-RateLimit-Limit" not in exact_http.get("/api/v1/current/Me", headers=auth).headers
    exact_state.clock.advance(60)
    assert exact_http.get(url, params=params, headers=auth).status_code == 200
    exact_http.get(url, params=params, headers=auth)
    daily = exact_http.get(url, params=params, headers=auth)
    assert daily.status_code == 429
    assert "X-RateLimit-Reset" in daily.headers and "X-RateLimit-Minutely-Reset" not in daily.headers


def test_injected_errors_and_lost_responses(exact_http: httpx.Client, exact_state: ExactState, division: int) -> None:
    actor = ExactActor(exact_http, division, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI)
    auth = actor._headers()
    exact_http.post("/_admin/faults", json={"rules": [{"path": "crm/Accounts$", "method": "POST", "status": 503,
                                                       "times": 1}]})
    failed = exact_http.post(f"/api/v1/{division}/crm/Accounts", json={"Name": "A"}, headers=auth)
    assert failed.status_code == 503 and failed.json()["error"]["message"]["value"]
    assert exact_http.get("/_admin/state").json()["divisions"][str(division)]["records"] == {}
    exact_http.post("/_admin/faults", json={"rules": [{"path": "crm/Accounts$", "method": "POST",
                                                       "drop_response": True, "times": 1}]})
    lost = exact_http.post(f"/api/v1/{division}/crm/Accounts", json={"Name": "B"}, headers=auth)
    assert lost.status_code == 504
    records = exact_http.get("/_admin/state").json()["divisions"][str(division)]["records"]["Accounts"]
    assert [r["Name"] for r in records] == ["B"]  # committed although the answer was lost
    assert exact_http.post(f"/api/v1/{division}/crm/Accounts", json={"Name": "C"}, headers=auth).status_code == 201


def test_customcrm_faults_answer_problem_details(crm_http: httpx.Client) -> None:
    crm_http.post("/_admin/faults", json={"rules": [{"path": "customers", "status": 500, "rate": 1.0}]})
    response = crm_http.get("/api/v1/customers")
    assert response.status_code == 500 and response.json()["status"] == 500
    crm_http.delete("/_admin/faults")
    assert crm_http.get("/api/v1/customers").status_code == 200


def test_journal_records_vendor_calls_only(exact_http: httpx.Client) -> None:
    exact_http.get("/api/v1/current/Me")
    exact_http.get("/_admin/state")
    journal = exact_http.get("/_admin/journal").json()
    assert [(e["method"], e["path"], e["status"]) for e in journal] == [("GET", "/api/v1/current/Me", 401)]


def test_journal_narrowed_to_a_record_and_to_methods(exact_http: httpx.Client) -> None:
    exact_http.get("/api/v1/current/Me")
    exact_http.post("/api/v1/1/crm/Accounts", json={})
    exact_http.put("/api/v1/1/crm/Accounts(guid'ABC')", json={})
    exact_http.get("/api/v1/1/crm/Accounts(guid'abc')")
    narrowed = exact_http.get("/_admin/journal", params={"path_contains": "(GUID'abc')", "methods": "put,post"}).json()
    assert [(e["method"], e["path"]) for e in narrowed] == [("PUT", "/api/v1/1/crm/Accounts(guid'ABC')")]
    assert len(exact_http.get("/_admin/journal", params={"methods": "GET"}).json()) == 2
