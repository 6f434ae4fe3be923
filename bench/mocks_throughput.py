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
from urllib.parse import parse_qs, urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(factory: str) -> Iterator[str]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"], cwd=ROOT,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/_admin/clock", timeout=1)
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


def exact(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_DIVISION, DEFAULT_REDIRECT_URI

    with served("mocks.exact.app:create_app") as url, httpx.Client(base_url=url) as client:
        client.post("/_admin/seed", json={"records": {"Accounts": [{"Name": f"Klant {i}", "City": "Delft"}
                                                                   for i in range(120)]}})
        redirect = client.get("/api/oauth2/auth", params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code",
                                                         "redirect_uri": DEFAULT_REDIRECT_URI})
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        token = client.post("/api/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT_URI,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
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
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    results = exact(args.requests, args.rounds) | customcrm(args.requests, args.rounds)
    print(f"{'operation':<45} {'median rps':>11} {'min':>8} {'max':>8}")
    for name, r in results.items():
        print(f"{name:<45} {r['median_rps']:>11} {r['min_rps']:>8} {r['max_rps']:>8}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
