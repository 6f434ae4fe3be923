"""A client written for the real Exact Online, used unchanged against the mock: only its base URL differs.

The client is ``exactonline`` (OSSO B.V.'s library on PyPI), which insists on HTTPS with a verified
certificate, so the mock is served over TLS with a throwaway CA (``trustme``) that the test trusts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse
from urllib.request import HTTPRedirectHandler, build_opener

import pytest
import trustme
import uvicorn
from exactonline.api import ExactApi
from exactonline.storage.base import ExactOnlineConfig, MissingSetting

from mocks.exact.app import create_app
from mocks.exact.state import DEFAULT_DIVISION, ExactState

CLIENT_ID = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
SECRET = "third-party-secret"


class MemoryStorage(ExactOnlineConfig):
    """The library's documented way to keep its settings: a get/set storage."""

    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def get(self, section: str, option: str) -> str:
        try:
            return self.values[section][option]
        except KeyError as exc:
            raise MissingSetting(option) from exc

    def set(self, section: str, option: str, value: str) -> None:
        self.values.setdefault(section, {})[option] = value


@pytest.fixture(scope="module")
def tls_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ExactState]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    chain, ca_file = folder / "server.pem", folder / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_file))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = ExactState()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning",
                                           ssl_certfile=str(chain), ssl_keyfile=str(chain), lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    mp = pytest.MonkeyPatch()
    mp.setenv("SSL_CERT_FILE", str(ca_file))
    try:
        yield f"https://127.0.0.1:{port}", state
    finally:
        mp.undo()
        server.should_exit = True
        thread.join(timeout=10)


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_an_unchanged_exact_client_authorises_reads_pages_filters_and_writes(
        tls_mock: tuple[str, ExactState]) -> None:
    base, state = tls_mock
    redirect = "https://app.example.com/exact/callback"
    state.seed({"clients": [{"client_id": CLIENT_ID, "secret": SECRET, "redirect_uris": [redirect]}],
                "records": {"Accounts": [{"Name": f"Relatie {i}", "City": "Gouda"} for i in range(65)]}})
    storage = MemoryStorage({
        "server": {"auth_url": f"{base}/api/oauth2/auth", "rest_url": f"{base}/api",
                   "token_url": f"{base}/api/oauth2/token"},
        "application": {"base_url": redirect, "client_id": CLIENT_ID, "client_secret": SECRET},
    })
    api = ExactApi(storage=storage)

    # Authorise: the user opens the auth URL, is sent back with a code, the app trades it for tokens.
    import ssl
    context = ssl.create_default_context()
    opener = build_opener(_NoRedirect, __import__("urllib.request").request.HTTPSHandler(context=context))
    try:
        opener.open(api.create_auth_request_url())
    except Exception as exc:  # urllib raises HTTPError for the unfollowed 302
        location = exc.headers["Location"]  # type: ignore[attr-defined]
    code = parse_qs(urlparse(location).query)["code"][0]
    api.request_token(code)
    assert storage.get_access_token()

    # Read the current division, as the library's own helper does.
    divisions, current = api.get_divisions()
    assert current == DEFAULT_DIVISION
    storage.set_division(current)

    # Page through a filtered list (65 rows: two pages of 60 and 5).
    gouda = api.relations.filter(filter="City eq 'Gouda'")
    assert len(gouda) == 65 and {"ID", "Code", "Name"} <= set(gouda[0])

    # Create, filter by padded code, update, delete.
    created = api.relations.create({"Name": "Derde Partij BV", "City": "Ede"})
    assert created["Name"] is None  # no Prefer header: Exact answers the key and nulls
    [fresh] = api.relations.filter(filter=f"ID eq guid'{created['ID']}'")
    code_value = fresh["Code"].strip()
    [found] = api.relations.filter(relation_code=code_value)
    assert found["Name"] == "Derde Partij BV"
    api.relations.update(created["ID"], {"Name": "Derde Partij B.V."})
    assert api.relations.get(relation_code=code_value)["Name"] == "Derde Partij B.V."
    contact = api.contacts.create({"Account": created["ID"], "FirstName": "Piet", "LastName": "Jansen"})
    [person] = api.contacts.filter(filter=f"ID eq guid'{contact['ID']}'", select="ID,FullName,AccountName")
    assert (person["FullName"], person["AccountName"]) == ("Piet Jansen", "Derde Partij B.V.")
    api.contacts.delete(contact["ID"])
    api.relations.delete(created["ID"])
    assert api.relations.filter(relation_code=code_value) == []
