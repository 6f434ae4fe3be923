"""The checklist against a sandbox with Exact's real limits on, as a user runs it.

Starts `talkcheck serve all` (Exact's 60 calls a minute and 5,000 a day per app and division enforced),
puts "other people's" records and two Exact users in it, registers a second Exact app for the engine under
test, authorises both apps as a person would, writes a sandbox config, and runs
`talkcheck run --target sandbox` with talkcheck's own engine as a command on its own app. Reported: wall
time, the checklist's calls per system (from its report), every 429 either system answered (from the
mocks' journals), what the clean-up left, and the run's process at its largest (`peak_rss_mb`).

    python bench/sandbox_limits.py --profile smoke --flow customer-accounts
    python bench/sandbox_limits.py --profile ci --json bench/sandbox_ci.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.systems import CustomcrmActor, ExactActor  # noqa: E402
from mocks.customcrm.state import DEFAULT_API_KEY  # noqa: E402
from mocks.exact.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_DIVISION, DEFAULT_REDIRECT_URI  # noqa: E402

ENGINE_APP = ("5d0c8b7e-0f7c-4a39-9d1b-6f3e2a1c9e11", "engine-app-secret")
TALKCHECK = [sys.executable, "-m", "conformance.cli"]


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise SystemExit("no two free ports next to each other on 127.0.0.1")


def serve(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([*TALKCHECK, "serve", "all", "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port + 1}/api/v1/openapi.json", timeout=1)
            httpx.get(f"http://127.0.0.1:{port}/api/v1/current/Me", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("talkcheck serve all did not start")


def prepare(port: int, workdir: Path, *, engine_app: bool = True) -> tuple[Path, dict[str, str]]:
    """Seed the served mocks as a shared sandbox, and write the config and the environment it names."""
    exact_url, crm_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    admin = httpx.Client(base_url=exact_url, timeout=30)
    admin.post("/_admin/seed", json={
        "clients": [{"client_id": ENGINE_APP[0], "secret": ENGINE_APP[1], "redirect_uris": [DEFAULT_REDIRECT_URI]}],
        "users": [{"Email": "ida@sandbox.example", "FullName": "Ida de Vries"},
                  {"Email": "ole@sandbox.example", "FullName": "Ole Nordmann"}]}).raise_for_status()
    checklist = ExactActor(httpx.Client(base_url=exact_url, timeout=30), DEFAULT_DIVISION, DEFAULT_CLIENT_ID,
                           DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI)
    tokens = checklist.authorize()
    engine = ExactActor(httpx.Client(base_url=exact_url, timeout=30), DEFAULT_DIVISION, ENGINE_APP[0],
                        ENGINE_APP[1], DEFAULT_REDIRECT_URI).authorize()
    crm = CustomcrmActor(httpx.Client(base_url=crm_url, timeout=30), DEFAULT_API_KEY)
    crm.create("customers", {"Name": "Someone Else", "Email": "someone@else.example"})
    crm.create("users", {"FullName": "Ida de Vries", "Email": "ida@sandbox.example"})
    checklist.create("crm/Accounts", {"Name": "Existing BV", "Email": "info@existing.example"})
    env = {"SBX_CRM_KEY": DEFAULT_API_KEY, "SBX_CLIENT_ID": tokens.client_id, "SBX_CLIENT_SECRET": tokens.client_secret,
           "SBX_REFRESH": tokens.refresh_token, "SBX_ACCESS": tokens.access_token,
           "SBX_ENGINE_ID": engine.client_id, "SBX_ENGINE_SECRET": engine.client_secret,
           "SBX_ENGINE_REFRESH": engine.refresh_token, "SBX_ENGINE_ACCESS": engine.access_token}
    config = workdir / "sandbox.toml"
    config.write_text(f"""
[customcrm]
base_url = "{crm_url}"
api_key_env = "SBX_CRM_KEY"

[exact]
base_url = "{exact_url}"
division = {DEFAULT_DIVISION}
client_id_env = "SBX_CLIENT_ID"
client_secret_env = "SBX_CLIENT_SECRET"
refresh_token_env = "SBX_REFRESH"
access_token_env = "SBX_ACCESS"
""" + ("""
[engine_exact]
client_id_env = "SBX_ENGINE_ID"
client_secret_env = "SBX_ENGINE_SECRET"
refresh_token_env = "SBX_ENGINE_REFRESH"
access_token_env = "SBX_ENGINE_ACCESS"
""" if engine_app else ""), encoding="utf-8")
    return config, env


def refusals(port: int) -> dict[str, int]:
    """429 answers in each mock's journal (every client: the checklist's and the engine's)."""
    out = {}
    for system, url in (("exact", f"http://127.0.0.1:{port}"), ("customcrm", f"http://127.0.0.1:{port + 1}")):
        journal = httpx.get(f"{url}/_admin/journal", timeout=30).json()
        out[system] = sum(1 for entry in journal if entry.get("status") == 429)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--flow", action="append", dest="flows")
    parser.add_argument("--shared-app", action="store_true", help="hand the engine the checklist's own Exact app")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--keep", help="keep the config, the report and the run's output in this folder")
    args, extra = parser.parse_known_args()
    port = _free_port_pair()
    server = serve(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(args.keep or tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            config, env = prepare(port, workdir, engine_app=not args.shared_app)
            command = [*TALKCHECK, "run", "--target", "sandbox", "--config", str(config), "--profile", args.profile,
                       "--engine", f"cmd:{sys.executable} -m conformance.cli sync --from-env --once",
                       "--report-dir", str(workdir / "report"), *[a for f in args.flows or [] for a in ("--flow", f)],
                       *extra]
            started = time.perf_counter()
            done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
            (workdir / "output.txt").write_text(done.stdout + "\n" + done.stderr, encoding="utf-8")
            elapsed = time.perf_counter() - started
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
            results: dict[str, Any] = {}
            report = workdir / "report" / "results.json"
            if report.exists():
                results = json.loads(report.read_text())
            figures = {"profile": args.profile, "flows": args.flows or "all", "exit": done.returncode,
                       "wall_s": round(elapsed, 1), "summary": results.get("summary"),
                       "checklist_calls": results.get("run", {}).get("calls"),
                       "sandbox": results.get("run", {}).get("sandbox"), "refused_429": refusals(port),
                       # the run's process at its largest (an engine pass it ran counts too, and is smaller):
                       # the only child this script has waited for so far
                       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}
            print(json.dumps(figures, indent=2))
            if args.json:
                Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
