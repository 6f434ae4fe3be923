"""The QA report: results.json, report.md and junit.xml, in the document's order of flows."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from conformance.runner import RunResult, as_json

__all__ = ["write_reports"]

_ICON = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def _markdown(result: RunResult) -> str:
    data = as_json(result)
    s = data["summary"]
    lines = [
        "# talkcheck QA report",
        "",
        f"Document: `{result.document}` · target `{result.target}` · engine `{result.engine}` · "
        f"profile `{result.profile}` · seed `{result.seed}`",
        "",
        f"**{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped** in {s['duration_s']} s.",
        "",
        f"Replay: `talkcheck run --profile {result.profile} --seed {result.seed}"
        + (f" --target {result.target}" if result.target != "inproc" else "") + "`",
        "",
    ]
    for flow in result.flows:
        lines += [f"## {flow.title}", ""]
        if flow.note:
            lines += [f"> {flow.note}", ""]
        lines += ["| check | status | detail |", "| --- | --- | --- |"]
        for check in flow.checks:
            detail = (check.detail or check.title).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{check.id}` | {_ICON[check.status]} | {detail} |")
        lines.append("")
        for check in flow.checks:
            if check.status == "failed" and check.evidence:
                lines += [f"### {flow.id} / {check.id}: evidence", "", "```", check.evidence, "```", ""]
    return "\n".join(lines)


def _junit(result: RunResult) -> bytes:
    suites = ET.Element("testsuites", name="talkcheck", tests=str(sum(len(f.checks) for f in result.flows)),
                        failures=str(result.count("failed")), skipped=str(result.count("skipped")),
                        time=f"{result.duration_s:.3f}")
    for flow in result.flows:
        suite = ET.SubElement(suites, "testsuite", name=flow.id, tests=str(len(flow.checks)),
                              failures=str(sum(c.status == "failed" for c in flow.checks)),
                              skipped=str(sum(c.status == "skipped" for c in flow.checks)))
        for check in flow.checks:
            case = ET.SubElement(suite, "testcase", classname=flow.id, name=check.id, time=f"{check.duration_s:.3f}")
            if check.status == "failed":
                failure = ET.SubElement(case, "failure", message=check.detail[:500])
                failure.text = check.evidence or check.detail
            elif check.status == "skipped":
                ET.SubElement(case, "skipped", message=check.detail)
    data: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return data


def write_reports(result: RunResult, directory: str | Path) -> list[Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results.json": json.dumps(as_json(result), indent=2).encode("utf-8"),
        "report.md": _markdown(result).encode("utf-8"),
        "junit.xml": _junit(result),
    }
    written = []
    for name, content in files.items():
        path = out / name
        path.write_bytes(content)
        written.append(path)
    return written
