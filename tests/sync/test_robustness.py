"""The engine under faults and crashes: it reaches the same end state, with no duplicates and no lost edit."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.dataset import Sizes, create_all, edit_one_record_each_side, end_state, make_dataset
from conformance.engines import connect_engine
from conformance.systems import Systems
from sync.dataflow import load_dataflow
from sync.engine import Engine
from sync.http import HttpPolicy

SIZES = Sizes(customers=12, contacts=10, products=4, orders=5, order_lines=2, quotes=3, quote_lines=2, users=2)
LARGE = Sizes(customers=400, contacts=200, products=30, orders=100, order_lines=3, quotes=40, quote_lines=2, users=3)


def populate(systems: Systems, seed: int = 3, sizes: Sizes = SIZES) -> dict[str, Any]:
    data = make_dataset(sizes, seed)
    systems.admin("exact", "seed", {"users": [{"Email": u["Email"], "FullName": u["FullName"]}
                                              for u in data["users"]]})
    create_all(systems.customcrm_actor(), data)
    return data


class Flaky(httpx.BaseTransport):
    """Client-side timeouts: some requests never leave, some are handled and their answer is lost."""

    def __init__(self, inner: httpx.BaseTransport, rng: random.Random, rate: float) -> None:
        self.inner = inner
        self.rng = rng
        self.rate = rate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.rate / 2:
            raise httpx.ConnectTimeout("injected: connect timeout", request=request)
        response = self.inner.handle_request(request)
        if roll < self.rate:
            raise httpx.ReadTimeout("injected: the answer was lost", request=request)
        return response


def engine_for(systems: Systems, *, flaky: float = 0.0, seed: int = 0) -> Engine:
    rng = random.Random(seed)
    policy = HttpPolicy(attempts=6, base_delay=0.0, sleep=lambda _s: None, rng=random.Random(seed))
    wrap = (lambda transport: Flaky(transport, rng, flaky)) if flaky else None
    return connect_engine(load_dataflow(), systems, systems.client("customcrm", wrap), systems.client("exact", wrap),
                          policy=policy)


def converge(engine: Engine, passes: int) -> int:
    """Run passes until one fails nothing and writes nothing; returns how many it took."""
    for number in range(1, passes + 1):
        report = engine.run_pass()
        if report.writes == 0 and all(r.failed == 0 for r in report.flows):
            return number
    raise AssertionError(f"no quiet pass after {passes} passes:\n{report.summary()}")


def reference_state(sizes: Sizes) -> dict[str, Any]:
    """The end state of an uninterrupted, fault-free run over the same data."""
    systems = Systems.start("inproc")
    try:
        populate(systems, sizes=sizes)
        converge(engine_for(systems), 4)
        return end_state(systems.exact_actor())
    finally:
        systems.close()


@pytest.fixture
def reference() -> dict[str, Any]:
    return reference_state(SIZES)


def test_faults_in_both_mocks_reach_the_same_end_state(reference: dict[str, Any]) -> None:
    systems = Systems.start("inproc")
    try:
        populate(systems)
        rules = [{"path": "^/api/", "status": 429, "rate": 0.08}, {"path": "^/api/", "status": 503, "rate": 0.08},
                 {"path": "^/api/", "method": "POST", "drop_response": True, "rate": 0.15},
                 {"path": "^/api/", "method": "PUT", "drop_response": True, "rate": 0.15},
                 {"path": "^/api/v1/(customers|contacts|orders|quotes)", "method": "PATCH", "drop_response": True,
                  "rate": 0.15}]
        for system in ("exact", "customcrm"):
            systems.admin(system, "faults", {"rules": [r for r in rules if "oauth" not in r["path"]], "seed": 11})
        engine = engine_for(systems, flaky=0.05, seed=5)
        passes = converge(engine, 30)
        for system in ("exact", "customcrm"):
            systems.admin(system, "faults", {"rules": []})
        assert end_state(systems.exact_actor()) == reference
        assert converge(engine, 2) == 1  # and it stays quiet
        assert passes > 1  # the faults did bite
    finally:
        systems.close()


def test_one_edit_on_each_side_costs_exactly_one_write_and_none_back() -> None:
    systems = Systems.start("inproc")
    try:
        populate(systems)
        engine = engine_for(systems)
        converge(engine, 4)
        edit_one_record_each_side(systems.customcrm_actor(), systems.exact_actor())
        report = engine.run_pass()
        writes = {m: n for m, n in report.calls["exact"].items() if m in ("POST", "PUT", "DELETE")}
        crm_writes = {m: n for m, n in report.calls["customcrm"].items() if m in ("POST", "PATCH", "DELETE")}
        assert writes == {"PUT": 1} and crm_writes == {"PATCH": 1}
        assert engine.run_pass().writes == 0
    finally:
        systems.close()


# ---------------------------------------------------------------------- the engine as a process


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Systems, Path, dict[str, str]]]:
    systems = Systems.start("server")
    try:
        tokens = systems.exact_actor().authorize()
        systems.admin("exact", "clock", {"advance": 571})  # the first refresh may come at once
        config = tmp_path / "sync.toml"
        config.write_text(
            "[engine]\nstate = \"state.sqlite3\"\ntimeout = 10\n\n"
            f"[customcrm]\nbase_url = \"{systems.customcrm_url}\"\napi_key_env = \"TC_CRM_KEY\"\n\n"
            f"[exact]\nbase_url = \"{systems.exact_url}\"\ndivision = {systems.division}\n"
            "client_id_env = \"TC_EXACT_ID\"\nclient_secret_env = \"TC_EXACT_SECRET\"\n"
            "refresh_token_env = \"TC_EXACT_REFRESH\"\n")
        env = os.environ | {"TC_CRM_KEY": systems.api_key, "TC_EXACT_ID": tokens.client_id,
                            "TC_EXACT_SECRET": tokens.client_secret, "TC_EXACT_REFRESH": tokens.refresh_token}
        yield systems, config, env
    finally:
        systems.close()


def answered(systems: Systems) -> int:
    """Requests both mocks have answered so far."""
    return sum(int(systems.admin(name, "stats")["requests"]) for name in ("exact", "customcrm"))


def run_sync(config: Path, env: dict[str, str], *, systems: Systems | None = None,
             kill_after_requests: int | None = None) -> subprocess.CompletedProcess[str]:
    """`talkcheck sync --once`; with `kill_after_requests`, SIGKILLed once the mocks have answered that many of
    its requests (a kill point by progress, not by time: the same on a fast machine and a slow one)."""
    command = [sys.executable, "-m", "conformance.cli", "sync", "--config", str(config), "--once"]
    if kill_after_requests is None or systems is None:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    start = answered(systems)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and answered(systems) - start < kill_after_requests and time.monotonic() < deadline:
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.slow
def test_sync_command_uses_the_config_and_never_prints_secrets(served: tuple[Systems, Path, dict[str, str]],
                                                               tmp_path: Path) -> None:
    systems, config, env = served
    systems.customcrm_actor().create("customers", {"Name": "Config BV", "Email": "cfg@example.com"})
    done = run_sync(config, env)
    assert done.returncode == 0, done.stderr
    assert "customer-accounts: created 1" in done.stdout
    for secret in (env["TC_CRM_KEY"], env["TC_EXACT_SECRET"], env["TC_EXACT_REFRESH"]):
        assert secret not in done.stdout + done.stderr
    rotated = json.loads(__import__("sqlite3").connect(tmp_path / "state.sqlite3").execute(
        "SELECT value FROM cursors WHERE name='exact:tokens'").fetchone()[0])
    assert rotated["refresh_token"] != env["TC_EXACT_REFRESH"]  # the rotated token was kept
    missing = run_sync(config, {k: v for k, v in env.items() if k != "TC_CRM_KEY"})
    assert missing.returncode == 2 and "TC_CRM_KEY" in missing.stderr


@pytest.mark.slow
def test_killed_at_many_points_of_its_progress_the_engine_creates_no_duplicate(
        served: tuple[Systems, Path, dict[str, str]]) -> None:
    systems, config, env = served
    reference = reference_state(LARGE)
    populate(systems, sizes=LARGE)
    # Kill points by the requests answered: early (token, feeds), mid-create... A full first pass takes about
    # 1,000 requests here, so every one of these runs is killed before it finishes.
    kills = 0
    for point in (15, 60, 140):
        result = run_sync(config, env, systems=systems, kill_after_requests=point)
        kills += result.returncode == -signal.SIGKILL
    for _ in range(3):
        done = run_sync(config, env)
        assert done.returncode == 0, done.stdout + done.stderr
    assert kills >= 3, "the engine finished before it could be killed: raise the data size"
    assert end_state(systems.exact_actor()) == reference
    quiet = run_sync(config, env)
    assert "created 0" in quiet.stdout and "updated in Exact 0" in quiet.stdout


def test_cron_with_an_access_token_from_the_environment_outlives_the_token(tmp_path: Path) -> None:
    """One process per pass (cron, or a checklist's `cmd:` engine) handed an access token: the first run keeps
    it with the time it was seen, and once Exact has expired it, a run refreshes instead of failing."""
    from sync.config import CustomcrmConfig, EngineConfig, ExactConfig, SyncConfig
    from sync.service import build_engine

    systems = Systems.start("inproc")
    try:
        tokens = systems.exact_actor().authorize()
        config = SyncConfig(EngineConfig(state=str(tmp_path / "state.sqlite3")),
                            CustomcrmConfig(systems.customcrm_url, systems.api_key),
                            ExactConfig(systems.exact_url, systems.division, tokens.client_id, tokens.client_secret,
                                        tokens.refresh_token, tokens.access_token))
        transports = {name: t for name in ("exact", "customcrm") if (t := systems.transport(name)) is not None}
        systems.customcrm_actor().create("customers", {"Name": "Before", "Email": "before@example.com"})
        assert build_engine(config, transports=transports).run_pass().flows[0].failed == 0
        assert (tmp_path / "state.sqlite3").exists()
        systems.admin("exact", "clock", {"advance": 700})  # Exact's view: the handed-over token is gone
        systems.customcrm_actor().create("customers", {"Name": "After", "Email": "after@example.com"})
        report = build_engine(config, transports=transports).run_pass()
        assert all(flow.failed == 0 for flow in report.flows)
        names = {r["Name"] for r in systems.exact_actor().all("sync/CRM/Accounts")}
        assert {"Before", "After"} <= names
    finally:
        systems.close()
