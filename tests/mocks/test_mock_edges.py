"""The edges clients and scanners hit: HTTP Basic at the token endpoint, typed $filter literals, deep bodies,
list cursors, unknown query options, 405 with Allow, `$metadata`, and served schemas that say what is answered."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET  # noqa: S405 - parses the mock's own document

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mocks.common.edges import MAX_JSON_DEPTH, too_deep
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.exact.app import create_app as create_exact_app
from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI
from tests.mocks.test_exact_mock import authorize


def _code(client: httpx.Client) -> str:
    redirect = client.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                     "redirect_uri": DEFAULT_REDIRECT_URI})
    return parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]


def test_token_endpoint_takes_http_basic_client_authentication(exact_http: httpx.Client) -> None:
    form = {"grant_type": "authorization_code", "code": _code(exact_http), "redirect_uri": DEFAULT_REDIRECT_URI}
    answer = exact_http.post("/api/oauth2/token", data=form, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))
    assert answer.status_code == 200, answer.text
    assert answer.json()["access_token"]


def test_token_endpoint_refuses_two_authentication_methods_and_bad_basic(exact_http: httpx.Client) -> None:
    form = {"grant_type": "authorization_code", "code": _code(exact_http), "redirect_uri": DEFAULT_REDIRECT_URI,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
    both = exact_http.post("/api/oauth2/token", data=form, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    broken = exact_http.post("/api/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                             headers={"Authorization": "Basic !!!"})
    assert broken.status_code == 401 and broken.json()["error"] == "invalid_client"
    wrong = exact_http.post("/api/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                            headers={"Authorization": "Basic " + base64.b64encode(b"nobody:nothing").decode()})
    assert wrong.status_code in (400, 401)


@pytest.fixture
def exact_auth(exact_http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {authorize(exact_http)['access_token']}", "Accept": "application/json"}


def _exact_error(response: httpx.Response) -> str:
    value: str = response.json()["error"]["message"]["value"]
    return value


@pytest.mark.parametrize("expression", ["ID eq 'abc'", "FirstName eq 5", "ID eq 5", "FirstName eq true",
                                        "Modified gt 'yesterday'"])
def test_a_filter_literal_of_the_wrong_type_is_refused(exact_http: httpx.Client, exact_auth: dict[str, str],
                                                       division: int, expression: str) -> None:
    answer = exact_http.get(f"/api/v1/{division}/crm/Contacts", params={"$filter": expression}, headers=exact_auth)
    assert answer.status_code == 400, answer.text
    assert "incompatible" in _exact_error(answer)


@pytest.mark.parametrize("expression", ["ID eq guid'00000000-0000-0000-0000-000000000001'", "FirstName eq 'Ann'",
                                        "FirstName eq null", "Modified gt datetime'2020-01-01T00:00:00'",
                                        "tolower(FirstName) eq 'ann'"])
def test_filters_of_the_right_type_still_answer(exact_http: httpx.Client, exact_auth: dict[str, str], division: int,
                                                expression: str) -> None:
    answer = exact_http.get(f"/api/v1/{division}/crm/Contacts", params={"$filter": expression}, headers=exact_auth)
    assert answer.status_code == 200, answer.text


def _nested(depth: int) -> bytes:
    return ("{" + '"a":{' * (depth - 1) + "}" * depth).encode()


def test_a_deeply_nested_body_is_refused_in_each_vendors_format(exact_http: httpx.Client, crm_http: httpx.Client,
                                                                exact_auth: dict[str, str], division: int) -> None:
    exact = exact_http.post(f"/api/v1/{division}/crm/Accounts", content=_nested(1000),
                            headers={**exact_auth, "Content-Type": "application/json"})
    assert exact.status_code == 400 and "nests deeper" in _exact_error(exact)
    crm = crm_http.post("/api/v1/customers", content=_nested(1000), headers={"Content-Type": "application/json"})
    assert crm.status_code == 400
    assert crm.headers["content-type"].startswith("application/problem+json")
    assert "nests deeper" in crm.json()["detail"]


@given(st.recursive(st.none() | st.integers() | st.text(alphabet="[]{}\"\\ab"),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                max_size=3), max_leaves=40))
def test_the_depth_scan_agrees_with_the_nesting_of_any_json(value: Any) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    raw = json.dumps(value).encode()
    assert too_deep(raw, limit=3) == (depth(value) > 3)
    assert not too_deep(raw, limit=MAX_JSON_DEPTH)


def test_a_list_cursor_the_api_never_issued_is_refused(crm_http: httpx.Client) -> None:
    answer = crm_http.get("/api/v1/customers", params={"cursor": "garbage"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(("option", "value"), [("$bogus", "1"), ("$inlinecount", "bogus"), ("$format", "atom")])
def test_unknown_system_query_options_are_refused(exact_http: httpx.Client, exact_auth: dict[str, str],
                                                  division: int, option: str, value: str) -> None:
    answer = exact_http.get(f"/api/v1/{division}/crm/Contacts", params={option: value}, headers=exact_auth)
    assert answer.status_code == 400
    assert option in _exact_error(answer) or value in _exact_error(answer)


def test_a_405_says_which_methods_the_path_allows(exact_http: httpx.Client, crm_http: httpx.Client,
                                                  exact_auth: dict[str, str], division: int) -> None:
    exact = exact_http.request("PATCH", f"/api/v1/{division}/crm/Accounts", headers=exact_auth)
    assert exact.status_code == 405
    assert {m.strip() for m in exact.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}
    crm = crm_http.request("PUT", "/api/v1/customers/00000000-0000-0000-0000-000000000001")
    assert crm.status_code == 405
    assert {m.strip() for m in crm.headers["allow"].split(",")} == {"GET", "HEAD", "PATCH", "DELETE"}


def test_metadata_lists_the_entity_sets_and_their_properties(exact_http: httpx.Client, exact_auth: dict[str, str],
                                                             division: int) -> None:
    answer = exact_http.get(f"/api/v1/{division}/crm/$metadata", headers=exact_auth)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(answer.content)  # noqa: S314 - the mock's own document
    edm = "{http://schemas.microsoft.com/ado/2008/09/edm}"
    sets = {e.get("Name"): e.get("EntityType") for e in root.iter(f"{edm}EntitySet")}
    assert sets["Accounts"] == "Exact.Web.Api.Models.Account"
    account = next(e for e in root.iter(f"{edm}EntityType") if e.get("Name") == "Account")
    properties = {p.get("Name"): p.get("Type") for p in account.iter(f"{edm}Property")}
    assert properties["ID"] == "Edm.Guid" and properties["Name"] == "Edm.String"
    missing = exact_http.get(f"/api/v1/{division}/nothing/$metadata", headers=exact_auth)
    assert missing.status_code == 404 and "crm" in _exact_error(missing)
    assert exact_http.get(f"/api/v1/{division}/crm/$metadata").status_code == 401


def test_the_customcrm_contract_documents_every_answer() -> None:
    schema = create_customcrm_app().openapi()
    text = json.dumps(schema)
    assert '"ge"' not in text and '"le"' not in text, "pydantic-only keywords are not JSON Schema"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "401" in answers and "429" in answers, f"{method} {path}"
            if method in ("post", "patch"):
                assert "422" in answers, f"{method} {path}"
    contact = schema["components"]["schemas"]["Contact"]["properties"]["Email"]
    assert any(option.get("format") == "email" for option in contact.get("anyOf", [contact]))
    resource = next(p for p in schema["paths"]["/api/v1/changes"]["get"]["parameters"] if p["name"] == "resource")
    assert "ResourceName" in json.dumps(resource)
    assert schema["components"]["schemas"]["ResourceName"]["enum"]


def test_the_exact_schema_describes_bodies_and_errors() -> None:
    schema = create_exact_app().openapi()
    post = schema["paths"]["/api/v1/{division}/crm/Accounts"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AccountInput")
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["d"]
    account = schema["components"]["schemas"]["Account"]["properties"]
    assert account["ID"]["format"] == "uuid" and "Name" in account
    for path, item in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            for status in ("400", "401", "429", "500"):
                body = operation["responses"][status]["content"]["application/json"]["schema"]
                assert body["$ref"].endswith("/ExactError"), f"{method} {path} {status}"
    assert "Left out" in schema["info"]["description"]


def test_no_page_needs_the_internet_and_the_schema_is_served(exact_http: httpx.Client, crm_http: httpx.Client
                                                             ) -> None:
    """FastAPI's documentation pages load scripts from a CDN, so they are off; the schema is there offline."""
    for client in (exact_http, crm_http):
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_seeded_mocks_give_the_same_ids_after_every_reset() -> None:
    """A run replays by its seed: once seeded, each mock's ids start again from the seed at every reset, and
    the two mocks (seeded apart by the checklist) share none."""
    from conformance.systems import Systems

    systems = Systems.start("inproc", seed=3)
    try:
        def ids() -> tuple[str, str]:
            crm = systems.customcrm_actor().create("customers", {"Name": "Ada", "Email": "ada@example.com"})
            users = systems.admin("exact", "seed", {"users": [{"Email": "ida@example.com", "FullName": "Ida"}]})
            return str(crm["Id"]), str(users["users"][-1])

        first = ids()
        systems.reset()
        assert ids() == first
        assert first[0] != first[1]
    finally:
        systems.close()
