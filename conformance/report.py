"""The QA report: report.html, report.md, junit.xml and results.json, in the document's order of flows."""

from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import re
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from conformance.runner import CheckResult, FlowResult, RunResult, as_json
from sync.dataflow import DEFAULT_DOCUMENT, parse_dataflow

__all__ = ["engine_budget", "failure_groups", "first_line", "replay_command", "write_reports"]

_ICON = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def first_line(text: str) -> str:
    """A reason's first line, whole: the word that matters is often the last one."""
    return text.strip().splitlines()[0] if text.strip() else ""


_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b\d+(?:\.\d+)?\b", re.I)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def cause_of(detail: str) -> str:
    """A failure's probable cause: its first line with the flow/check prefix, record ids, numbers and quoted
    values taken out, so that one defect failing many rows reads as one shape."""
    shape = _PREFIX.sub("", first_line(detail))
    shape = _QUOTED.sub("…", _IDS.sub("#", shape)).replace("… […]", "…")  # a value's code points are the value
    return re.sub(r"\s+", " ", shape)[:240]


def failure_groups(result: RunResult) -> list[tuple[str, list[str]]]:
    """The failed rows grouped by probable cause, the largest group first: (cause, ["flow / check", ...])."""
    groups: dict[str, list[str]] = {}
    for flow in result.flows:
        for check in flow.checks:
            if check.status == "failed":
                groups.setdefault(cause_of(check.detail), []).append(f"{flow.id} / {check.id}")
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def _markdown(result: RunResult) -> str:
    data = as_json(result)
    s = data["summary"]
    lines = [
        "# talkcheck QA report",
        "",
        f"Document: `{result.document}` · target `{result.target}` · engine `{result.engine}` · "
        f"profile `{result.profile}` · seed `{result.seed}`",
        "",
        *([f"> **{result.banner}**", ""] if result.banner else []),
        *([f"Tolerances declared (a property compared through them, not strictly): {'; '.join(result.tolerances)}",
           ""] if result.tolerances else []),
        f"**{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped** in {s['duration_s']} s.",
        "",
        f"Replay: `{replay_command(result)}`",
        "",
        "Calls made to each system: " + (", ".join(f"{system} {count}" for system, count in result.calls.items())
                                         or "not counted for this target"),
        "",
        *([f"The checklist's calls per phase: {_phases_line(result)}", ""] if result.phases else []),
        *([f"Sandbox (safe mode): {_sandbox_line(result)}", "", *(f"- left behind: {t}" for t in
                                                                   result.sandbox["left"]), ""]
          if result.sandbox else []),
    ]
    for flow in result.flows:
        lines += [f"## {flow.title}", ""]
        if flow.note:
            lines += [f"> {flow.note}", ""]
        lines += ["| check | status | detail | checklist calls |", "| --- | --- | --- | --- |"]
        for check in flow.checks:
            detail = (check.detail or check.title).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{check.id}` | {_ICON[check.status]} | {detail} | {_calls(check)} |")
        lines.append("")
        for check in flow.checks:
            if check.status == "failed" and (check.evidence or check.failure):
                lines += [f"### {flow.id} / {check.id}: evidence", ""]
                lines += [f"- {label}: `{check.failure[key]}`" for key, label in _FIELDS if check.failure.get(key)]
                lines += ["", "```", check.evidence, "```", ""] if check.evidence else [""]
    return "\n".join(lines)


def _sandbox_line(result: RunResult) -> str:
    info = result.sandbox
    engine = engine_budget(info)
    limits = "; ".join(f"{system}: waited {state['waited_s']} s for its rate limit, {state['refused_429']} answers "
                       "429 (each waited out)" + (f", {state['day_left']} calls left today"
                                                   if state.get("day_left") is not None else "")
                       for system, state in sorted(info.get("limits", {}).items()))
    return (f"run id {info['run_id']} (in the merge keys of every record it created); the checklist made "
            f"{sum(result.calls.values())} of its {info['call_budget']} calls; {info['removed']} records removed "
            f"afterwards, {len(info['left'])} left behind" + (f". {limits}" if limits else "")
            + (f". Run manifest kept for `talkcheck cleanup`: {info['manifest']}" if info.get("manifest") else "")
            + (f". {engine}" if engine else ""))


def engine_budget(info: dict[str, Any]) -> str:
    """The engine's own calls as it reported them, and which app's budget they came from."""
    calls = info.get("engine_calls") or {}
    if not calls:
        return ""
    app = "its own Exact app (not the checklist's budget)" if info.get("engine_own_app") else \
        "the checklist's Exact app (the config names no [engine_exact])"
    return (f"The engine under test reported {', '.join(f'{k} {v}' for k, v in sorted(calls.items()))} calls of its "
            f"own, on {app}")


def _calls(check: CheckResult) -> str:
    """The checklist's own calls for one row, per system (a check run side by side shares its phase's)."""
    return " · ".join(f"{system} {count}" for system, count in sorted(check.calls.items())) or "–"


def _phases_line(result: RunResult) -> str:
    """Each phase of the run with the checklist's calls per system (and the engine passes it shared)."""
    parts = []
    for phase, counts in result.phases.items():
        calls = ", ".join(f"{system} {n}" for system, n in sorted(counts.items()) if system != "engine passes")
        passes = f", {counts['engine passes']} engine passes" if counts.get("engine passes") else ""
        parts.append(f"{phase}: {calls or 'no calls'}{passes}")
    return "; ".join(parts) + (" (checks run side by side share their phase's calls)"
                               if "side by side" in result.phases else "")


def replay_command(result: RunResult, flow: str | None = None, check: str | None = None) -> str:
    """The command that replays this run (or one flow of it, or one check of that flow) exactly."""
    parts = ["talkcheck run", f"--profile {result.profile}", f"--seed {result.seed}"]
    if result.document != "customcrm-exact.rst":
        parts.append(f"--doc {result.document}")
    if result.target != "inproc":
        parts.append(f"--target {result.target}")
    if result.sandbox:
        parts.append("--config SANDBOX.toml")
    if result.engine != "builtin":
        parts.append(f"--engine '{result.engine}'")
    if result.mode != "batched":
        parts.append(f"--mode {result.mode}")
    parts.extend(f"--tolerate '{t}'" for t in result.tolerances)
    if flow:
        parts.append(f"--flow {flow}")
    if check:
        parts.append(f"--check {check}")
    return " ".join(parts)


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:20px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#c9d1e0}main{padding:20px 32px;max-width:1400px;margin:0 auto}
header a,header code{color:#fff}nav ul{margin:4px 0 18px;padding-left:18px}nav li{margin:2px 0}
.causes li{margin:4px 0}.err{background:#fdeeee;border-left:3px solid #c62828;padding:6px 10px;margin:6px 0;
border-radius:3px;color:#7f1d1d;white-space:pre-wrap}.skip{background:#fff8e1;padding:4px 8px;margin:4px 0;
border-radius:3px}tr.check.failed td:first-child{border-left:3px solid #c62828}.where{color:#5b6478;font-size:12px}
.banner{background:#fde8e8;border:2px solid #c81e1e;border-radius:8px;padding:12px 18px;font-weight:600;
color:#9b1c1c}.summary{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px}
.tile{background:#fff;border-radius:8px;padding:12px 18px;
box-shadow:0 1px 2px #0002;min-width:110px}.tile b{display:block;font-size:26px}
.passed{color:#17813c}.failed{color:#c62828}.skipped{color:#8a6d00}tr.check{color:#1d2433}
table.records{margin:6px 0;width:auto}table.records td{background:#fff7f7}.diff{color:#c62828;font-weight:700}
.mark{display:inline-block;margin-top:4px;font-size:11px;font-weight:700;text-transform:uppercase;color:#3451b2}
.bar{display:inline-block;height:10px;background:#17813c;border-radius:2px}table.trend{width:auto}
section{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;margin:0 0 18px;padding:4px 18px 14px}
section h2{font-size:18px;margin:14px 0 4px}.note{background:#fff8e1;padding:6px 10px;border-radius:4px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #e6e8ee;
vertical-align:top}th{font-size:12px;text-transform:uppercase;color:#5b6478}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff}
.badge.passed{background:#17813c}.badge.failed{background:#c62828}.badge.skipped{background:#b08a00}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{white-space:pre-wrap;background:#f3f4f7;padding:8px;border-radius:4px;max-height:420px;overflow:auto}
details summary{cursor:pointer;color:#3451b2}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:4px 0}dl.fields dt{color:#5b6478}
dl.fields dd{margin:0}
"""


def _document_info(result: RunResult) -> tuple[str, dict[tuple[str, str], int]]:
    """The document's SHA-256 and its line per row ((flow, check) -> line; (flow, "") for the section), read
    again from the document the run named (nothing when it cannot be read any more)."""
    try:
        if Path(result.document).is_file():
            raw = Path(result.document).read_bytes()
        else:
            raw = resources.files("dataflows").joinpath(DEFAULT_DOCUMENT).read_bytes()
        doc = parse_dataflow(raw.decode("utf-8"), name=result.document)
    except (OSError, ValueError):
        return "", {}
    lines: dict[tuple[str, str], int] = {}
    for flow in doc.flows:
        lines[(flow.id, "")] = flow.line
        for row in flow.properties:
            lines[(flow.id, f"property:{row.id}")] = row.line
    return hashlib.sha256(raw).hexdigest(), lines


def _row_html(result: RunResult, flow: FlowResult, check: CheckResult, lines: dict[tuple[str, str], int]) -> str:
    e = html.escape
    line = lines.get((flow.id, check.id)) or lines.get((flow.id, ""))
    where = f'<div class="where">{e(result.document)}:{line}</div>' if line else ""
    body = f"<div>{e(check.title)}</div>{where}"
    if check.status == "failed":
        body += f'<div class="err">{e(check.detail)}</div>' + _fields(check.failure) + _side_by_side(check.detail)
        body += (f"<details><summary>evidence and replay</summary><p>Replay: <code>"
                 f"{e(replay_command(result, flow.id, check.id))}</code></p>"
                 + (f"<pre>{e(check.evidence)}</pre>" if check.evidence else "<p>No example was recorded.</p>")
                 + "</details>")
    elif check.status == "skipped" and check.detail and check.detail != flow.note:
        body += f'<div class="skip">{e(check.detail)}</div>'
    label = result.marks.get((flow.id, check.id), "")
    mark = f'<br><span class="mark">{e(label)}</span>' if label else ""
    return (f'<tr class="check {check.status}" id="row-{e(flow.id)}-{e(check.id)}" data-check="{e(check.id)}">'
            f'<td><code>{e(check.id)}</code></td><td><span class="badge {check.status}">{check.status}</span>{mark}'
            '</td>'
            f'<td>{body}</td><td class="calls">{e(_calls(check))}</td></tr>')


_FIELDS = (("record", "record"), ("property", "property"), ("expected", "expected"), ("found", "found"))


def _fields(failure: dict[str, str]) -> str:
    """A failure's record, property, expected and found values, each on its own (where the check knew them)."""
    shown = [(label, failure[key]) for key, label in _FIELDS if failure.get(key)]
    if not shown:
        return ""
    e = html.escape
    return '<dl class="fields">' + "".join(f"<dt>{e(label)}</dt><dd><code>{e(value)}</code></dd>"
                                           for label, value in shown) + "</dl>"


_MISMATCH = re.compile(r"^(?P<crm_field>[\w.:]+)=(?P<crm>.*) in Customcrm but (?P<exact_field>[\w.:]+)=(?P<exact>.*) "
                       r"in Exact$")


def _side_by_side(detail: str) -> str:
    """Where two records disagree, the differing properties in a table: Customcrm's value beside Exact's."""
    head, _, rest = detail.partition(" disagree: ")
    rows = [m for part in rest.split("; ") if (m := _MISMATCH.match(part.strip()))] if rest else []
    if not rows:
        return ""
    e = html.escape
    cells = "".join(f"<tr><td class=\"diff\">≠</td><td><code>{e(m['crm_field'])}</code></td><td><code>{e(m['crm'])}"
                    f"</code></td><td><code>{e(m['exact_field'])}</code></td><td><code>{e(m['exact'])}</code></td></tr>"
                    for m in rows)
    return ('<table class="records"><thead><tr><th></th><th>Customcrm property</th><th>Customcrm value</th>'
            f"<th>Exact property</th><th>Exact value</th></tr></thead><tbody>{cells}</tbody></table>")


_VIEWS = (("all", "every row"), ("failures", "failures only"), ("properties", "property rows"),
          ("rules", "flow rules"))
_FILTER_CSS = """
#filters{margin:0 0 12px}#filters label{margin:0 12px 0 3px}
main:has(#view-failures:checked) tr.check:not(.failed),main:has(#view-failures:checked) details.passing,
main:has(#view-failures:checked) section[id^="flow-"]:not(:has(tr.check.failed)){display:none}
main:has(#view-properties:checked) tr.check:not([data-check^="property:"]){display:none}
main:has(#view-rules:checked) tr.check[data-check^="property:"]{display:none}
main:has(#view-properties:checked) details.passing,main:has(#view-rules:checked) details.passing{display:block}
main:has(#view-properties:checked) details.passing>table,main:has(#view-rules:checked) details.passing>table{
display:table}
"""
_HEAD = ("<table><thead><tr><th>check</th><th>status</th><th>what it checks / what went wrong</th>"
         "<th>checklist calls</th></tr></thead><tbody>")


def _html(result: RunResult, digest: str, lines: dict[tuple[str, str], int]) -> str:
    """One self-contained page: no scripts, no external styles, fonts or images. Passing rows fold away;
    failures come first, grouped by probable cause."""
    data = as_json(result)
    s = data["summary"]
    e = html.escape
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = {f.id: {st: sum(c.status == st for c in f.checks) for st in ("passed", "failed", "skipped")}
              for f in result.flows}
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>talkcheck QA report: {e(result.document)}</title><style>{_CSS}{_FILTER_CSS}</style></head><body>",
        "<header><h1>talkcheck QA report</h1>",
        f"<p>{e(when)} · talkcheck {e(_version())} · Python {e(platform.python_version())} on "
        f"{e(platform.system())} {e(platform.machine())}</p>",
        f"<p>Document <code>{e(result.document)}</code>" + (f" (SHA-256 <code>{digest[:16]}…</code>)" if digest else "")
        + f" · target <code>{e(result.target)}</code> · engine <code>{e(result.engine)}</code> · profile "
        f"<code>{e(result.profile)}</code> · seed <code>{result.seed}</code> · mode <code>{e(result.mode)}</code></p>",
        f"<p>Replay: <code>{e(replay_command(result))}</code></p>",
        *([f'<p class="note" id="tolerances">Tolerances declared (these properties were compared through them, '
           f'not strictly): {e("; ".join(result.tolerances))}</p>'] if result.tolerances else []),
        *([f'<p class="note" id="sandbox">Sandbox, safe mode: {e(_sandbox_line(result))}</p>',
           *(f'<p class="note">Left behind: {e(t)}</p>' for t in result.sandbox["left"])] if result.sandbox else []),
        "</header><main>",
        *([f'<p class="banner" id="banner">{e(result.banner)}</p>'] if result.banner else []),
        '<div class="summary" id="summary">',
        f'<div class="tile"><b class="passed">{s["passed"]}</b>passed</div>',
        f'<div class="tile"><b class="failed">{s["failed"]}</b>failed</div>',
        f'<div class="tile"><b class="skipped">{s["skipped"]}</b>skipped</div>',
        f'<div class="tile"><b>{s["duration_s"]:.0f} s</b>duration</div>',
        *(f'<div class="tile"><b>{count}</b>calls to {e(system)}</div>' for system, count in result.calls.items()),
        "</div>",
        *([f'<p class="note" id="phases">The checklist\'s calls per phase: {e(_phases_line(result))}</p>']
          if result.phases else []),
        *_baseline_html(result),
        # Filters without a script: a radio button per view, and CSS that hides what the checked one leaves out.
        '<div id="filters"><b>Show</b> ',
        *(f'<input type="radio" name="view" id="view-{key}"{" checked" if key == "all" else ""}>'
          f'<label for="view-{key}">{label}</label> ' for key, label in _VIEWS),
        "</div>",
        '<nav id="contents"><b>Flows</b><ul>',
        *(f'<li><a href="#flow-{e(f.id)}">{e(f.title)}</a> · {counts[f.id]["passed"]} passed, '
          f'<span class="failed">{counts[f.id]["failed"]} failed</span>, {counts[f.id]["skipped"]} skipped</li>'
          for f in result.flows),
        "</ul></nav>",
    ]
    groups = failure_groups(result)
    if groups:
        out.append(f'<section id="causes"><h2>Failures by probable cause ({len(groups)})</h2><ul class="causes">')
        for cause, rows in groups:
            links = ", ".join(f'<a href="#row-{e(r.replace(" / ", "-"))}">{e(r)}</a>' for r in rows)
            out.append(f"<li><b>{len(rows)} ×</b> <code>{e(cause)}</code><br>{links}</li>")
        out.append("</ul></section>")
    for flow in result.flows:
        n = counts[flow.id]
        state = "failed" if n["failed"] else ("skipped" if not n["passed"] else "passed")
        label = "PARTIAL" if result.interrupted and state != "failed" else state.upper()
        out.append(f'<section id="flow-{e(flow.id)}"><h2>{e(flow.title)} '
                   f'<span class="badge {state}">{label}</span></h2>'
                   f'<p class="where">{n["passed"]} passed, {n["failed"]} failed, {n["skipped"]} skipped'
                   + (f" · {e(result.document)}:{lines[(flow.id, '')]}" if (flow.id, "") in lines else "") + "</p>")
        if flow.note:
            out.append(f'<p class="note">{e(flow.note)}</p>')
        shown = [c for c in flow.checks if c.status != "passed"]
        folded = [c for c in flow.checks if c.status == "passed"]
        if shown:
            out.append(_HEAD + "".join(_row_html(result, flow, c, lines) for c in shown) + "</tbody></table>")
        if folded:
            plural = "s" * (len(folded) != 1)
            out.append(f'<details class="passing"><summary>{len(folded)} passing check{plural}</summary>' + _HEAD
                       + "".join(_row_html(result, flow, c, lines) for c in folded) + "</tbody></table></details>")
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out)


def _baseline_html(result: RunResult) -> list[str]:
    """What changed since the baseline, and the pass counts of the earlier runs beside this one."""
    if not result.baseline:
        return []
    e = html.escape
    marks = list(result.marks.values())
    tally = ", ".join(f"{marks.count(m)} {m}" for m in ("new failure", "fixed", "still failing", "newly skipped"))
    out = [f'<p class="note" id="baseline">Against the baseline <code>{e(result.baseline)}</code>: {e(tally)}.</p>']
    if result.trend:
        runs = [*result.trend, ("this run", {k: result.count(k) for k in ("passed", "failed", "skipped")})]
        most = max(sum(c.values()) for _label, c in runs) or 1
        out.append('<div id="trend"><b>Passed per run</b><table class="trend">')
        for label, counts in runs:
            width = round(200 * counts["passed"] / most)
            out.append(f'<tr><td>{e(label)}</td><td><span class="bar" style="width:{width}px"></span> '
                       f'{counts["passed"]} passed, {counts["failed"]} failed</td></tr>')
        out.append("</table></div>")
    return out


def _version() -> str:
    try:
        return version("talkcheck")
    except PackageNotFoundError:
        return "(not installed)"


def _junit(result: RunResult, lines: dict[tuple[str, str], int]) -> bytes:
    suites = ET.Element("testsuites", name="talkcheck", tests=str(sum(len(f.checks) for f in result.flows)),
                        failures=str(result.count("failed")), skipped=str(result.count("skipped")),
                        time=f"{result.duration_s:.3f}")
    for flow in result.flows:
        suite = ET.SubElement(suites, "testsuite", name=flow.id, tests=str(len(flow.checks)),
                              failures=str(sum(c.status == "failed" for c in flow.checks)),
                              skipped=str(sum(c.status == "skipped" for c in flow.checks)))
        for check in flow.checks:
            case = ET.SubElement(suite, "testcase", classname=flow.id, name=check.id, time=f"{check.duration_s:.3f}")
            properties = ET.SubElement(case, "properties")
            line = lines.get((flow.id, check.id)) or lines.get((flow.id, ""))
            for name, value in (("flow", flow.id), ("check", check.id),
                                ("document_line", f"{result.document}:{line}" if line else "")):
                if value:
                    ET.SubElement(properties, "property", name=name, value=value)
            if check.status == "failed":
                failure = ET.SubElement(case, "failure", message=check.detail[:500])
                failure.text = check.evidence or check.detail
            elif check.status == "skipped":
                ET.SubElement(case, "skipped", message=check.detail)
    data: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return data


def write_reports(result: RunResult, directory: str | Path) -> list[Path]:
    """Every report file, written beside the folder first and then moved into its place at once, so the
    folder never mixes this run's files with an older run's (or holds half a report). A folder holding
    anything else keeps it: there the files are replaced one by one, each whole."""
    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    digest, lines = _document_info(result)  # the document is read again once, for both
    files = {
        "report.html": _html(result, digest, lines).encode("utf-8"),
        "results.json": json.dumps(as_json(result), indent=2).encode("utf-8"),
        "report.md": _markdown(result).encode("utf-8"),
        "junit.xml": _junit(result, lines),
    }
    if out.exists() and any(p.name not in files for p in out.iterdir()):
        # A folder that holds more than a report (a history of runs, say) is never replaced: each file is
        # written beside its place and moved in, so none is ever half-written.
        for name, content in files.items():
            temporary = out / f".{name}.{os.getpid()}.tmp"
            temporary.write_bytes(content)
            os.replace(temporary, out / name)
        return [out / name for name in files]
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    for name, content in files.items():
        (staging / name).write_bytes(content)
    staging.chmod(0o755)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return [out / name for name in files]
