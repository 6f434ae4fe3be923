"""The engine in operations: overlapping runs, a lost or damaged state file, typos in the config, faults on reads,
unreachable systems, private files and clear exit codes."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.systems import Systems
from sync.config import load_config
from sync.errors import ConfigError, EngineBusy
from sync.store import MAX_RETRY_AFTER, LinkStore, retry_after
from tests.sync.test_robustness import run_sync, served  # noqa: F401 - the served mocks and a config naming them

KEYED = 6  # customers with an e-mail address (a merge key)
KEYLESS = 6  # customers with nothing to link them by


def _customers(systems: Systems) -> None:
    crm = systems.customcrm_actor()
    for n in range(KEYED):
        crm.create("customers", {"Name": f"Keyed {n}", "Email": f"keyed{n}@example.com"})
    for n in range(KEYLESS):
        crm.create("customers", {"Name": f"Keyless {n}"})


def _accounts(systems: Systems) -> list[dict[str, Any]]:
    return [r for r in systems.exact_actor().all("sync/CRM/Accounts") if str(r["Name"]).startswith("Key")]


def _start(config: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conformance.cli", "sync", "--config", str(config), "--once",
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_engines_started_together_on_one_config_never_duplicate(
        served: tuple[Systems, Path, dict[str, str]]) -> None:  # noqa: F811
    systems, config, env = served
    _customers(systems)
    runs = [_start(config, env) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert len(_accounts(systems)) == KEYED + KEYLESS
    assert sum("created 12" in out for out, _ in results) == 1, "the second waited and found nothing to do"


def test_a_pass_waits_for_the_engine_holding_the_state_and_gives_up_clearly(tmp_path: Path) -> None:
    store = LinkStore(str(tmp_path / "state.sqlite3"))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.running(wait=0):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        with pytest.raises(EngineBusy, match="another engine .*pid"), LinkStore(store.path).running(wait=0.3):
            pass
    finally:
        release.set()
        holder.join()
    with LinkStore(store.path).running(wait=0):
        pass  # free again


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_lost_state_stops_the_engine_and_relink_creates_no_duplicate(
        served: tuple[Systems, Path, dict[str, str]], tmp_path: Path, loss: str) -> None:  # noqa: F811
    systems, config, env = served
    _customers(systems)
    assert run_sync(config, env).returncode == 0
    state = tmp_path / "state.sqlite3"
    assert state.exists() and not Path(f"{state}-wal").exists(), "a pass ends with its state file closed"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    if loss == "emptied":
        state.write_bytes(b"")
    gone = run_sync(config, env)  # the rotated refresh token went with the state: a person authorizes again
    assert gone.returncode == 2 and "authorize the app again" in gone.stderr, gone.stderr
    env["TC_EXACT_REFRESH"] = systems.exact_actor().authorize().refresh_token
    systems.admin("exact", "clock", {"advance": 571})
    stopped = run_sync(config, env)
    assert stopped.returncode == 4, stopped.stdout + stopped.stderr
    assert "--relink" in stopped.stderr and "Traceback" not in stopped.stderr
    assert len(_accounts(systems)) == KEYED + KEYLESS, "nothing is created while the engine is stopped"
    relinked = subprocess.run([sys.executable, "-m", "conformance.cli", "sync", "--config", str(config), "--once",
                               "--relink"], env=env, capture_output=True, text=True, timeout=120)
    assert relinked.returncode == 0, relinked.stdout + relinked.stderr
    assert f"linked {KEYED}" in relinked.stdout and "created 0" in relinked.stdout
    assert relinked.stdout.count("held:") == KEYLESS
    systems.customcrm_actor().create("customers", {"Name": "Keyless new"})  # a later change still syncs
    after = run_sync(config, env)
    assert after.returncode == 0 and "created 1" in after.stdout, after.stdout
    assert len(_accounts(systems)) == KEYED + KEYLESS + 1


def test_a_damaged_state_file_is_one_clear_line(served: tuple[Systems, Path, dict[str, str]],  # noqa: F811
                                                tmp_path: Path) -> None:
    _, config, env = served
    (tmp_path / "state.sqlite3").write_bytes(b"this is not a database" * 100)
    done = run_sync(config, env)
    assert done.returncode == 4
    assert "damaged" in done.stderr and "--relink" in done.stderr and "Traceback" not in done.stderr


def test_the_state_and_its_locks_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    LinkStore(str(path)).set_cursor("x", "1")
    for name in (path, Path(f"{path}.lock"), Path(f"{path}.run.lock")):
        assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


@pytest.mark.parametrize(("section", "typo", "nearest"), [
    ("engine", "intervall = 5", "interval"), ("exact", "divison = 5", "division"),
    ("checklist", "call_budjet = 10", "call_budget"), ("customcrm", "api_key_enviroment = \"X\"", "api_key_env")])
def test_a_typo_in_the_config_is_refused_with_the_nearest_key(tmp_path: Path, section: str, typo: str,
                                                              nearest: str) -> None:
    sections = {"engine": [], "customcrm": ['base_url = "http://127.0.0.1:1"', 'api_key_env = "K"'],
                "exact": ['base_url = "http://127.0.0.1:2"', "division = 1", 'client_id_env = "I"',
                          'client_secret_env = "S"'], "checklist": []}
    sections[section].append(typo)
    config = tmp_path / "sync.toml"
    config.write_text("\n".join(f"[{name}]\n" + "\n".join(lines) for name, lines in sections.items()))
    with pytest.raises(ConfigError, match=f"did you mean {nearest}"):
        load_config(config)


def test_an_unreachable_system_is_one_line_and_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text('[engine]\nstate = "s.sqlite3"\ntimeout = 1\n[customcrm]\nbase_url = "http://127.0.0.1:9"\n'
                      'api_key_env = "K"\n[exact]\nbase_url = "http://127.0.0.1:9"\ndivision = 1\n'
                      'client_id_env = "I"\nclient_secret_env = "S"\naccess_token_env = "A"\n')
    env = {"K": "key-secret-1", "I": "id", "S": "client-secret-2", "A": "access-secret-3", "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "sync", "--config", str(config), "--once",
                           "--first-sync"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not any(secret in done.stdout + done.stderr for secret in env.values() if "secret" in secret)


class _OneServerErrorOnReads(httpx.BaseTransport):
    """Answers the first read of the Exact sync feed with a 500 in Exact's format, then passes everything on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.failed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/sync/CRM/Accounts" in request.url.path and not self.failed:
            self.failed += 1
            return httpx.Response(500, json={"error": {"code": "", "message": {"lang": "", "value": "Oops"}}})
        return self.inner.handle_request(request)


def test_a_server_error_on_a_read_is_retried() -> None:
    from conformance.engines import connect_engine
    from sync.dataflow import load_dataflow
    from sync.http import HttpPolicy

    systems = Systems.start("inproc")
    try:
        systems.customcrm_actor().create("customers", {"Name": "Read BV", "Email": "read@example.com"})
        faulty: list[_OneServerErrorOnReads] = []

        def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
            faulty.append(_OneServerErrorOnReads(inner))
            return faulty[-1]

        engine = connect_engine(load_dataflow(), systems, systems.client("customcrm"),
                                systems.client("exact", wrap), policy=HttpPolicy(sleep=lambda _s: None))
        report = engine.run_pass()
        assert faulty[0].failed == 1
        assert report.flow("customer-accounts").created == 1
    finally:
        systems.close()


@pytest.mark.slow
def test_an_engine_that_prints_its_environment_leaks_no_secret(tmp_path: Path) -> None:
    """A failing `cmd:` engine that dumps its environment: the console, the report and the logs show each
    credential it was handed only as ***."""
    import re

    from mocks.customcrm.state import DEFAULT_API_KEY
    from mocks.exact.state import DEFAULT_CLIENT_SECRET

    done = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--target", "server", "--engine",
                           "cmd:env; exit 7", "--flow", "customer-accounts", "--check", "create", "--profile",
                           "smoke", "--jobs", "1", "--report-dir", str(tmp_path / "report")],
                          capture_output=True, text=True, timeout=240)
    texts = [done.stdout, done.stderr] + [p.read_text() for p in (tmp_path / "report").iterdir() if p.is_file()]
    dumped = "\n".join(texts)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TALKCHECK_EXACT_CLIENT_SECRET" in dumped, "the engine's output is in the report"
    for text in texts:
        assert DEFAULT_API_KEY not in text and DEFAULT_CLIENT_SECRET not in text
        for name, value in re.findall(r"TALKCHECK_(CUSTOMCRM_API_KEY|EXACT_CLIENT_SECRET|EXACT_REFRESH_TOKEN|"
                                      r"EXACT_ACCESS_TOKEN)=([^\s\\\"<&]*)", text):
            assert value in ("***", ""), f"TALKCHECK_{name} shown"


@given(st.integers(min_value=1, max_value=10_000))
def test_a_refused_record_waits_longer_after_each_refusal_up_to_a_cap(tries: int) -> None:
    assert retry_after(1) == 1
    assert retry_after(tries) <= retry_after(tries + 1) <= MAX_RETRY_AFTER
    assert retry_after(tries + 1) <= 2 * retry_after(tries)  # never a jump past the doubling
