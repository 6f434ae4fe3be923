"""The checklist as plain pytest: ``pytest conformance/ [--doc PATH] [--target ...] [--engine ...]
[--profile ...] [--seed N] [--flow NAME ...]``, one test per checklist row, so it fits an existing CI and
its reporting (``--junitxml``, ``-k``, ``-n auto`` with pytest-xdist).

Under xdist every worker process starts its own mocks and engine, so rows spread over cores (or machines)
without sharing state. A row's outcome is the same as in ``talkcheck run`` with the same options.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from conformance.checks import checks_for
from conformance.context import FlowContext
from conformance.engines import EngineDriver, make_driver, target_for, validate_engine
from conformance.planner import document_problems
from conformance.runner import PROFILES, CheckResult, document_slots, run_check
from conformance.systems import Systems
from sync.dataflow import Dataflow, DataflowError, load_dataflow

__all__ = ["ChecklistSession"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talkcheck", "the talkcheck checklist")
    group.addoption("--doc", default=None, help="a dataflow document (default: the project's own)")
    group.addoption("--target", default="inproc", choices=["inproc", "server"])
    group.addoption("--engine", default="builtin", help="builtin or cmd:COMMAND")
    group.addoption("--profile", default="ci", choices=sorted(PROFILES))
    group.addoption("--seed", type=int, default=0)
    group.addoption("--flow", action="append", dest="talkcheck_flows", metavar="NAME", help="only this flow")


def _document(config: pytest.Config) -> Dataflow:
    path = config.getoption("--doc")
    try:
        return load_dataflow(path) if path else load_dataflow()
    except DataflowError as exc:
        pytest.exit(f"talkcheck: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_configure(config: pytest.Config) -> None:
    """A wrong --flow or --doc is a usage error, said in one line (as the command line says it) with pytest's
    usage exit code, not a collection error with a traceback."""
    wanted = config.getoption("talkcheck_flows", None)
    if not wanted and not config.getoption("--doc", None):
        return
    doc = _document(config)
    problems = document_problems(doc)
    if problems:
        pytest.exit("talkcheck: " + "\ntalkcheck: ".join(problems[:20]), returncode=pytest.ExitCode.USAGE_ERROR)
    known = {flow.id for flow in doc.flows}
    unknown = [f for f in wanted or [] if f not in known]
    if unknown:
        pytest.exit(f"talkcheck: no flow {unknown[0]!r} in {doc.name}; known: {', '.join(sorted(known))}",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per row of the checklist: every check of every selected flow, in the document's order."""
    if "talkcheck_row" not in metafunc.fixturenames:
        return
    doc = _document(metafunc.config)
    wanted = metafunc.config.getoption("talkcheck_flows")
    unknown = [f for f in wanted or [] if f not in {flow.id for flow in doc.flows}]
    if unknown:
        raise pytest.UsageError(f"no flow {unknown[0]!r} in {doc.name}")
    rows = [(flow.id, check.id) for flow in doc.flows if not wanted or flow.id in wanted
            for check in checks_for(flow)]
    metafunc.parametrize("talkcheck_row", rows, ids=[f"{f}/{c}" for f, c in rows])


@dataclass
class ChecklistSession:
    """The mocks and the engine of one pytest process, and a context per flow (made when first needed)."""

    doc: Dataflow
    profile: str
    seed: int
    systems: Systems
    driver: EngineDriver
    contexts: dict[str, FlowContext | str] = field(default_factory=dict)
    slots: dict[tuple[str, str], int] = field(default_factory=dict)  # each row's place in the document

    def context(self, flow_id: str) -> FlowContext | str:
        if flow_id not in self.contexts:
            self.contexts[flow_id] = FlowContext.for_flow(self.doc.flow(flow_id), self.doc, self.systems, self.driver)
        return self.contexts[flow_id]

    def run(self, flow_id: str, check_id: str) -> CheckResult:
        check = next(c for c in checks_for(self.doc.flow(flow_id)) if c.id == check_id)
        ctx = self.context(flow_id)
        if not isinstance(ctx, str):
            if not self.slots:
                self.slots = document_slots(self.doc)
            ctx.slot = self.slots[(flow_id, check_id)]  # the same data as in talkcheck run
        return run_check(check, ctx, self.profile, self.seed)


@pytest.fixture(scope="session")
def talkcheck_session(request: pytest.FixtureRequest) -> Iterator[ChecklistSession]:
    config = request.config
    doc = _document(config)
    engine: str = config.getoption("--engine")
    try:
        validate_engine(engine)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    systems = Systems.start(target_for(engine, config.getoption("--target")), config.getoption("--seed"))
    driver = make_driver(engine, doc, systems)
    session = ChecklistSession(doc, config.getoption("--profile"), config.getoption("--seed"), systems, driver)
    try:
        yield session
    finally:
        driver.close()
        systems.close()
