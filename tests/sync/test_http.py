"""The engine's HTTP client: httpx's own, except that it looks for cookies only in answers that set one."""

import httpx

from sync.http import HttpClient


def _answers(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/login":
            return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handle)


def test_a_cookie_an_answer_sets_is_kept_and_sent_back() -> None:
    seen: list[httpx.Request] = []
    with HttpClient(base_url="http://api.test", transport=_answers(seen)) as client:
        assert client.get("/records").json() == {"ok": True}
        assert not client.cookies
        client.get("/login")
        assert client.cookies.get("session") == "abc"
        client.get("/records")
    assert "cookie" not in seen[0].headers
    assert seen[-1].headers["cookie"] == "session=abc"


def test_an_answer_without_cookies_is_not_read_for_them(cookie_reads: list[str]) -> None:
    """The reading of an answer for cookies (a copy of its request and headers in urllib's terms) happens only
    when the answer sets one."""
    with HttpClient(base_url="http://api.test", transport=_answers([])) as client:
        for _ in range(3):
            client.get("/records")
        assert cookie_reads == []
        client.get("/login")
    assert cookie_reads == ["http://api.test/login"]
