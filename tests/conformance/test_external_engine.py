"""An external engine driven as a command (``--engine cmd:COMMAND``): the checklist hands it the systems in
TALKCHECK_* variables and runs it once per sync pass. talkcheck's own engine, run that way, passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.runner import run_checklist
from sync.config import ENV_VARIABLES, config_from_env
from sync.dataflow import load_dataflow
from sync.errors import ConfigError

OWN_ENGINE = f"cmd:{sys.executable} -m conformance.cli sync --from-env --once"


def test_the_checklist_of_a_flow_with_lines_passes_with_the_builtin_engine_as_a_command(tmp_path: Path) -> None:
    """The quote flow (lines and references) with each sync pass a run of `talkcheck sync --from-env --once`:
    one property row (the others are the same check of another row). All seven flows that way:
    bench/RESULTS.md."""
    # Every kind of check that drives the engine differently through a command (a state directory kept across
    # passes, links found on the next run, lines, references, a machine's many passes); the rules that drive
    # it the same way (clears, conflicts, echoes, deletes) run in-process with the builtin engine.
    rules = ["create", "link", "edit-exact", "references", "lines", "stays-in-sync",
             "property:Lines.Quantity->QuotationLines.Quantity"]
    code = main(["run", "--profile", "smoke", "--engine", OWN_ENGINE, "--report-dir", str(tmp_path),
                 "--flow", "quote-quotations", *(a for check in rules for a in ("--check", check))])
    results = json.loads((tmp_path / "results.json").read_text())
    failed = [(f["id"], c["id"], c["detail"]) for f in results["flows"] for c in f["checks"]
              if c["status"] == "failed"]
    assert code == 0 and not failed, failed
    assert results["run"]["engine"] == OWN_ENGINE
    assert results["run"]["target"] == "server"  # an external engine reaches the mocks over the network
    assert len(results["flows"]) == 1 and results["summary"]["passed"] == len(rules)
    assert results["run"]["calls"]["exact"] > 100


def test_a_command_that_syncs_nothing_fails_the_checklist() -> None:
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke", engine="cmd:true",
                           checks=["create", "property:Code"])
    statuses = {c.id: c.status for c in result.flows[0].checks}
    assert not result.ok and statuses == {"create": "failed", "property:Code": "failed"}


def test_a_command_that_cannot_run_is_reported_with_its_output() -> None:
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke",
                           engine="cmd:echo engine broke >&2; exit 3", checks=["create"])
    [create] = result.flows[0].checks
    assert create.status == "failed" and "exited 3" in create.detail and "engine broke" in create.detail


def test_sync_from_env_names_a_missing_variable_and_never_prints_secrets(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TALKCHECK_CUSTOMCRM_API_KEY", "sekret-key-123")
    assert main(["sync", "--from-env", "--once"]) == 2
    err = capsys.readouterr().err
    assert "TALKCHECK_EXACT_DIVISION" in err and "is not set" in err and "sekret-key-123" not in err
    with pytest.raises(ConfigError, match="TALKCHECK_EXACT_DIVISION must be a number"):
        config_from_env({"TALKCHECK_CUSTOMCRM_BASE_URL": "http://127.0.0.1:1", "TALKCHECK_CUSTOMCRM_API_KEY": "k",
                         "TALKCHECK_EXACT_BASE_URL": "http://127.0.0.1:2", "TALKCHECK_EXACT_DIVISION": "x"})


def test_every_variable_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in ENV_VARIABLES if name not in readme]
    assert not missing, f"undocumented in README: {missing}"


def test_an_engine_that_prints_its_environment_leaks_no_credential_into_the_report() -> None:
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke",
                           engine="cmd:env | grep TALKCHECK_; exit 3", checks=["create"])
    [create] = result.flows[0].checks
    assert create.status == "failed" and "TALKCHECK_EXACT_ACCESS_TOKEN=***" in create.detail
    for name in ("CUSTOMCRM_API_KEY", "EXACT_CLIENT_SECRET", "EXACT_REFRESH_TOKEN", "EXACT_ACCESS_TOKEN"):
        assert f"TALKCHECK_{name}=***" in create.detail


def test_an_engine_that_cannot_run_a_pass_fails_the_checks_waiting_for_it_once(tmp_path: Path) -> None:
    """An engine command that exits with an error fails every check that waited for that pass, with the
    engine's error, and nothing runs the example again: a second try would wait for another pass of an
    engine that has just failed (against a sandbox, up to an hour each)."""
    passes = tmp_path / "passes"
    result = run_checklist(load_dataflow(), flows=["product-items"], profile="smoke",
                           engine=f"cmd:echo pass >> {passes}; exit 3",
                           checks=["create", "edit-exact", "property:Code", "property:Unit", "stays-in-sync"])
    checks = result.flows[0].checks
    assert {c.status for c in checks} == {"failed"} and len(checks) == 5
    assert all("the engine command exited 3" in c.detail for c in checks)
    assert passes.read_text().split() == ["pass"]


def test_the_calls_an_engine_reports_are_summed_per_system() -> None:
    from conformance.engines import reported_calls

    output = ("customer-accounts: created 2, linked 0\ncalls to customcrm: GET 7\n"
              "calls to exact: GET 9, POST 2, PUT 1\nnoise: calls to exact: GET 100\n")
    assert reported_calls(output) == {"customcrm": 7, "exact": 12}
    assert reported_calls("an engine that says nothing of its calls") == {}
