"""Requests per second of both mocks under uvicorn, measured from a separate client process.

    python bench/mocks_throughput.py [--requests 400] [--rounds 5]

Each mock runs in its own uvicorn process on 127.0.0.1; this process sends requests over one keep-alive
connection, round after round, and reports the median and spread of the rounds. Figures vary with the
machine: compare them with each other (ratios), not with a fixed number.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(factory: str, env: dict[str, str] | None = None, probe: str = "/_admin/clock") -> Iterator[str]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"], cwd=ROOT,
                            env=os.environ | {"PYTHONPATH": str(ROOT)} | (env or {}))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + probe, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rate(send: Callable[[], httpx.Response], requests: int, rounds: int) -> dict[str, float]:
    per_round = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            response = send()
            if response.status_code >= 400:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        per_round.append(requests / (time.perf_counter() - started))
    return {"median_rps": round(statistics.median(per_round), 1), "min_rps": round(min(per_round), 1),
            "max_rps": round(max(per_round), 1)}


def side_by_side(sends: dict[str, Callable[[], httpx.Response]], requests: int, rounds: int) -> dict[str, Any]:
    """`rate` of several senders with their rounds alternating, so a machine's changing speed falls on all."""
    per_round: dict[str, list[float]] = {name: [] for name in sends}
    for _ in range(rounds):
        for name, send in sends.items():
            per_round[name].append(rate(send, requests, 1)["median_rps"])
    out: dict[str, Any] = {name: {"median_rps": round(statistics.median(r), 1), "min_rps": round(min(r), 1),
                                  "max_rps": round(max(r), 1)} for name, r in per_round.items()}
    out["_mock"], out["_floor"] = list(per_round.values())[:2]
    return out


def exact_against_floor(requests: int, rounds: int) -> dict[str, Any]:
    """The Exact mock's 60-row page against uvicorn and Starlette answering the same bytes, side by side."""
    import tempfile

    from mocks.exact.state import DEFAULT_DIVISION

    with served("mocks.exact.app:create_app") as url, httpx.Client(base_url=url) as client:
        headers = _exact_session(client)
        base = f"/api/v1/{DEFAULT_DIVISION}/crm/Accounts"
        params = {"$filter": "City eq 'Delft'"}
        captured = client.get(base, params=params, headers=headers)
        captured.raise_for_status()
        with tempfile.NamedTemporaryFile(suffix=".json") as body:
            body.write(captured.content)
            body.flush()
            with served("bench.floor_app:create_app", {"TALKCHECK_FLOOR_BODY": body.name}, probe="/") as floor, \
                    httpx.Client(base_url=floor) as floor_client:
                result = side_by_side({
                    "exact: GET a 60-row page (the mock)": lambda: client.get(base, params=params, headers=headers),
                    "exact: the same bytes from uvicorn and Starlette (the floor)": lambda: floor_client.get(
                        base, params=params, headers=headers)}, requests, rounds)
    # The share round by round (each round of the mock beside the floor's round after it), then the median:
    # a machine whose speed drifts moves both sides of a pair alike.
    mock_rounds, floor_rounds = (result.pop(f"_{name}") for name in ("mock", "floor"))
    shares = [m / f for m, f in zip(mock_rounds, floor_rounds, strict=True)]
    result["exact: the page as a share of the floor (median of the rounds)"] = {
        "ratio": round(statistics.median(shares), 2)}
    return result


def _exact_session(client: httpx.Client) -> dict[str, str]:
    """120 accounts seeded, a token fetched: the headers of an authorised call."""
    from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI

    client.post("/_admin/seed", json={"records": {"Accounts": [{"Name": f"Klant {i}", "City": "Delft"}
                                                               for i in range(120)]}})
    redirect = client.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                     "redirect_uri": DEFAULT_REDIRECT_URI})
    code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
    token = client.post("/api/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT_URI,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}).json()["access_token"]
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def exact(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    from mocks.exact.state import DEFAULT_DIVISION

    with served("mocks.exact.app:create_app") as url, httpx.Client(base_url=url) as client:
        headers = _exact_session(client)
        base = f"/api/v1/{DEFAULT_DIVISION}/crm/Accounts"
        page = rate(lambda: client.get(base, params={"$filter": "City eq 'Delft'"}, headers=headers),
                    requests, rounds)
        post = rate(lambda: client.post(base, json={"Name": "Bench BV", "City": "Ede"},
                                        headers=headers | {"Prefer": "return=representation"}), requests, rounds)
    return {"exact: GET a 60-row page of crm/Accounts": page, "exact: POST crm/Accounts": post}


def customcrm(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    from mocks.customcrm.state import DEFAULT_API_KEY

    with served("mocks.customcrm.app:create_app") as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}) as client:
        client.post("/_admin/seed", json={"records": {"customers": [{"Name": f"Klant {i}"} for i in range(200)]}})
        page = rate(lambda: client.get("/api/v1/customers", params={"limit": 50}), requests, rounds)
        feed = rate(lambda: client.get("/api/v1/changes", params={"limit": 100}), requests, rounds)
        post = rate(lambda: client.post("/api/v1/customers", json={"Name": "Bench BV", "City": "Ede"}),
                    requests, rounds)
    return {"customcrm: GET a 50-row list page": page, "customcrm: GET a 100-entry feed page": feed,
            "customcrm: POST /customers": post}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--floor", action="store_true",
                        help="the Exact page against its stack's floor (the same bytes from bare Starlette)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.floor:
        results = exact_against_floor(args.requests, args.rounds)
    else:
        results = exact(args.requests, args.rounds) | customcrm(args.requests, args.rounds)
    print(f"{'operation':<62} {'median rps':>11} {'min':>8} {'max':>8}")
    for name, r in results.items():
        if "ratio" in r:
            print(f"{name:<62} {r['ratio']:>11}")
        else:
            print(f"{name:<62} {r['median_rps']:>11} {r['min_rps']:>8} {r['max_rps']:>8}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
