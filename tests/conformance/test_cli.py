"""The command line as a user runs it: exit codes, the report files, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from tests.sync.test_dataflow import SEVEN, seed_shaped


def test_run_one_flow_exits_0_and_results_say_so(tmp_path: Path, capsys: object) -> None:
    code = main(["run", "--flow", "customer-accounts", "--profile", "smoke", "--report-dir", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["summary"]["failed"] == 0 and results["summary"]["passed"] >= 20
    [flow] = results["flows"]
    assert flow["id"] == "customer-accounts" and flow["title"] == "Customcrm Customer to Exact Accounts"
    assert {c["status"] for c in flow["checks"]} == {"passed", "skipped"}
    assert all(c["detail"] for c in flow["checks"] if c["status"] == "skipped")  # a skip always says why
    assert "## Customcrm Customer to Exact Accounts" in (tmp_path / "report.md").read_text()
    assert "<testsuites" in (tmp_path / "junit.xml").read_text()


def test_flows_lists_seven_flows_of_a_seed_shaped_document(tmp_path: Path) -> None:
    doc = tmp_path / "seed.rst"
    doc.write_text(seed_shaped())
    out = subprocess.run([sys.executable, "-m", "conformance.cli", "flows", "--doc", str(doc)],
                         capture_output=True, text=True, check=True).stdout
    assert "7 flows" in out
    for flow_id in SEVEN:
        assert flow_id in out


def test_a_seed_shaped_document_checks_nothing_exits_6_and_says_what_to_add(tmp_path: Path, capsys: object) -> None:
    """The seed's shape (empty tables) is not a pass: exit 6, and the reason once per flow with the row to add."""
    doc = tmp_path / "seed.rst"
    doc.write_text(seed_shaped())
    code = main(["run", "--doc", str(doc), "--profile", "smoke", "--jobs", "1", "--report-dir", str(tmp_path / "r")])
    out, err = capsys.readouterr()  # type: ignore[attr-defined]
    assert code == 6 and "NOTHING WAS CHECKED" in err
    assert out.count("SKIPPED customer-accounts") == 1
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [f["id"] for f in results["flows"]] == SEVEN and results["summary"]["nothing_checked"] is True
    accounts = results["flows"][1]
    assert "not satisfiable" in accounts["note"] and "add a row mapping Exact Accounts.Name" in accounts["note"]


def test_a_malformed_document_is_a_usage_error_with_a_line(tmp_path: Path) -> None:
    doc = tmp_path / "bad.rst"
    doc.write_text(seed_shaped().replace("     - Exact Contacts Property\n", "", 1))
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--doc", str(doc)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{doc}:" in proc.stderr and "three are expected" in proc.stderr


def test_unknown_flow_and_bad_options_exit_2(tmp_path: Path) -> None:
    assert main(["run", "--flow", "nope", "--report-dir", str(tmp_path)]) == 2
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--profile", "huge"],
                          capture_output=True, text=True)
    assert proc.returncode == 2


def test_one_check_of_a_flow_runs_alone_and_an_unknown_check_exits_2(tmp_path: Path, capsys: object) -> None:
    assert main(["run", "--flow", "product-items", "--check", "property:Code", "--profile", "smoke",
                 "--report-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [c["id"] for f in results["flows"] for c in f["checks"]] == ["property:Code"]
    assert main(["run", "--flow", "product-items", "--check", "property:Cod", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "no check 'property:Cod'" in err and "property:Code" in err


def test_plan_on_the_mocks_prints_the_calls_per_check(capsys: object) -> None:
    assert main(["run", "--plan", "--flow", "product-items", "--check", "create", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "product-items" in out and "create" in out and "calls a minute" in out


def test_version_and_a_missing_document(tmp_path: Path, capsys: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("talkcheck ")
    assert main(["run", "--doc", str(tmp_path / "missing.rst"), "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert f"{tmp_path / 'missing.rst'}: cannot read" in err and "::" not in err


def test_fail_on_skip_fails_a_run_with_a_skipped_row(tmp_path: Path) -> None:
    args = ["run", "--flow", "product-items", "--check", "create", "--check", "lines", "--profile", "smoke",
            "--jobs", "1", "--report-dir", str(tmp_path / "r")]
    assert main(args) == 0
    assert main([*args, "--fail-on-skip"]) == 1


def test_pytest_with_an_unknown_flow_says_so_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "conformance/", "--flow", "nope", "-q", "-p",
                           "no:cacheprovider"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 4
    assert "no flow 'nope'" in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr


def test_ctrl_c_to_the_process_group_stops_a_run_with_a_partial_report(tmp_path: Path) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the group, workers included. The run
    ends within seconds, exit 130, no traceback, and the report says it is partial (not an older run's)."""
    import os
    import signal
    import time

    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "results.json").write_text('{"an": "older run"}')
    run = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--jobs", "2", "--profile", "smoke",
                            "--flow", "customer-accounts", "--flow", "product-items", "--report-dir", str(reports)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert run.stdout is not None
    with run, run.stdout:
        for line in run.stdout:  # until the workers are checking: the first row's result is out
            if line.startswith("[1/"):
                break
        sent = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        out = run.stdout.read()
        assert run.wait(timeout=30) == 130
        assert time.monotonic() - sent < 3, "the run did not stop within 3 s"
    assert "Traceback" not in out and "interrupted" in out
    summary = json.loads((reports / "results.json").read_text())["summary"]
    assert summary["interrupted"] is True
    assert "INTERRUPTED" in (reports / "report.html").read_text()


@pytest.mark.parametrize("moment", ["while loading", "while the workers start"])
def test_ctrl_c_during_start_up_stops_cleanly_and_leaves_no_process(moment: str, tmp_path: Path) -> None:
    """Ctrl-C before any row has run: while the command is still loading, or just after it said what it will
    run (its worker processes are starting and get the same Ctrl-C). Exit 130, one line, no traceback from
    it or any worker, and no process of the run left behind."""
    import os
    import signal
    import time

    run = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--jobs", "2", "--profile", "smoke",
                            "--report-dir", str(tmp_path / "r")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert run.stdout is not None
    with run, run.stdout:
        if moment == "while loading":
            time.sleep(0.6)  # past the interpreter's start (0.1 s), within the run's loading (1 to 2 s)
        else:
            assert run.stdout.readline().startswith("talkcheck: ")
        os.killpg(run.pid, signal.SIGINT)
        out = run.stdout.read()
        assert run.wait(timeout=30) == 130, out
    assert "Traceback" not in out and "interrupted" in out, out
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(run.pid, 0)  # any process of the run's group still there?
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a process of the interrupted run was left running"
        time.sleep(0.1)


def test_the_live_display_counts_each_flow_and_the_run() -> None:
    import io

    from rich.console import Console

    from conformance.console import LiveDisplay

    out = io.StringIO()
    display = LiveDisplay({"customer-accounts": 3, "product-items": 2}, Console(file=out, force_terminal=True))
    display.start()
    rows = (("customer-accounts", "passed"), ("product-items", "failed"), ("customer-accounts", "skipped"))
    for flow, status in rows:
        display.advance(flow, status)
    display.say("  FAILED  product-items / create  (why)")
    display.stop()
    assert display.counts() == (3, 5) and display.counts("customer-accounts") == (2, 3)
    assert "FAILED  product-items / create" in out.getvalue()


def test_each_run_draws_its_own_seed_unless_given_and_the_report_replays_it(tmp_path: Path,
                                                                          capsys: object) -> None:
    """A run varies the random part of its data by default (a defect missed once is not missed on every CI
    run); the seed is printed and in the report, and `--seed N` replays it."""
    seeds = []
    for n in range(2):
        code = main(["run", "--profile", "smoke", "--flow", "product-items", "--check", "create",
                     "--jobs", "1", "--report-dir", str(tmp_path / f"r{n}")])
        out, _err = capsys.readouterr()  # type: ignore[attr-defined]
        seed = json.loads((tmp_path / f"r{n}" / "results.json").read_text())["run"]["seed"]
        assert code == 0 and f"seed {seed}," in out
        assert f"--seed {seed}" in (tmp_path / f"r{n}" / "report.html").read_text()
        seeds.append(seed)
    assert seeds[0] != seeds[1]
    main(["run", "--seed", str(seeds[0]), "--profile", "smoke", "--flow", "product-items", "--check", "create",
          "--jobs", "1", "--report-dir", str(tmp_path / "again")])
    assert json.loads((tmp_path / "again" / "results.json").read_text())["run"]["seed"] == seeds[0]


def test_a_ctrl_c_that_went_through_exec_still_exits_130(tmp_path: Path) -> None:
    """CPython 3.11 takes a KeyboardInterrupt raised in code run by `exec` of a string (as dataclasses make
    their methods while the command loads) for an unhandled one, whoever handled it, and a program run with
    `-m` (as `python -m conformance.cli`, and the entry point alike) is killed with SIGINT at exit (status
    -2). The command line still ends with its documented 130."""
    (tmp_path / "interrupted_cli.py").write_text(
        "import conformance.cli as cli\n"
        "def interrupted(args):\n"
        "    exec('raise KeyboardInterrupt')\n"
        "cli._cmd_flows = interrupted\n"
        "if __name__ == '__main__':\n"
        "    import sys\n"
        "    sys.argv = ['talkcheck', 'flows']\n"
        "    raise SystemExit(cli.main())\n")
    done = subprocess.run([sys.executable, "-m", "interrupted_cli"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "talkcheck: interrupted" in done.stderr and "Traceback" not in done.stderr
