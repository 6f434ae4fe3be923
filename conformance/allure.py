"""Allure results (``talkcheck run --allure-dir DIR``): one ``{uuid}-result.json`` per checklist row, in
Allure 2's test result format, plus ``environment.properties``, so a team that runs Allure gets its dashboard,
history and trends for the checklist from its usual ``allure generate DIR``.

A row's history is keyed on the flow and the check (``historyId``), so Allure follows a row across runs.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from conformance.runner import RunResult

__all__ = ["write_allure"]


def _row(result: RunResult, flow_id: str, flow_title: str, check: Any, stop_ms: int) -> dict[str, Any]:
    full_name = f"talkcheck.{flow_id}.{check.id}"
    identity = hashlib.md5(full_name.encode(), usedforsecurity=False).hexdigest()
    start_ms = stop_ms - round(check.duration_s * 1000)
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "historyId": identity,
        "testCaseId": identity,
        "fullName": full_name,
        "name": f"{flow_id} / {check.id}",
        "description": check.title,
        "status": check.status,
        "stage": "finished",
        "start": start_ms,
        "stop": stop_ms,
        "labels": [
            {"name": "framework", "value": "talkcheck"},
            {"name": "parentSuite", "value": result.document},
            {"name": "suite", "value": flow_title},
            {"name": "feature", "value": flow_id},
            {"name": "story", "value": check.id},
        ],
        "parameters": [{"name": name, "value": str(value)} for name, value in (
            ("profile", result.profile), ("seed", result.seed), ("engine", result.engine),
            ("target", result.target))],
        "links": [],
        "steps": [],
        "attachments": [],
    }
    if check.status != "passed" and (check.detail or check.evidence):
        out["statusDetails"] = {"message": check.detail, "trace": check.evidence}
    return out


def write_allure(result: RunResult, directory: str | Path) -> list[Path]:
    """Write every row's result file and the environment; returns the files written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    stop_ms = round(time.time() * 1000)
    written = []
    for flow in result.flows:
        for check in flow.checks:
            row = _row(result, flow.id, flow.title, check, stop_ms)
            path = out / f"{row['uuid']}-result.json"
            path.write_text(json.dumps(row, indent=1), encoding="utf-8")
            written.append(path)
    environment = out / "environment.properties"
    environment.write_text("".join(f"{key}={value}\n" for key, value in (
        ("document", result.document), ("target", result.target), ("engine", result.engine),
        ("profile", result.profile), ("seed", result.seed), ("mode", result.mode))), encoding="utf-8")
    written.append(environment)
    return written
