"""``pytest conformance/`` runs the checklist as plain pytest tests, one per row, also under xdist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from conformance.checks import checks_for
from sync.dataflow import load_dataflow

ROOT = Path(__file__).resolve().parents[2]


def pytest_conformance(*args: str, junit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "conformance/", "-p", "no:cacheprovider", "-q",
                           f"--junitxml={junit}", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def cases(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        state = "failed" if case.find("failure") is not None else "skipped" if case.find("skipped") is not None \
            else "passed"
        out[case.get("name", "")] = state
    return out


def test_one_test_per_row_and_they_pass_under_xdist(tmp_path: Path) -> None:
    """Every row of the flow is a test of its own; spread over two xdist workers (each with its own mocks and
    engine) the rows pass, and a row that does not apply is a skip. A few rows of each kind run: every row
    passing is the checklist's own tests' business."""
    expected = [c.id for c in checks_for(load_dataflow().flow("product-items"))]
    chosen = ["create", "edit-exact", "lines", "property:Code"]
    assert set(chosen) < set(expected)
    done = pytest_conformance("--flow", "product-items", "--profile", "smoke", "-n", "2", "-k",
                              " or ".join(f"[product-items/{c}]" for c in chosen), junit=tmp_path / "j.xml")
    assert done.returncode == 0, done.stdout[-3000:]
    rows = cases(tmp_path / "j.xml")
    assert sorted(rows) == sorted(f"test_row[product-items/{c}]" for c in chosen)
    assert rows["test_row[product-items/lines]"] == "skipped" and rows["test_row[product-items/create]"] == "passed"
    assert rows["test_row[product-items/property:Code]"] == "passed"


def test_failures_name_the_flow_and_check(tmp_path: Path) -> None:
    done = pytest_conformance("--flow", "product-items", "--profile", "smoke", "--engine", "cmd:true", "-k",
                              "create", junit=tmp_path / "j.xml")
    assert done.returncode == 1
    rows = cases(tmp_path / "j.xml")
    assert rows["test_row[product-items/create]"] == "failed"
    assert "[product-items / create]" in done.stdout
