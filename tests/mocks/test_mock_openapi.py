"""Schemathesis over both mocks' OpenAPI: no crash, and every answer fits the vendor's error format or schema.

Exact answers functional validation errors with HTTP 500 (as the real service does), so "no server error"
here means: every 5xx carries Exact's error body, never a bare crash.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from mocks.common.transport import InProcessTransport
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.customcrm.state import DEFAULT_API_KEY
from mocks.exact.app import create_app as create_exact_app
from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_DIVISION, DEFAULT_REDIRECT_URI

EXACT_APP = create_exact_app()
CUSTOMCRM_APP = create_customcrm_app()
exact_schema = schemathesis.openapi.from_asgi("/openapi.json", EXACT_APP)
customcrm_schema = schemathesis.openapi.from_asgi("/openapi.json", CUSTOMCRM_APP)
# Exact's entity bodies have up to a hundred typed properties: the coverage phase's boundary values for each
# would take minutes here. The suite fuzzes them; `st run --checks all` (schemathesis.toml) runs every phase.
exact_schema.config.phases.coverage.enabled = False


def _exact_token() -> str:
    with httpx.Client(transport=InProcessTransport(EXACT_APP), base_url="http://exact.test") as client:
        redirect = client.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                         "redirect_uri": DEFAULT_REDIRECT_URI})
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        token = client.post("/api/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT_URI,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}).json()
        return str(token["access_token"])


EXACT_TOKEN = _exact_token()


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@schemathesis.check
def exact_errors_keep_exact_format(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 400 and case.path != "/api/oauth2/token":
        body = _body(response)
        assert isinstance(body, dict) and isinstance(body.get("error", {}).get("message", {}).get("value"), str), \
            f"{response.status_code} without Exact's error body: {response.text[:200]}"
    if response.status_code >= 500:
        assert response.status_code in (500, 501, 503, 504), f"unexpected {response.status_code}"


@schemathesis.check
def customcrm_errors_are_problem_details(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 400:
        body = _body(response)
        assert isinstance(body, dict) and body.get("status") == response.status_code and body.get("title"), \
            f"{response.status_code} without problem details: {response.text[:200]}"
        assert response.headers.get("content-type", [""])[0].startswith("application/problem+json") if isinstance(
            response.headers.get("content-type"), list) else True
    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:200]}"


@exact_schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_exact_mock_against_its_openapi(case: Any) -> None:
    if "division" in (case.path_parameters or {}):
        case.path_parameters["division"] = DEFAULT_DIVISION
    case.call_and_validate(headers={"Authorization": f"Bearer {EXACT_TOKEN}", "Accept": "application/json"},
                           checks=[exact_errors_keep_exact_format, response_schema_conformance])


@customcrm_schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_customcrm_mock_against_its_openapi(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                           checks=[customcrm_errors_are_problem_details, response_schema_conformance,
                                   content_type_conformance])


class _FakeResponse:
    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status_code = status
        self.text = body.decode()
        self.headers = {"content-type": [content_type]}

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class _FakeCase:
    path = "/api/v1/{division}/crm/Accounts"


def test_the_custom_checks_can_fail() -> None:
    import pytest

    crash = _FakeResponse(500, b"Internal Server Error", "text/plain")
    with pytest.raises(AssertionError):
        exact_errors_keep_exact_format(None, crash, _FakeCase())
    with pytest.raises(AssertionError):
        customcrm_errors_are_problem_details(None, crash, _FakeCase())
    exact_errors_keep_exact_format(None, _FakeResponse(500, b'{"error": {"message": {"value": "Name: Mandatory"}}}'),
                                   _FakeCase())


class CustomcrmWorkflow(customcrm_schema.as_state_machine()):  # type: ignore[misc]
    """Schemathesis's stateful run over the contract's links: create, then read, change and delete by Id."""

    def setup(self) -> None:
        with httpx.Client(transport=InProcessTransport(CUSTOMCRM_APP), base_url="http://customcrm.test") as client:
            client.post("/_admin/reset")

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {DEFAULT_API_KEY}"}}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=[customcrm_errors_are_problem_details, response_schema_conformance])


TestCustomcrmWorkflow = CustomcrmWorkflow.TestCase
TestCustomcrmWorkflow.settings = settings(max_examples=10, stateful_step_count=8, deadline=None,
                                          suppress_health_check=list(HealthCheck))
