"""The checklist's rows as pytest tests: ``pytest conformance/`` (options in conformance/pytest_plugin.py)."""

from __future__ import annotations

import pytest

from conformance.pytest_plugin import ChecklistSession


def test_row(talkcheck_row: tuple[str, str], talkcheck_session: ChecklistSession) -> None:
    flow_id, check_id = talkcheck_row
    result = talkcheck_session.run(flow_id, check_id)
    if result.status == "skipped":
        pytest.skip(result.detail)
    if result.status == "failed":
        pytest.fail(f"{result.detail}\n{result.evidence}".strip(), pytrace=False)
