"""The QA report: report.html (self-contained, rendered in headless Chromium where one is installed),
report.md, junit.xml and results.json, all in the document's order of flows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conformance.report import write_reports
from conformance.runner import CheckResult, FlowResult, RunResult

HOSTILE = "<script>alert('x')</script> & \"quotes\""


def sample() -> RunResult:
    flows = [
        FlowResult("customer-accounts", "Customcrm Customer to Exact Accounts", [
            CheckResult("create", "A new record yields one new record", "passed", duration_s=0.5),
            CheckResult("conflict", "The later edit wins", "failed",
                        f"[customer-accounts / conflict] Name expected 'b', found 'a' {HOSTILE}",
                        "Falsifying example: data(...)\nDraw 1 (Name): 'a'", 1.5),
            CheckResult("lines", "Lines reach the other side", "skipped", "the flow has no line collection"),
        ]),
        FlowResult("order-salesorders", "Customcrm Order to Exact Salesorders", [
            CheckResult("create", "A new record yields one new record", "passed"),
        ]),
        FlowResult("product-contacts", "Customcrm Product to Exact Contacts", [
            CheckResult("create", "x", "skipped", "not satisfiable: Exact Contacts need an Account"),
        ], note="not satisfiable: Exact Contacts need an Account"),
    ]
    return RunResult(flows, seed=7, profile="smoke", target="inproc", engine="builtin",
                     document="customcrm-exact.rst", duration_s=3.25, calls={"exact": 120, "customcrm": 80})


def test_all_four_files_follow_the_document(tmp_path: Path) -> None:
    files = {p.name for p in write_reports(sample(), tmp_path)}
    assert files == {"report.html", "report.md", "junit.xml", "results.json"}
    page = (tmp_path / "report.html").read_text()
    sections = re.findall(r'<section id="flow-([a-z-]+)"', page)
    assert sections == ["customer-accounts", "order-salesorders", "product-contacts"]
    assert page.count('class="check ') == 5
    assert "talkcheck run --profile smoke --seed 7 --flow customer-accounts" in page  # replay of the failure
    assert "Draw 1 (Name)" in page and "calls to exact" in page
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.index("Customer to Exact Accounts") < markdown.index("Order to Exact Salesorders")
    assert "exact 120, customcrm 80" in markdown
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["summary"] == {"passed": 2, "failed": 1, "skipped": 2, "duration_s": 3.25,
                                  "nothing_checked": False, "interrupted": False}
    assert [c["status"] for c in results["flows"][0]["checks"]] == ["passed", "failed", "skipped"]
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall(".//testcase")
    assert len(cases) == 5 and cases[1].find("failure") is not None and cases[2].find("skipped") is not None


def test_html_is_self_contained_and_escapes_what_it_shows(tmp_path: Path) -> None:
    write_reports(sample(), tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<script" not in page  # the hostile detail is shown as text, and the page runs no script
    assert "&lt;script&gt;alert(" in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # nothing fetched from elsewhere
    assert "<link" not in page and "@import" not in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (apt install chromium to run it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    write_reports(sample(), tmp_path)
    browser = _chromium()
    assert browser is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = (tmp_path / "report.html").as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="summary"' in dom.stdout and dom.stdout.count('class="check ') == 5
    assert "Customcrm Order to Exact Salesorders" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1200,1600", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_the_report_gives_the_calls_of_each_phase_and_the_mode_replays(tmp_path: Path) -> None:
    result = sample()
    result.phases = {"side by side": {"exact": 300, "customcrm": 200, "engine passes": 16},
                     "one at a time": {"exact": 40, "customcrm": 30}}
    write_reports(result, tmp_path)
    line = "side by side: customcrm 200, exact 300, 16 engine passes; one at a time: customcrm 30, exact 40"
    assert line in (tmp_path / "report.md").read_text() and line in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["run"]["phases"]["side by side"]["engine passes"] == 16
    result.mode = "per-example"
    write_reports(result, tmp_path)
    assert "--seed 7 --mode per-example" in (tmp_path / "report.md").read_text()


def test_failures_of_one_defect_group_under_one_cause() -> None:
    """Record ids, numbers and quoted values are not the cause: an engine that shifts every date fails many
    rows with one message shape, and the summary says so once."""
    from conformance.report import cause_of, failure_groups

    def failed(flow: str, check: str, detail: str) -> FlowResult:
        return FlowResult(flow, flow, [CheckResult(check, check, "failed", detail)])

    a = "[order-salesorders / create] Customcrm Order 3f1c2d4e-1111-2222-3333-444455556666 has OrderDate='2024-03-31'"
    b = "[quote-quotations / edit-exact] Customcrm Order 9a9a9a9a-1111-2222-3333-444455556666 has OrderDate='1999-1-1'"
    c = "PUT http://exact.test/api answered 500: boom"
    result = RunResult([failed("order-salesorders", "create", a), failed("quote-quotations", "edit-exact", b),
                        failed("customer-accounts", "create", c)], 0, "smoke", "inproc", "builtin", "d", 1.0)
    groups = failure_groups(result)
    assert groups[0] == (cause_of(a), ["order-salesorders / create", "quote-quotations / edit-exact"])
    assert len(groups) == 2 and groups[1][1] == ["customer-accounts / create"]
    shown = "Customcrm Contact 1 has Email='Zoë' ['Zo\\xeb']: the engine changed it"
    assert cause_of(shown) == cause_of("Customcrm Contact 2 has Email='Ann': the engine changed it")
    assert "OrderDate=" in cause_of(a) and "3f1c2d4e" not in cause_of(a)


def test_a_report_replaces_the_last_one_keeps_other_files_and_says_when_nothing_was_checked(tmp_path: Path
                                                                                          ) -> None:
    """A folder never mixes an older run's report with this run's, and what else it holds (a history of runs)
    is kept; a run whose every row was skipped carries a banner (and the command line exits 6)."""
    folder = tmp_path / "latest"
    folder.mkdir()
    (folder / "results.json").write_text('{"an": "older run"}')
    (folder / "history").mkdir()
    skipped = RunResult([FlowResult("product-contacts", "p", [CheckResult("create", "x", "skipped", "why")],
                                    note="why")], 0, "smoke", "inproc", "builtin", "d", 1.0)
    write_reports(skipped, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["history", "junit.xml", "report.html", "report.md",
                                                         "results.json"]
    assert 'id="banner">NOTHING WAS CHECKED' in (folder / "report.html").read_text()
    assert "NOTHING WAS CHECKED" in (folder / "report.md").read_text()
    assert json.loads((folder / "results.json").read_text())["summary"]["nothing_checked"] is True
    (folder / "history").rmdir()
    write_reports(skipped, folder)  # a folder of report files only is replaced whole
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]  # nothing left beside it


def test_the_page_leads_with_what_failed_and_folds_what_passed(tmp_path: Path) -> None:
    """Date, version, the document's hash and lines, a table of contents with counts, failures grouped by
    cause before the flows, passing rows folded, and a junit property per row naming the document line."""
    result = sample()
    result.document = "customcrm-exact.rst"  # the project's own: its lines and hash are looked up
    write_reports(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC · talkcheck ", page) and "SHA-256" in page
    contents = page[page.index('<nav id="contents">'):page.index("</nav>")]
    assert contents.count("<li>") == 3 and "1 passed, " in contents
    assert page.index('id="causes"') < page.index('id="flow-customer-accounts"')
    assert '<a href="#row-customer-accounts-conflict">' in page and 'id="row-customer-accounts-conflict"' in page
    section = page[page.index('id="flow-customer-accounts"'):page.index('id="flow-order-salesorders"')]
    assert section.index('data-check="conflict"') < section.index("<summary>1 passing check</summary>") < \
        section.index('data-check="create"')
    assert "customcrm-exact.rst:" in section  # where the flow is in the document
    assert page.count('type="radio" name="view"') == 4 and "<script" not in page  # filters, without a script
    case = next(c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase") if c.get("name") == "conflict")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["flow"] == "customer-accounts" and properties["document_line"].startswith("customcrm-exact.rst:")


def test_allure_results_one_file_per_row_with_a_stable_history_id(tmp_path: Path) -> None:
    from conformance.allure import write_allure

    write_allure(sample(), tmp_path / "a")
    write_allure(sample(), tmp_path / "b")
    rows = [json.loads(p.read_text()) for p in sorted((tmp_path / "a").glob("*-result.json"))]
    assert len(rows) == 5 and {r["status"] for r in rows} == {"passed", "failed", "skipped"}
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["name"] == "customer-accounts / conflict" and "Draw 1 (Name)" in failed["statusDetails"]["trace"]
    assert {"name": "feature", "value": "customer-accounts"} in failed["labels"] and failed["stage"] == "finished"
    again = {json.loads(p.read_text())["historyId"] for p in (tmp_path / "b").glob("*-result.json")}
    assert again == {r["historyId"] for r in rows}  # Allure follows each row across runs
    assert "seed=7" in (tmp_path / "a" / "environment.properties").read_text()


def test_two_records_that_disagree_are_shown_side_by_side(tmp_path: Path) -> None:
    detail = ("[customer-accounts / link] Customcrm Customer c1 and Exact Accounts e1 disagree: "
              "Email='A@X.nl' in Customcrm but Email='a@x.nl' in Exact; "
              "Name='Zoë' in Customcrm but Name='Zoe' in Exact")
    result = RunResult([FlowResult("customer-accounts", "C", [CheckResult("link", "t", "failed", detail)])], 0,
                       "smoke", "inproc", "builtin", "d", 1.0)
    write_reports(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    table = page[page.index('<table class="records">'):]
    table = table[:table.index("</table>")]
    assert table.count("≠") == 2 and "&#x27;A@X.nl&#x27;" in table and "&#x27;a@x.nl&#x27;" in table


def test_a_failure_carries_its_record_property_and_values_into_every_report(tmp_path: Path) -> None:
    """A failure is data, not only a line: results.json, report.md and report.html show the record, the
    property, what was expected and what was found, each on its own."""
    from conformance.planted import PLANTED_BUGS
    from conformance.runner import run_checklist
    from sync.dataflow import load_dataflow

    bug = next(b for b in PLANTED_BUGS if b.name == "drops-clears" and b.flow == "customer-accounts")
    result = run_checklist(load_dataflow(), flows=[bug.flow], profile="smoke", seed=1, engine_class=bug.engine,
                           checks=[bug.check], shrink=False)
    [row] = result.flows[0].checks
    assert row.status == "failed"
    assert row.failure["flow"] == bug.flow and row.failure["check"].startswith(bug.check)
    assert {"record", "property", "expected", "found"} <= set(row.failure), row.failure
    write_reports(result, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["flows"][0]["checks"][0]["failure"] == row.failure
    assert f"- property: `{row.failure['property']}`" in (tmp_path / "report.md").read_text()
    assert '<dl class="fields">' in (tmp_path / "report.html").read_text()
