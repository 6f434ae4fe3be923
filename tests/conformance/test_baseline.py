"""Comparing runs: each row against a baseline, and a trend from a folder of earlier results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.baseline import BaselineError, compare, load_baseline, mark
from conformance.report import write_reports
from conformance.runner import CheckResult, FlowResult, RunResult, as_json


def run(statuses: dict[str, str]) -> RunResult:
    checks = [CheckResult(check, check, status, "why" if status != "passed" else "") for check, status in
              statuses.items()]
    return RunResult([FlowResult("customer-accounts", "Customer to Accounts", checks)], 0, "smoke", "inproc",
                     "builtin", "d", 1.0)


@pytest.mark.parametrize(("now", "before", "expected"), [
    ("failed", "passed", "new failure"), ("failed", None, "new failure"), ("failed", "failed", "still failing"),
    ("passed", "failed", "fixed"), ("skipped", "passed", "newly skipped"), ("skipped", "failed", "newly skipped"),
    ("passed", "passed", ""), ("skipped", "skipped", ""), ("passed", None, ""),
])
def test_each_row_is_marked_by_how_it_changed(now: str, before: str | None, expected: str) -> None:
    assert mark(now, before) == expected


def test_a_folder_of_earlier_runs_gives_the_baseline_and_a_trend(tmp_path: Path) -> None:
    for n, statuses in enumerate([{"create": "failed", "link": "passed"}, {"create": "passed", "link": "passed"}]):
        folder = tmp_path / f"run-{n}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(as_json(run(statuses))))
        os.utime(folder / "results.json", (1_000_000 + n, 1_000_000 + n))
    baseline = load_baseline(str(tmp_path))
    assert baseline.path.endswith("run-1/results.json")  # the newest
    assert [label for label, _ in baseline.trend] == ["run-0", "run-1"]
    now = run({"create": "failed", "link": "skipped", "no-echo": "passed"})
    now.marks = compare([("customer-accounts", c.id, c.status) for c in now.flows[0].checks], baseline)
    assert now.marks == {("customer-accounts", "create"): "new failure", ("customer-accounts", "link"): "newly skipped"}
    now.baseline, now.trend = baseline.path, baseline.trend
    write_reports(now, tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    assert "1 new failure, 0 fixed, 0 still failing, 1 newly skipped" in page and page.count('class="bar"') == 3
    saved = json.loads((tmp_path / "report" / "results.json").read_text())["run"]["baseline"]
    assert saved["marks"] == {"customer-accounts / create": "new failure", "customer-accounts / link": "newly skipped"}


def test_a_baseline_that_is_not_a_results_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(BaselineError, match="not a talkcheck results.json"):
        load_baseline(str(tmp_path / "x.json"))
    with pytest.raises(BaselineError, match="no results.json"):
        load_baseline(str(tmp_path))
