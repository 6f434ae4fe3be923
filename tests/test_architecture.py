"""The dependency rule of ARCHITECTURE.md, checked on every import in the tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "sync": ("mocks", "conformance", "tests"),
    "mocks": ("sync", "conformance", "tests"),
    "conformance": ("tests",),
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_rule(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imports(path) & set(FORBIDDEN[package])
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders


# The checklist judges engines, so it reads the document with its own planner (conformance/planner.py) and
# compares values by its own reading of both APIs. The engine's parts are imported only where the checklist
# drives talkcheck's own engine as the engine under test (or plants bugs in it).
ENGINE_PARTS = ("sync.engine", "sync.connectors", "sync.store", "sync.values", "sync.http", "sync.planning",
                "sync.conversion", "sync.linking", "sync.reports", "sync.lines", "sync.users", "sync.sides")
DRIVES_THE_ENGINE = {"conformance/engines.py", "conformance/planted.py", "conformance/runner.py"}


def full_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_checklist_takes_nothing_from_the_engine_it_judges() -> None:
    offenders = []
    for path in sorted((ROOT / "conformance").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        used = {m for m in full_imports(path) if m.startswith(ENGINE_PARTS)}
        if used and name not in DRIVES_THE_ENGINE:
            offenders.append(f"{name} imports {sorted(used)}")
    assert not offenders, offenders


# moto's split: a mock's models know nothing of HTTP; its routes and its admin plane do.
HTTP_MODULES = ("fastapi", "starlette", "uvicorn", "mocks.common.admin", "mocks.common.asgi")


@pytest.mark.parametrize("state", ["mocks/exact/state.py", "mocks/customcrm/state.py"])
def test_a_mock_s_state_knows_nothing_of_http(state: str) -> None:
    used = {m for m in full_imports(ROOT / state) if m.startswith(HTTP_MODULES)}
    assert not used, f"{state} imports {sorted(used)}"
    # nor through what it imports (its errors, its limits, its fault rules): loaded alone, it loads no web stack
    module = state.removesuffix(".py").replace("/", ".")
    probe = (f"import sys, {module}; print(sorted({{n for n in sys.modules if n.split('.')[0] in "
             "('fastapi', 'starlette', 'uvicorn', 'httpx')}))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", f"{state} loads {loaded.stdout.strip()}"


def test_the_checks_import_one_another_one_way_only() -> None:
    """The users flow's checks and the generic checks both build on the registry; the generic module picks
    the users flow's, never the other way round (no cycle, no import hidden inside a function)."""
    user_checks = full_imports(ROOT / "conformance" / "user_checks.py")
    assert "conformance.checks" not in user_checks
    assert "conformance.registry" in user_checks
    registry = full_imports(ROOT / "conformance" / "registry.py")
    assert not {m for m in registry if m in ("conformance.checks", "conformance.user_checks")}
