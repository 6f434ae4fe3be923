"""The checklist's HTTP clients (and those it hands the builtin engine in process): httpx's, except that they
look for cookies only in answers that set one."""

import httpx

from conformance.systems import Systems


def test_the_clients_read_no_answer_for_cookies_unless_it_sets_one(cookie_reads: list[str]) -> None:
    systems = Systems.start()
    try:
        crm = systems.customcrm_actor()
        record = crm.create("customers", {"Name": "Cookies"})
        assert crm.get("customers", str(record["Id"])) is not None
        assert cookie_reads == []  # the mock sets no cookie: no answer was copied into urllib's terms

        def sets_one(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"Set-Cookie": "affinity=node-2; Path=/"})

        client = systems.client("customcrm", wrap=lambda _inner: httpx.MockTransport(sets_one), counted=False)
        client.get("/api/v1/customers")
        assert client.cookies.get("affinity") == "node-2"  # a cookie an answer sets is kept, as httpx keeps it
        assert len(cookie_reads) == 1
    finally:
        systems.close()


def _innermost(transport: object) -> object:
    while hasattr(transport, "inner"):
        transport = transport.inner
    return transport


def test_the_clients_of_systems_reached_over_the_network_share_one_transport_their_own_close_leaves_open() -> None:
    """A transport made for each client held a TLS context of its own (about a megabyte), and the checks side
    by side hold two clients each: against a sandbox every client borrows the systems' one transport."""
    systems = Systems.start("server")
    try:
        first, second = systems.customcrm_actor(), systems.exact_actor()
        engine = systems.client("customcrm", counted=False)
        shared = {id(_innermost(c._transport)) for c in (first.client, second.client, engine)}
        assert len(shared) == 1 and isinstance(_innermost(engine._transport), httpx.HTTPTransport)
        first.create("customers", {"Name": "Before"})
        engine.close()  # a client done with: the others go on
        assert first.create("customers", {"Name": "After"})["Name"] == "After"
    finally:
        systems.close()
