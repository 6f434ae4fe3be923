"""ruff on the whole tree and mypy (strict) on sync/, mocks/ and conformance/, as part of the test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ruff() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy_strict_on_sync_mocks_and_conformance() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


CLASS_LINES_AT_MOST = 300


def test_no_class_of_the_three_packages_is_over_300_lines() -> None:
    """A class that grows past a screenful of screens is doing several jobs: split it (the engine's pass, its
    linking and its conversions; a check's drawing, comparing and users) before it grows further."""
    import ast

    too_long = []
    for package in ("sync", "mocks", "conformance"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                    lines = node.end_lineno - node.lineno + 1
                    if lines > CLASS_LINES_AT_MOST:
                        too_long.append(f"{path.relative_to(ROOT)}: {node.name} ({lines} lines)")
    assert not too_long, too_long
