"""`--target sandbox`: the checklist against systems it cannot reset (here the mocks served on 127.0.0.1,
holding records of "other people"), in safe mode, with `cmd:` and `poll:` engines.

What must hold: the checks pass; records that were there before are neither changed nor deleted; what the
run created is removed again; no call is refused (no negative tests, no faults); the call budget is kept
and reported; unnamed hosts are refused; credentials never reach the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance.cli import main
from conformance.manifest import manifest_dir
from conformance.runner import run_checklist
from conformance.sandbox import BudgetExhausted, Guard, HostRefused, load_sandbox
from conformance.systems import Systems
from sync.dataflow import load_dataflow
from sync.errors import ConfigError
from sync.systems.exact import ENTITIES

OWN_ENGINE = f"cmd:{sys.executable} -m conformance.cli sync --from-env --once"


@dataclass
class Sandbox:
    systems: Systems  # the served mocks, driven here through their admin plane (talkcheck has none there)
    config: Path
    env: dict[str, str]
    secrets: list[str]

    def snapshot(self) -> dict[str, Any]:
        """Every record on both sides, with its version."""
        crm, exact = self.systems.customcrm_actor(), self.systems.exact_actor()
        records: dict[str, Any] = {}
        for path in ("customers", "contacts", "products", "orders", "quotes", "users"):
            records[path] = {r["Id"]: r["Version"] for r in crm.all(path)}
        for entity in ENTITIES.values():
            for sync_path in (entity.sync_path, entity.lines.sync_path if entity.lines else None):
                if sync_path:
                    records[sync_path] = {r["ID"]: r["Timestamp"] for r in exact.all(sync_path)}
        return records

    def refused_calls(self) -> list[dict[str, Any]]:
        return [e for system in ("exact", "customcrm") for e in self.systems.journal(system) if e["status"] >= 400]


def _write_config(path: Path, systems: Systems, budget: int, *, exact_url: str | None = None) -> None:
    path.write_text(f"""
[customcrm]
base_url = "{systems.customcrm_url}"
api_key_env = "SBX_CRM_KEY"

[exact]
base_url = "{exact_url or systems.exact_url}"
division = {systems.division}
client_id_env = "SBX_CLIENT_ID"
client_secret_env = "SBX_CLIENT_SECRET"
refresh_token_env = "SBX_REFRESH"
access_token_env = "SBX_ACCESS"

[checklist]
call_budget = {budget}
""", encoding="utf-8")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    systems = Systems.start("server")
    try:
        tokens = systems.exact_actor().authorize()
        # Other people's records, and the division's users (the API cannot create users).
        crm, exact = systems.customcrm_actor(), systems.exact_actor()
        crm.create("customers", {"Name": "Someone Else", "Email": "someone@else.example"})
        exact.create("crm/Accounts", {"Name": "Existing BV", "Email": "info@existing.example",
                                      "ChamberOfCommerce": "0"})
        exact.create("logistics/Items", {"Code": "A", "Description": "Their item"})
        systems.admin("exact", "seed", {"users": [{"Email": "ida@sandbox.example", "FullName": "Ida de Vries"},
                                                  {"Email": "ole@sandbox.example", "FullName": "Ole Nordmann"}]})
        crm.create("users", {"FullName": "Ida de Vries", "Email": "ida@sandbox.example"})
        env = {"SBX_CRM_KEY": systems.api_key, "SBX_CLIENT_ID": tokens.client_id,
               "SBX_CLIENT_SECRET": tokens.client_secret, "SBX_REFRESH": tokens.refresh_token,
               "SBX_ACCESS": tokens.access_token}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config = tmp_path / "sandbox.toml"
        _write_config(config, systems, 20_000)
        yield Sandbox(systems, config, env, [systems.api_key, tokens.client_secret, tokens.refresh_token,
                                             tokens.access_token])
    finally:
        systems.close()


def _run(sandbox: Sandbox, report: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["run", "--target", "sandbox", "--config", str(sandbox.config), "--profile", "smoke",
                 "--report-dir", str(report), *args])
    return code, json.loads((report / "results.json").read_text())


def _unchanged_and_clean(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after == before, "the run changed, left or deleted records in the sandbox"


def test_the_checklist_runs_against_a_sandbox_in_safe_mode(sandbox: Sandbox, tmp_path: Path) -> None:
    before = sandbox.snapshot()
    crm = sandbox.systems.customcrm_actor()
    feed_start = crm.client.get("/api/v1/changes", params={"limit": 1000}, headers=crm.headers).json()["next_cursor"]
    # Every kind of check the two flows have (one property row: the others are the same check of another row).
    kinds = ["create", "link", "edit-exact", "conflict", "no-echo", "delete-not-propagated", "stays-in-sync",
             "stays-in-sync-faults", "property:Code", "property:Id->Salesperson"]
    code, results = _run(sandbox, tmp_path / "report", "--engine", OWN_ENGINE, "--flow", "product-items",
                         "--flow", "user-salesorders", *(a for kind in kinds for a in ("--check", kind)))
    statuses = {(f["id"], c["id"]): (c["status"], c["detail"]) for f in results["flows"] for c in f["checks"]}
    failed = {k: v for k, v in statuses.items() if v[0] == "failed"}
    assert code == 0 and not failed, failed
    assert statuses[("product-items", "stays-in-sync-faults")][0] == "skipped"
    assert "safe mode" in statuses[("product-items", "stays-in-sync-faults")][1]
    info = results["run"]["sandbox"]
    assert info["removed"] > 20 and info["left"] == []
    # Both budgets and every phase: the engine's calls as it reported them (here on the checklist's app), and
    # the checklist's calls outside the checks (the run's begin, the shared references, the clean-up).
    assert info["engine_calls"]["exact"] > 0 and info["engine_own_app"] is False
    phases = results["run"]["phases"]
    assert phases["set-up and clean-up"]["exact"] > 0
    assert sum(p.get("exact", 0) for p in phases.values()) == results["run"]["checklist_calls"]["exact"]
    assert "The engine under test reported" in (tmp_path / "report" / "report.md").read_text()
    assert 0 < sum(results["run"]["calls"].values()) <= info["call_budget"]
    # Nothing the run created is left, nothing that was there changed, and no call was refused.
    _unchanged_and_clean(before, sandbox.snapshot())
    assert sandbox.refused_calls() == []
    for name in ("report.html", "report.md", "junit.xml", "results.json"):
        text = (tmp_path / "report" / name).read_text()
        assert not [s for s in sandbox.secrets if s in text], f"a credential is in {name}"
    assert info["run_id"] in (tmp_path / "report" / "report.html").read_text()
    # Every record the run created in Customcrm carried the run id (users matched to an Exact user carry
    # that user's e-mail instead).
    feed = crm.client.get("/api/v1/changes", params={"after": feed_start, "limit": 1000}, headers=crm.headers).json()
    created = [c["record"] for c in feed["changes"] if c["op"] == "created" and c["resource"] != "users"]
    assert len(created) > 20 and not [r for r in created if info["run_id"] not in json.dumps(r)]


def _engine_env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    systems = sandbox.systems
    return {"TALKCHECK_CUSTOMCRM_BASE_URL": systems.customcrm_url, "TALKCHECK_CUSTOMCRM_API_KEY": systems.api_key,
            "TALKCHECK_EXACT_BASE_URL": systems.exact_url, "TALKCHECK_EXACT_DIVISION": str(systems.division),
            "TALKCHECK_EXACT_CLIENT_ID": sandbox.env["SBX_CLIENT_ID"],
            "TALKCHECK_EXACT_CLIENT_SECRET": sandbox.env["SBX_CLIENT_SECRET"],
            "TALKCHECK_EXACT_REFRESH_TOKEN": sandbox.env["SBX_REFRESH"],
            "TALKCHECK_EXACT_ACCESS_TOKEN": sandbox.env["SBX_ACCESS"], "TALKCHECK_STATE_DIR": str(tmp_path)}


def test_poll_waits_for_an_engine_that_runs_by_itself(sandbox: Sandbox, tmp_path: Path) -> None:
    """talkcheck's engine running on its own (a pass a second), as Sesam Talk would."""
    engine = subprocess.Popen([sys.executable, "-m", "conformance.cli", "sync", "--from-env"],
                              env={**os.environ, **_engine_env(sandbox, tmp_path)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke", target="sandbox",
                               engine="poll:6", checks=["create", "edit-exact", "no-echo"],
                               sandbox=load_sandbox(sandbox.config))
    finally:
        engine.terminate()
        engine.wait(timeout=10)
    statuses = {c.id: (c.status, c.detail) for f in result.flows for c in f.checks}
    assert all(s == "passed" for s, _ in statuses.values()), statuses
    assert result.engine == "poll:6" and result.sandbox["left"] == []


def test_an_engine_that_fails_its_first_pass_skips_every_check_with_the_reason(sandbox: Sandbox,
                                                                              tmp_path: Path) -> None:
    """The engine command cannot be run (exit 127) at the pass that settles the sandbox: no check runs, each
    says why, the report is written, nothing is left (the run never began: there is nothing to clean up)."""
    before = sandbox.snapshot()
    code, results = _run(sandbox, tmp_path / "report", "--engine", "cmd:no-such-engine-command", "--flow",
                         "product-items", "--check", "create", "--check", "no-echo")
    checks = [c for f in results["flows"] for c in f["checks"]]
    assert code != 0 and len(checks) == 2
    assert all(c["status"] == "skipped" and "failed its first pass" in c["detail"] for c in checks), checks
    _unchanged_and_clean(before, sandbox.snapshot())


def test_poll_without_an_engine_fails_the_checks(sandbox: Sandbox, tmp_path: Path) -> None:
    """Nothing runs between the systems: waiting is not passing."""
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke", target="sandbox",
                           engine="poll:1", checks=["create"], sandbox=load_sandbox(sandbox.config))
    [check] = result.flows[0].checks
    assert check.status == "failed" and "expected exactly one new Exact Items" in check.detail


def test_a_run_that_does_not_fit_the_budget_is_refused_before_it_starts(sandbox: Sandbox, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The plan is measured first; a run whose calls do not fit is refused with the figures, nothing written."""
    _write_config(sandbox.config, sandbox.systems, 100)
    before = sandbox.snapshot()
    code = main(["run", "--target", "sandbox", "--config", str(sandbox.config), "--profile", "smoke",
                 "--engine", OWN_ENGINE, "--flow", "product-items",
                 "--report-dir", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2 and "refused" in err and "call_budget is 100" in err
    assert not (tmp_path / "report" / "results.json").exists()
    _unchanged_and_clean(before, sandbox.snapshot())


def test_credentials_exact_refuses_are_one_line_before_any_planning(sandbox: Sandbox, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An access token Exact refuses and a refresh token it will not take (revoked, or of another app): one
    line naming what to check, exit 2, no secret in it, no traceback, nothing written."""
    monkeypatch.setenv("SBX_ACCESS", "stale-access-token")
    monkeypatch.setenv("SBX_REFRESH", "revoked-refresh-token")
    before = sandbox.snapshot()
    code = main(["run", "--target", "sandbox", "--config", str(sandbox.config), "--profile", "smoke",
                 "--engine", OWN_ENGINE, "--flow", "product-items", "--report-dir", str(tmp_path / "report")])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "refused to refresh" in err, err
    assert "planning" not in captured.out and "Traceback" not in err
    assert "revoked-refresh-token" not in err and sandbox.env["SBX_CLIENT_SECRET"] not in err
    assert not (tmp_path / "report" / "results.json").exists()
    _unchanged_and_clean(before, sandbox.snapshot())


def test_plan_prints_the_calls_per_check_and_writes_nothing(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    before = sandbox.snapshot()
    sandbox.systems.admin("exact", "seed", {"rate_limits": {"enabled": True}})  # Exact's own limits, as served
    try:
        code = main(["run", "--target", "sandbox", "--config", str(sandbox.config), "--profile", "smoke",
                     "--engine", OWN_ENGINE, "--flow", "product-items", "--check", "create", "--check",
                     "property:Code", "--plan"])
    finally:
        sandbox.systems.admin("exact", "seed", {"rate_limits": {"enabled": False}})
    out = capsys.readouterr().out
    assert code == 0 and "product-items" in out and "property:Code" in out
    assert "calls a minute" in out and "calls left today" in out
    _unchanged_and_clean(before, sandbox.snapshot())


def test_a_spent_call_budget_skips_the_rest_and_still_cleans_up(sandbox: Sandbox, tmp_path: Path) -> None:
    """When the calls run out mid-run all the same (an engine that makes the checks read more than planned),
    the remaining checks are skipped with the reason and the clean-up still runs from its reserve."""
    _write_config(sandbox.config, sandbox.systems, 100)
    before = sandbox.snapshot()
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke", target="sandbox",
                           engine=OWN_ENGINE, sandbox=load_sandbox(sandbox.config))
    checks = result.flows[0].checks
    skipped = [c for c in checks if c.status == "skipped" and "call budget" in c.detail]
    assert skipped and checks[-1] in skipped and not [c for c in checks if c.status == "failed"]
    assert sum(result.calls.values()) <= 100
    assert result.sandbox["left"] == []
    _unchanged_and_clean(before, sandbox.snapshot())


def test_a_host_the_config_does_not_name_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    hosts = load_sandbox(sandbox.config).hosts
    calls: dict[str, int] = {}
    sent: list[str] = []
    inner = httpx.MockTransport(lambda request: sent.append(str(request.url)) or httpx.Response(200, json={}))
    guard = Guard(inner, hosts, 200, calls, "exact", threading.Lock())
    client = httpx.Client(transport=guard)
    named = sandbox.systems.exact_url
    assert client.get(f"{named}/api/v1/current/Me").status_code == 200
    for url in ("https://start.exactonline.nl/api/v1/1/crm/Accounts", f"{named.replace('127.0.0.1', 'localhost')}/x",
                f"{named.rsplit(':', 1)[0]}:1/x"):
        with pytest.raises(HostRefused, match="does not name this host"):
            client.get(url)
    assert sent == [f"{named}/api/v1/current/Me"] and calls == {"exact": 1}
    guard.budget = 51  # 50 kept for the clean-up: the checks may make one call, which is spent
    with pytest.raises(BudgetExhausted, match="call budget is used up"):
        client.get(f"{named}/api/v1/current/Me")
    guard.cleaning = True
    assert client.get(f"{named}/api/v1/current/Me").status_code == 200


def test_sandbox_usage_errors(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = str(tmp_path / "r")
    assert main(["run", "--target", "sandbox", "--engine", OWN_ENGINE, "--report-dir", report]) == 2
    assert "needs --config" in capsys.readouterr().err
    assert main(["run", "--target", "sandbox", "--config", str(sandbox.config), "--report-dir", report]) == 2
    assert "name the engine under test" in capsys.readouterr().err
    assert main(["run", "--engine", "poll:5", "--report-dir", report]) == 2
    assert "--target sandbox" in capsys.readouterr().err
    assert main(["run", "--engine", "poll:soon", "--report-dir", report]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text(sandbox.config.read_text().replace('api_key_env = "SBX_CRM_KEY"', 'api_key = "plain"'))
    with pytest.raises(ConfigError, match="must not be written in the file"):
        load_sandbox(bad)
    bad.write_text(sandbox.config.read_text().replace("call_budget = 20000", "call_budget = 5"))
    assert main(["run", "--target", "sandbox", "--config", str(bad), "--engine", OWN_ENGINE,
                 "--report-dir", report]) == 2
    err = capsys.readouterr().err
    assert "call_budget" in err and not [s for s in sandbox.secrets if s in err]


def test_safe_mode_has_no_admin_plane(sandbox: Sandbox) -> None:
    systems = Systems.sandbox(load_sandbox(sandbox.config), "abc12345")
    try:
        assert systems.safe
        with pytest.raises(RuntimeError, match="safe mode"):
            systems.reset()
        with pytest.raises(RuntimeError, match="safe mode"):
            systems.set_faults([{"path": "crm/Accounts", "status": 503, "rate": 1}])
    finally:
        systems.close()


def _engines_of_run(run_id: str) -> list[int]:
    """Processes started for a run (its engine passes carry its id in their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"TALKCHECK_RUN_ID={run_id}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_a_run_killed_mid_phase_is_cleaned_up_by_talkcheck_cleanup(sandbox: Sandbox, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL in the middle of a run (engine passes included), then `talkcheck cleanup`: nothing of the run
    is left in either system, and what was there before is untouched."""
    before = sandbox.snapshot()
    runs = manifest_dir(sandbox.config)
    output = (tmp_path / "out.txt").open("w")
    process = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--target", "sandbox", "--config",
                                str(sandbox.config), "--engine", OWN_ENGINE, "--flow", "product-items",
                                "--profile", "smoke", "--report-dir", str(tmp_path / "report")],
                               env={**os.environ, **sandbox.env}, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Mid-phase: the run has created records in both systems and is still going.
        while time.monotonic() < deadline and process.poll() is None:
            manifests = list(runs.glob("*.jsonl"))
            text = manifests[0].read_text() if manifests else ""
            if text.count('"system": "customcrm"') >= 6 and '"system": "exact"' in text:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed: " + (tmp_path / "out.txt").read_text()
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        output.close()
    [manifest] = list(runs.glob("*.jsonl"))
    run_id = manifest.name.removesuffix(".jsonl")
    deadline = time.monotonic() + 60
    while _engines_of_run(run_id) and time.monotonic() < deadline:  # an engine pass may still be finishing
        time.sleep(0.1)
    assert sandbox.snapshot() != before  # the kill left records behind
    assert main(["cleanup", "--config", str(sandbox.config)]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}:" in out and "0 left" in out
    _unchanged_and_clean(before, sandbox.snapshot())
    assert not manifest.exists()
    assert main(["cleanup", "--config", str(sandbox.config)]) == 0
    assert "nothing to clean up" in capsys.readouterr().out


def test_the_engine_gets_its_own_exact_app(sandbox: Sandbox, tmp_path: Path) -> None:
    """[engine_exact] hands a command engine its own app, as Sesam Talk has in production: its calls do not
    count against the checklist's limits."""
    app = ("4f9e2c1a-8b7d-4e6f-9a0b-1c2d3e4f5a6b", "engine-secret")
    sandbox.systems.admin("exact", "seed", {"clients": [{"client_id": app[0], "secret": app[1],
                                                         "redirect_uris": ["http://localhost/callback"]}]})
    os.environ.update({"SBX_ENGINE_ID": app[0], "SBX_ENGINE_SECRET": app[1], "SBX_ENGINE_REFRESH": "r-engine"})
    try:
        config = sandbox.config.read_text()
        sandbox.config.write_text(config + '\n[engine_exact]\nclient_id_env = "SBX_ENGINE_ID"\n'
                                  'client_secret_env = "SBX_ENGINE_SECRET"\nrefresh_token_env = "SBX_ENGINE_REFRESH"\n')
        settings = load_sandbox(sandbox.config)
        systems = Systems.sandbox(settings, "abc12345")
        try:
            tokens = systems.engine_exact_tokens()
            assert (tokens.client_id, tokens.refresh_token) == (app[0], "r-engine")
            assert systems.exact_tokens().client_id == sandbox.env["SBX_CLIENT_ID"]
        finally:
            systems.close()
        assert "engine-secret" in settings.secrets and "r-engine" in settings.secrets
        sandbox.config.write_text(config + '\n[engine_exact]\nclient_id_env = "SBX_CLIENT_ID"\n'
                                  'client_secret_env = "SBX_CLIENT_SECRET"\nrefresh_token_env = "SBX_REFRESH"\n')
        with pytest.raises(ConfigError, match="the checklist's own Exact app"):
            load_sandbox(sandbox.config)
    finally:
        for name in ("SBX_ENGINE_ID", "SBX_ENGINE_SECRET", "SBX_ENGINE_REFRESH"):
            os.environ.pop(name, None)


def test_the_checklists_exact_token_is_refreshed_between_exacts_570_and_600_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact refuses a refresh within 570 s of the last token and expires it at 600 s: a long sandbox run
    refreshes in between (it once refreshed at 540 s, and every run over nine minutes died on a 401)."""
    import conformance.systems as systems_module

    systems = Systems.simulation("abc12345")
    try:
        admin = httpx.Client(base_url=systems.exact_url, transport=systems.transport("exact"))  # type: ignore[arg-type]
        first = systems.exact_token()
        started, real_time, elapsed = time.time(), time.time, 0
        for age, refreshed in ((550, False), (575, False), (590, True)):
            admin.post("/_admin/clock", json={"advance": age - elapsed}).raise_for_status()  # Exact's view
            elapsed = age
            monkeypatch.setattr(systems_module.time, "time", lambda age=age: started + age)  # the checklist's
            token = systems.exact_token()
            monkeypatch.setattr(systems_module.time, "time", real_time)
            assert (token != first) == refreshed, f"at {age} s"
    finally:
        systems.close()


_TAGGER: list[Any] = []


@example(value="a@b", max_length=20)
@given(value=st.text(min_size=1, max_size=60) | st.text(st.sampled_from("ab-@. 1é"), min_size=1, max_size=60),
       max_length=st.none() | st.integers(16, 200))
def test_a_run_tag_fits_the_field_and_an_e_mail_stays_one_where_it_fits(value: str, max_length: int | None) -> None:
    """Tagged merge keys carry the run id and fit the field: text that holds an "@" in a 20-character field
    is not turned into a 25-character e-mail (Customcrm refused it: a failure of the checklist, not the
    engine)."""
    from conformance.sandbox import Scope

    if not _TAGGER:
        _TAGGER.append(Scope("80798716", httpx.Client(), dict, 1, httpx.Client(), {}))
    scope = _TAGGER[0]
    first, second = scope.tag(value, max_length), scope.tag(value, max_length)
    assert first != second
    for tagged in (first, second):
        assert max_length is None or len(tagged) <= max_length
        if "@" in value and (max_length is None or max_length >= 40):
            assert tagged.endswith("@example.com")


def test_an_access_token_that_expires_mid_run_is_refreshed_and_the_call_sent_again() -> None:
    """A sandbox config's access token may have been issued well before the run (the plan ran first, or the
    user authorised the app minutes ago): when Exact refuses it as expired, the checklist refreshes it and
    sends the call again, instead of failing whichever check was calling then."""
    from conformance.sandbox import SandboxSettings
    from conformance.systems import Systems
    from sync.config import CustomcrmConfig, EngineConfig, ExactConfig, SyncConfig

    mocks = Systems.start("inproc")
    try:
        tokens = mocks.exact_actor().authorize()
        config = SyncConfig(EngineConfig(), CustomcrmConfig(mocks.customcrm_url, mocks.api_key),
                            ExactConfig(mocks.exact_url, mocks.division, tokens.client_id, tokens.client_secret,
                                        tokens.refresh_token, tokens.access_token))
        systems = Systems.sandbox(SandboxSettings(config, call_budget=1000), "expiry", mocks._transports)
        exact = systems.exact_actor()
        created = exact.create("crm/Accounts", {"Name": "Before expiry"})
        mocks.admin("exact", "clock", {"advance": 700})  # Exact's view: the config's token is gone
        exact.update("crm/Accounts", str(created["ID"]), {"Name": "After expiry"})
        assert (exact.get("crm/Accounts", str(created["ID"])) or {})["Name"] == "After expiry"
        assert systems.exact_token() != tokens.access_token  # refreshed once, and used from then on
    finally:
        mocks.close()
