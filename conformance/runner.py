"""Run the checklist: every check of every selected flow, as a Hypothesis property, into results."""

from __future__ import annotations

import inspect
import itertools
import multiprocessing
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from queue import Empty
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import run_state_machine_as_test

from conformance.checks import Check, checks_for
from conformance.context import (
    REFERENCE_KINDS,
    CheckFailure,
    FlowContext,
    NotApplicable,
    create_references,
    skip_the_simplest,
)
from conformance.disruption import Disruption, disrupted_pass
from conformance.engines import EngineDriver, make_driver, target_for, validate_engine
from conformance.failures import EngineError, PassNotRun
from conformance.lockstep import Lockstep, run_side_by_side
from conformance.planner import plan_checks
from conformance.property_rows import RowOutcome, run_property_rows
from conformance.registry import Status
from conformance.sandbox import BudgetExhausted, SandboxSettings
from conformance.strategies import reset_unique
from conformance.systems import Systems
from conformance.tolerance import Tolerances, described
from sync.dataflow import Dataflow, Flow, PropertyRow
from sync.engine import Engine
from sync.errors import ConfigError
from sync.service import scrub

__all__ = ["MODES", "PROFILES", "CheckResult", "FlowResult", "RunResult", "run_check", "run_checklist"]

PROFILES: dict[str, int] = {"smoke": 2, "ci": 8, "thorough": 60}
# Examples per check against a sandbox. Each example of each check costs about three of Exact's calls (its
# record's edits and, at the end, its delete; the reads are shared), and Exact gives an app 5,000 calls a day
# and 60 a minute: the sandbox profiles are sized so that a smoke run stays near 300 calls (five minutes at
# the limit) and a ci run near 1,000 (about twenty). The mocks, which cost nothing, run the full profiles.
SANDBOX_PROFILES: dict[str, int] = {"smoke": 1, "ci": 3, "thorough": 12}
# Lanes per check side by side (batched): each runs its share of the profile's examples, with its own seed.
LANES: dict[str, int] = {"smoke": 2, "ci": 4, "thorough": 6}
LANE_SEED_STEP = 7919
# How the examples run: side by side in shared engine passes (batched), or each alone on reset systems.
MODES = ("batched", "per-example")
# Steps per state-machine example (creates, edits, deletes, passes) by profile.
STEPS: dict[str, int] = {"smoke": 8, "ci": 12, "thorough": 30}
# Against a sandbox, fewer at smoke: the state machine's steps set the number of engine passes of the whole
# batch, and each pass costs a read of every collection the checks look at.
SANDBOX_STEPS: dict[str, int] = {"smoke": 5, "ci": 12, "thorough": 30}


@dataclass
class CheckResult:
    id: str
    title: str
    status: Status
    detail: str = ""
    evidence: str = ""
    duration_s: float = 0.0
    # The run had to stop here (call budget or the day's limit spent): later checks are skipped too.
    stopped: bool = False
    # The checklist's own calls for this row, per system (its clean-up included).
    calls: dict[str, int] = field(default_factory=dict)
    # A failure field by field (flow, check, record, property, expected, found, message), where known.
    failure: dict[str, str] = field(default_factory=dict)


@dataclass
class FlowResult:
    id: str
    title: str
    checks: list[CheckResult] = field(default_factory=list)
    note: str = ""


@dataclass
class RunResult:
    flows: list[FlowResult]
    seed: int
    profile: str
    target: str
    engine: str
    document: str
    duration_s: float
    calls: dict[str, int] = field(default_factory=dict)
    # Against a sandbox: the call budget, the run id its records carry, and what the clean-up did.
    sandbox: dict[str, Any] = field(default_factory=dict)
    # The checklist's own calls per system (on the mocks `calls` counts the engine's too).
    checklist_calls: dict[str, int] = field(default_factory=dict)
    mode: str = "batched"
    # The checklist's calls per phase: the checks side by side (with the engine passes they shared), then
    # the checks that run one at a time.
    phases: dict[str, dict[str, int]] = field(default_factory=dict)
    # Stopped by Ctrl-C: the rows hold what finished before it; the others did not run.
    interrupted: bool = False
    # Against a baseline (--baseline): its path, each changed row's mark, and earlier runs' counts.
    baseline: str = ""
    marks: dict[tuple[str, str], str] = field(default_factory=dict)
    trend: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    # The tolerances declared for the run (--tolerate), one line each: what the passes allowed.
    tolerances: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.flows for c in f.checks if c.status == status)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    @property
    def nothing_checked(self) -> bool:
        """No check passed or failed: every row was skipped (a document whose tables check nothing, a budget
        spent at once). Not a pass."""
        return self.count("passed") + self.count("failed") == 0

    @property
    def banner(self) -> str:
        """What a reader must see before any row, or ""."""
        if self.interrupted:
            return (f"INTERRUPTED: the run was stopped before it finished; {sum(len(f.checks) for f in self.flows)} "
                    "rows had run, the others did not. This is a partial report.")
        if self.nothing_checked:
            return ("NOTHING WAS CHECKED: every row was skipped, so this run says nothing about the engine. The "
                    "reason is given once per flow, with what to add to the document.")
        return ""


# Every example drives two systems and an engine over HTTP, so it is slow by nature; the other health checks
# (filters, data size, nesting, executors) apply to the checklist's strategies as to any.
SUPPRESSED_HEALTH_CHECKS = [HealthCheck.too_slow]


def _describe(exc: BaseException) -> str:
    """An unexpected error, with the HTTP exchange when a system refused a call (and, for Hypothesis's
    "flaky" verdict, the error it saw first)."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        first = exc.exceptions[0]
        if "Flaky" in type(exc).__name__:  # the first real message, and that it did not come back
            text = str(first) if isinstance(first, AssertionError) else _describe(first)
            return f"{text} (intermittent: the same example passed when Hypothesis ran it again)"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}; first: {_describe(first)}"
    if isinstance(exc, httpx.HTTPStatusError):
        request, response = exc.request, exc.response
        body = request.content.decode("utf-8", "replace")[:800] if request.content else ""
        return (f"{request.method} {request.url} answered {response.status_code}: {response.text[:800]}"
                + (f" (request body: {body})" if body else ""))
    return f"{type(exc).__name__}: {exc}"


def _evidence(reported: list[str], exc: BaseException) -> str:
    """What Hypothesis said of the failing example: its reporter's lines, and the notes it attaches to the
    exception (the minimal example, each draw with its label) in the versions that report that way."""
    notes: list[str] = []
    for error in (exc, *(exc.exceptions if isinstance(exc, BaseExceptionGroup) else ())):
        notes.extend(str(n) for n in getattr(error, "__notes__", []) if str(n) not in notes)
    return "\n".join([*reported, *notes]).strip()


def _min_steps(steps: int) -> dict[str, int]:
    """Even the two examples of `smoke` must exercise a real run of steps: Hypothesis starts from the
    simplest (empty) run, so a floor on the step count is set where this Hypothesis version offers one."""
    if "_min_steps" in inspect.signature(run_state_machine_as_test).parameters:
        return {"_min_steps": steps // 2}
    return {}


def run_check(check: Check, ctx: FlowContext | str, profile: str, seed: int, shrink: bool = True) -> CheckResult:
    """One checklist row: skipped with the reason when it does not apply (or its flow cannot be satisfied,
    when `ctx` is that reason), else run as a Hypothesis property or state machine."""
    reason = ctx if isinstance(ctx, str) else check.skip_reason(ctx)
    if reason:
        return CheckResult(check.id, check.title, Status.SKIPPED, reason)
    assert not isinstance(ctx, str)
    return _run_one(check, ctx, profile, seed, shrink)


def examples_per_check(profile: str, sandbox: bool) -> int:
    """How many examples each check runs: the profile's, or against a sandbox its budgeted share."""
    return (SANDBOX_PROFILES if sandbox else PROFILES)[profile]


def _run_one(check: Check, ctx: FlowContext, profile: str, seed: int, shrink: bool = True,
             examples: int | None = None) -> CheckResult:
    """One row as a Hypothesis property or state machine (`examples`: this lane's share of the profile's)."""
    lines: list[str] = []
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
    count = 1 if check.once else examples or examples_per_check(profile, ctx.systems.safe)
    steps = (SANDBOX_STEPS if ctx.systems.safe else STEPS)[profile]
    options = settings(max_examples=count, deadline=None, database=None, derandomize=False,
                       suppress_health_check=SUPPRESSED_HEALTH_CHECKS, phases=phases,
                       report_multiple_bugs=False, stateful_step_count=steps)

    def prop(data: st.DataObject) -> None:
        ctx.reset()
        skip_the_simplest(ctx, data)
        assert check.run is not None
        try:
            check.run(ctx, data)
        except Exception as exc:
            note = ctx.exchange_note()
            if note:
                exc.add_note(note)
            raise

    def run() -> None:
        if check.machine is not None:
            machine = check.machine(ctx)
            run_state_machine_as_test(hypothesis_seed(seed)(machine), settings=options, **_min_steps(steps))
        else:
            hypothesis_seed(seed)(options(given(data=st.data())(prop)))()

    started = time.monotonic()
    try:
        with with_reporter(lambda text: lines.append(str(text))):
            run()
    except BudgetExhausted as exc:
        return CheckResult(check.id, check.title, Status.SKIPPED, str(exc), "", time.monotonic() - started,
                           stopped=True)
    except NotApplicable as exc:
        return CheckResult(check.id, check.title, Status.SKIPPED, str(exc), "", time.monotonic() - started)
    except PassNotRun as stop:  # the engine could not run the pass this example waited for: not run again
        return CheckResult(check.id, check.title, Status.FAILED, _describe(stop.error), _evidence(lines, stop),
                           time.monotonic() - started)
    except AssertionError as exc:
        return CheckResult(check.id, check.title, Status.FAILED, str(exc), _evidence(lines, exc),
                           time.monotonic() - started,
                           failure=exc.fields() if isinstance(exc, CheckFailure) else {})
    except Exception as exc:  # noqa: BLE001 - a crashing check is reported, never fatal to the run
        return CheckResult(check.id, check.title, Status.FAILED, _describe(exc), _evidence(lines, exc),
                           time.monotonic() - started)
    return CheckResult(check.id, check.title, Status.PASSED, "", "", time.monotonic() - started)


def run_checklist(
    doc: Dataflow,
    *,
    flows: list[str] | None = None,
    profile: str = "ci",
    seed: int = 0,
    target: str = "inproc",
    engine: str = "builtin",
    engine_class: type[Engine] = Engine,
    checks: list[str] | None = None,
    shrink: bool = True,
    jobs: int = 1,
    progress: Callable[[str, str, CheckResult], None] | None = None,
    sandbox: SandboxSettings | None = None,
    mode: str = "batched",
    tolerances: Tolerances | None = None,
    on_started: Callable[[], None] | None = None,
) -> RunResult:
    """Run the checks of the selected flows against the mocks (or a target) and an engine.

    With `jobs` > 1 the flows run in that many worker processes, each with its own mocks and engine, so a
    flow's results do not depend on how the run was split (a flow is replayed by its seed alone). A
    sandbox is one shared pair of systems, so its flows run one after another.

    `on_started` is called once the workers have started (at once without workers): what starts a thread
    in this process, such as a live display, belongs there, since a worker is forked only from a process
    with no other thread (else spawned, importing everything again).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if (target == "sandbox") != (sandbox is not None):
        raise ValueError("--target sandbox goes with the sandbox's config, and only with it")
    selected = [f.id for f in doc.flows if flows is None or f.id in flows]
    options: dict[str, Any] = {"profile": profile, "seed": seed, "target": target, "engine": engine,
                               "engine_class": engine_class, "checks": checks, "shrink": shrink,
                               "sandbox": sandbox, "mode": mode, "tolerances": tolerances or {}}
    if jobs <= 1 or len(selected) <= 1 or sandbox is not None:
        if on_started is not None:
            on_started()
        return _run_flows(doc, flows=selected, progress=progress, **options)
    started = time.monotonic()
    if mode == "batched":  # a batch per process: the flows of a group share their engine passes
        groups = _groups(doc, selected, jobs)
    else:
        groups = [[f] for f in sorted(selected, key=lambda f: -_cost(doc.flow(f)))]
    parts: list[RunResult] = []
    context = multiprocessing.get_context(_start_method())
    # Each row is told as it finishes in a worker, through a queue the workers inherit when they start.
    rows: Any = context.Queue()
    # The checks that run apart (own batches, one at a time) are the run's tail: each worker, its own
    # group's batch done, takes the next of them until none is left, so the workers finish together.
    claims: Any = context.Value("i", 0)
    shared = mode == "batched"
    interrupted = False
    # Workers leave Ctrl-C to this process, which stops them at once (no traceback from any of them).
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                               initargs=(rows, claims))
    try:
        futures = _submit_ignoring_interrupts(pool, [partial(
            _run_flows, doc, flows=group, progress=_Told(), tail_flows=selected if shared else None,
            claim=_claim_shared if shared else None, **options) for group in groups])
        if on_started is not None:
            on_started()
        waiting = set(futures)
        while waiting:
            finished, waiting = wait(waiting, timeout=0.2, return_when=FIRST_COMPLETED)
            _tell(rows, progress)
            for future in finished:
                parts.append(future.result())
    except KeyboardInterrupt:
        interrupted = True
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    _tell(rows, progress)  # the last rows, flushed by the workers as they stopped
    done = _gathered(doc, parts)
    first = parts[0]
    phases: dict[str, dict[str, int]] = {}
    for part in parts:
        for phase, counts in part.phases.items():
            phases[phase] = _summed([phases.get(phase, {}), counts])
    return RunResult([done[f] for f in selected], seed, profile, first.target, first.engine,
                     doc.name, time.monotonic() - started, _summed(p.calls for p in parts), {},
                     _summed(p.checklist_calls for p in parts), mode, phases, tolerances=first.tolerances)


class _Told:
    """A worker's progress: each finished row put on the run's queue (picklable, unlike a closure; the queue
    itself is the worker's, handed to it as it started)."""

    def __call__(self, flow: str, check: str, result: CheckResult) -> None:
        assert _WORKER_ROWS is not None, "a row told outside a worker of the run"
        _WORKER_ROWS.put((flow, check, result))


_WORKER_ROWS: Any = None
_WORKER_CLAIMS: Any = None


def _start_method() -> str:
    """Fork where it is safe: on Linux, from a process with one thread (no live display running), a worker
    starts with everything already imported, about two seconds sooner than a spawned one that imports the
    checklist, the mocks and Hypothesis again. Elsewhere, or with threads running, spawn."""
    if sys.platform == "linux" and threading.active_count() == 1 \
            and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _start_worker(rows: Any, claims: Any) -> None:
    """A worker's start: Ctrl-C is the parent's to handle; rows go on the run's queue; the tail's units are
    claimed through the run's shared counter."""
    global _WORKER_ROWS, _WORKER_CLAIMS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C held back since the worker started is dropped
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _WORKER_ROWS, _WORKER_CLAIMS = rows, claims


def _claim_shared() -> int:
    """The next unit of the run's tail, for this worker alone (a counter shared by the run's workers)."""
    assert _WORKER_CLAIMS is not None, "a unit claimed outside a worker of the run"
    with _WORKER_CLAIMS.get_lock():
        unit = int(_WORKER_CLAIMS.value)
        _WORKER_CLAIMS.value = unit + 1
    return unit


def _gathered(doc: Dataflow, parts: list[RunResult]) -> dict[str, FlowResult]:
    """Each flow's rows from every worker that ran some of them, in the order the flow declares its checks."""
    done: dict[str, FlowResult] = {}
    for part in parts:
        for flow_result in part.flows:
            into = done.setdefault(flow_result.id, FlowResult(flow_result.id, flow_result.title,
                                                              note=flow_result.note))
            into.checks.extend(flow_result.checks)
    for flow_result in done.values():
        order = {check.id: n for n, check in enumerate(checks_for(doc.flow(flow_result.id)))}
        flow_result.checks.sort(key=lambda row: order.get(row.id, len(order)))
    return done


def _tell(queue: Any, progress: Callable[[str, str, CheckResult], None] | None) -> None:
    """Hand on every row the workers have finished so far."""
    while True:
        try:
            flow, check, result = queue.get_nowait()
        except Empty:
            return
        if progress is not None:
            progress(flow, check, result)


def _submit_ignoring_interrupts(pool: ProcessPoolExecutor, jobs: list[Callable[[], RunResult]]
                                ) -> list[Future[RunResult]]:
    """Submit the jobs (the pool starts its workers now: forking them takes a few tens of milliseconds) with
    Ctrl-C held back meanwhile. A worker inherits it held back and drops it once its start-up makes Ctrl-C
    the parent's to handle, so a Ctrl-C that reaches it (a terminal sends it to every process of the job)
    while it starts prints no traceback; the parent gets it as soon as the workers are started, so none is
    lost. Where signals cannot be held back, Ctrl-C is ignored meanwhile."""
    main = threading.current_thread() is threading.main_thread()
    hold = main and hasattr(signal, "pthread_sigmask")
    if hold:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main and not hold else None
    try:
        return [pool.submit(job) for job in jobs]
    finally:
        if hold:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a Ctrl-C held back arrives now
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in counts:
        for system, count in part.items():
            out[system] = out.get(system, 0) + count
    return out


def _groups(doc: Dataflow, flows: list[str], jobs: int) -> list[list[str]]:
    """The flows in `jobs` groups of about equal cost (the heaviest first, each to the lightest group)."""
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(flows)))]
    costs = [0] * len(groups)
    for flow in sorted(flows, key=lambda f: -_cost(doc.flow(f))):
        lightest = costs.index(min(costs))
        groups[lightest].append(flow)
        costs[lightest] += _cost(doc.flow(flow))
    return [[f for f in flows if f in group] for group in groups]


def _cost(flow: Flow) -> int:
    """A rough cost of a flow's checks, to start the heavy ones first."""
    lines = sum(1 for row in flow.properties if row.source.startswith("Lines."))
    return len(flow.properties) + 10 * bool(lines)


def _run_flows(
    doc: Dataflow,
    *,
    flows: list[str],
    profile: str,
    seed: int,
    target: str,
    engine: str,
    engine_class: type[Engine],
    checks: list[str] | None,
    shrink: bool,
    progress: Callable[[str, str, CheckResult], None] | None = None,
    sandbox: SandboxSettings | None = None,
    mode: str = "batched",
    tolerances: Tolerances | None = None,
    tail_flows: list[str] | None = None,
    claim: Callable[[], int] | None = None,
) -> RunResult:
    """The checks of `flows` side by side in one batch, then the tail: the checks that run apart (in batches
    of their own, or one at a time) of every flow of `tail_flows` (`flows` when None), each unit taken with
    `claim` (the next unit's number; shared with the run's other workers, so that whoever is free takes the
    next). The result holds the rows this call ran."""
    started = time.monotonic()
    tolerances = tolerances or {}
    mine = set(flows)
    tail = set(tail_flows if tail_flows is not None else flows)
    selected: list[Flow] = [f for f in doc.flows if f.id in tail]
    validate_engine(engine, target)
    target = target_for(engine, target)
    run_id = uuid.uuid4().hex[:8]
    if sandbox is not None:
        systems = Systems.sandbox(sandbox, run_id)
    elif target == "simulation":
        systems = Systems.simulation(run_id, seed)
    else:
        systems = Systems.start(target, seed)
    # Against a sandbox a failure is reported with the example that first failed: shrinking replays it many
    # times, and every replay is records to create and delete out of Exact's 5,000 calls a day.
    shrink = shrink and not systems.safe
    results: list[FlowResult] = []
    calls: dict[str, int] = {}
    checklist_calls: dict[str, int] = {}
    budget_note = ""
    try:
        driver = make_driver(engine, doc, systems, engine_class=engine_class, flows=[f.id for f in selected])
    except BaseException:
        systems.close()
        raise
    phases: dict[str, dict[str, int]] = {}
    try:
        if systems.safe:
            budget_note = _begin_sandbox(systems, driver, [f.id for f in selected])
        rows: list[tuple[FlowResult, Check, FlowContext | str]] = []
        volume_flow = _volume_flow(doc)
        for flow in selected:
            result = FlowResult(flow.id, flow.title)
            results.append(result)
            ctx = FlowContext.for_flow(flow, doc, systems, driver)
            if isinstance(ctx, str):
                result.note = ctx
            else:
                ctx.tolerances = dict(tolerances.get(flow.id, {}))
                ctx.volume = profile != "smoke" and flow.id == volume_flow
            for check in checks_for(flow):
                if checks is None or check.id in checks:
                    rows.append((result, check, ctx))
        outcomes: dict[int, CheckResult] = {}
        alone = list(range(len(rows)))
        if mode == "batched" and not budget_note:
            batched = [i for i, (_r, check, ctx) in enumerate(rows) if not isinstance(ctx, str)
                       and not (check.alone and not systems.safe) and not check.skip_reason(ctx)]
            side_by_side = [i for i in batched if rows[i][0].id in mine]  # the others: their own worker's
            alone = sorted(set(alone) - set(batched))
            before = dict(systems.calls)
            batch = _run_batch(doc, systems, driver, [rows[i] for i in side_by_side], profile, seed, shrink,
                               _reporter(progress, systems.secrets))
            outcomes.update(zip(side_by_side, batch.results, strict=True))
            phases["side by side"] = _spent(before, systems.calls) | {"engine passes": batch.passes}
            budget_note = next((o.detail for o in batch.results if o.stopped), "")
            if systems.calls != before:
                systems.cleanup()
        slots = document_slots(doc)
        own = _own_batches(rows, alone) if mode == "batched" and not systems.safe and not budget_note else []
        in_own = {i for group in own for i in group}
        units = own + [[i] for i in alone if i not in in_own]
        if not systems.safe:  # the heaviest first, so that the workers finish together; a sandbox keeps the
            units.sort(key=lambda unit: -_tail_weight(rows, unit))  # document's order (its budget stops it)
        next_unit = claim or itertools.count().__next__
        while (u := next_unit()) < len(units):
            unit = units[u]
            before = dict(systems.calls)
            if unit[0] in in_own:
                for i, outcome in zip(unit, _in_own_batch(doc, systems, driver, [rows[i] for i in unit], profile,
                                                          seed, shrink), strict=True):
                    outcomes[i] = _redacted(outcome, systems.secrets)
                    if progress:
                        progress(rows[i][0].id, rows[i][1].id, outcomes[i])
                systems.cleanup()
                phases["own batches"] = _summed([phases.get("own batches", {}), _spent(before, systems.calls)])
                continue
            i = unit[0]
            result, check, ctx = rows[i]
            if budget_note:
                outcome = CheckResult(check.id, check.title, Status.SKIPPED, budget_note)
            else:
                if not isinstance(ctx, str):
                    ctx.slot = slots[(result.id, check.id)]
                outcome = run_check(check, ctx, profile, seed, shrink)
                if outcome.stopped:
                    budget_note = outcome.detail
                if systems.calls != before:  # a check that made no call created nothing
                    systems.cleanup()
                outcome.calls = _spent(before, systems.calls)
            outcomes[i] = _redacted(outcome, systems.secrets)
            if progress:
                progress(result.id, check.id, outcomes[i])
            if systems.calls != before:
                phase = "one at a time" if mode == "batched" else "per example"
                phases[phase] = _summed([phases.get(phase, {}), _spent(before, systems.calls)])
        for i, (result, _check, _ctx) in enumerate(rows):
            if i in outcomes:  # the others ran in another worker of the run
                result.checks.append(outcomes[i])
        if not systems.safe:  # a sandbox's calls are counted by its guards, after the final clean-up
            for system in ("exact", "customcrm"):
                calls[system] = int(systems.admin(system, "stats")["requests"])
            checklist_calls = dict(systems.calls)
    finally:
        driver.close()
        if systems.safe:
            systems.cleanup(final=True)
            calls = checklist_calls = dict(systems.calls)
            if systems.scope is not None and systems.scope.manifest is not None:
                systems.scope.manifest.finish(left=len(systems.scope.left))
        systems.close()
    if systems.safe:  # a sandbox's (or its simulation's) calls outside the checks: its begin, the shared
        # references and the clean-up, so that the phases add up to the checklist's calls
        spent = {k: sum(p.get(k, 0) for p in phases.values()) for k in ("exact", "customcrm")}
        rest = {k: n - spent.get(k, 0) for k, n in checklist_calls.items() if n - spent.get(k, 0) > 0}
        if rest:
            phases["set-up and clean-up"] = rest
    info: dict[str, Any] = {}
    if sandbox is not None and systems.scope is not None:
        manifest = systems.scope.manifest
        info = {"run_id": run_id, "call_budget": sandbox.call_budget, "removed": systems.scope.removed,
                "engine_calls": dict(getattr(driver, "reported_calls", {}) or {}),
                "engine_own_app": sandbox.engine_exact is not None,
                "left": [scrub(text, systems.secrets) for text in systems.scope.left],
                "limits": {name: state.as_dict() for name, state in systems.limits.items()},
                "manifest": str(manifest.path) if manifest is not None and manifest.path.exists() else ""}
    return RunResult(results, seed, profile, target, driver.name, doc.name, time.monotonic() - started, calls,
                     info, checklist_calls, mode, phases, tolerances=described(tolerances))


@dataclass
class BatchOutcome:
    results: list[CheckResult]
    passes: int


def _run_batch(doc: Dataflow, systems: Systems, driver: EngineDriver,
               rows: list[tuple[FlowResult, Check, FlowContext | str]], profile: str, seed: int, shrink: bool,
               report: Callable[[str, CheckResult], None]) -> BatchOutcome:
    """Every check of `rows` side by side, each in a context of its own, one engine pass per round for all,
    reading both systems through one mirror kept for the batch."""
    systems.start_mirror()
    try:
        return _side_by_side(doc, systems, driver, rows, profile, seed, shrink, report)
    finally:
        systems.stop_mirror()


def _side_by_side(doc: Dataflow, systems: Systems, driver: EngineDriver,
                  rows: list[tuple[FlowResult, Check, FlowContext | str]], profile: str, seed: int, shrink: bool,
                  report: Callable[[str, CheckResult], None]) -> BatchOutcome:
    flows: list[str] = []
    lanes = min(LANES[profile], examples_per_check(profile, systems.safe))
    # Each check runs in `lanes` lanes side by side, each lane a Hypothesis run of its share of the examples
    # with a context of its own: a batch costs the passes of one lane's examples, not of all of them.
    contexts: list[list[FlowContext]] = []
    for _result, _check, shared in rows:
        assert not isinstance(shared, str)
        own: list[FlowContext] = []
        for lane in range(lanes):
            ctx = FlowContext.for_flow(shared.flow, doc, systems, driver)
            assert not isinstance(ctx, str)
            ctx.lane, ctx.tolerances, ctx.volume = lane, shared.tolerances, shared.volume
            own.append(ctx)
        contexts.append(own)
        flows.extend(f for f in own[0].flows if f not in flows)
    order = [f.id for f in doc.flows if f.id in flows]
    mirror = systems.mirror
    assert mirror is not None

    def one_pass() -> None:
        try:
            driver.sync(order)
        finally:
            mirror.touch()

    every = [ctx for own in contexts for ctx in own]
    _users_past_one_page(systems, every)
    pools = _shared_references(systems, every, one_pass)
    for ctx in every:
        ctx.shared_pools = pools

    def disrupted(disruption: Disruption) -> None:
        try:
            disrupted_pass(systems, driver, order, disruption)
        finally:
            mirror.touch()

    lockstep = Lockstep(one_pass, disrupted)
    slots = document_slots(doc)
    for (result, check, _shared), own in zip(rows, contexts, strict=True):
        # A check's slot is its place in the whole document, so its data does not depend on how the flows
        # were grouped (--jobs) or which checks were selected.
        for ctx in own:
            ctx.join_batch(lockstep, slots[(result.id, check.id)])
    examples = -(-examples_per_check(profile, systems.safe) // lanes)
    units = _units(rows)
    finished: dict[int, list[list[CheckResult]]] = {}
    told = threading.Lock()

    def job(u: int, lane: int) -> Callable[[], list[CheckResult]]:
        unit = units[u]

        def run() -> list[CheckResult]:
            lane_seed = seed + LANE_SEED_STEP * lane
            if lane and rows[unit[0]][1].once:  # its one example runs in the first lane
                check = rows[unit[0]][1]
                outcomes = [CheckResult(check.id, check.title, Status.PASSED)]
            elif len(unit) == 1:
                outcomes = [_run_one(rows[unit[0]][1], contexts[unit[0]][lane], profile, lane_seed, shrink,
                                     examples)]
            else:
                outcomes = _run_together([rows[i][1] for i in unit], [contexts[i][lane] for i in unit], profile,
                                         lane_seed, shrink, examples)
            outcomes = [_redacted(o, systems.secrets) for o in outcomes]
            with told:  # the unit's rows are told when its last lane is done
                finished.setdefault(u, []).append(outcomes)
                done = len(finished[u]) == lanes
            if done:
                for outcome in (_merged(list(by_lane)) for by_lane in zip(*finished[u], strict=True)):
                    report(rows[unit[0]][0].id, outcome)
            return outcomes
        return run

    results = run_side_by_side(lockstep, [job(u, lane) for u in range(len(units)) for lane in range(lanes)])
    flat: dict[int, CheckResult] = {}
    for u, unit in enumerate(units):
        by_lane = results[u * lanes:(u + 1) * lanes]
        flat.update(zip(unit, (_merged(list(o)) for o in zip(*by_lane, strict=True)), strict=True))
    return BatchOutcome([flat[i] for i in range(len(rows))], lockstep.passes)


def _tail_weight(rows: list[tuple[FlowResult, Check, FlowContext | str]], unit: list[int]) -> float:
    """A rough cost of a unit of the tail, to hand out the heavy ones first: a check alone that runs (the
    volume check, the concurrent edit) over the conflicts of every flow over a flow's faults (by the flow's
    size); a row that is skipped costs nothing."""
    _result, check, ctx = rows[unit[0]]
    if isinstance(ctx, str) or check.skip_reason(ctx):
        return 0.0
    if not check.own_batch:
        return 3.0
    if not check.batch_per_flow:
        return 2.0
    return 1.0 + _cost(ctx.flow) / 100


def _own_batches(rows: list[tuple[FlowResult, Check, FlowContext | str]], alone: list[int]) -> list[list[int]]:
    """The rows among `alone` that run in batches of their own (`Check.own_batch`): one batch per check,
    `conflict` of every flow in one, sharing the stopped clocks; or one per flow where the check says so
    (`Check.batch_per_flow`: the faults check, whose kills count from a pass's start). What such a check
    does to the systems reaches every row of its batch, and each of them is built to survive it; the other
    checks never see it."""
    batches: dict[tuple[str, str], list[int]] = {}
    for i in alone:
        result, check, ctx = rows[i]
        if check.own_batch and not isinstance(ctx, str) and not check.skip_reason(ctx):
            batches.setdefault((check.id, result.id if check.batch_per_flow else ""), []).append(i)
    return list(batches.values())


def _in_own_batch(doc: Dataflow, systems: Systems, driver: EngineDriver,
                  rows: list[tuple[FlowResult, Check, FlowContext | str]], profile: str, seed: int, shrink: bool
                  ) -> list[CheckResult]:
    """Checks that run apart from the others with their examples side by side among themselves
    (`Check.own_batch`): on reset mocks and a restarted engine, as a check alone would start, their lanes
    sharing the passes they disrupt. Their examples cost the passes of one lane, not of every example."""
    systems.reset()
    driver.reset()
    return _run_batch(doc, systems, driver, rows, profile, seed, shrink, lambda _flow, _row: None).results


def _merged(lanes: list[CheckResult]) -> CheckResult:
    """One row's outcome from its lanes: the first failure, else a stop or a skip, else the pass."""
    chosen = next((o for o in lanes if o.status == "failed"), None) or next(
        (o for o in lanes if o.stopped), None) or next((o for o in lanes if o.status == "skipped"), lanes[0])
    return replace(chosen, duration_s=max(o.duration_s for o in lanes))


def _units(rows: list[tuple[FlowResult, Check, FlowContext | str]]) -> list[list[int]]:
    """What runs as one participant of a batch: each check alone, except the property rows of a flow that
    run together on one record per example (all of them, one unit; a single row selected is simply its own
    check)."""
    units: list[list[int]] = []
    together: dict[str, list[int]] = {}
    per_flow = Counter(result.id for result, check, _ctx in rows if check.together)
    for i, (result, check, _ctx) in enumerate(rows):
        if check.together and per_flow[result.id] > 1:  # one row alone is its own check: no record to share
            if result.id not in together:
                together[result.id] = []
                units.append(together[result.id])
            together[result.id].append(i)
        else:
            units.append([i])
    return units


def _run_together(checks: list[Check], contexts: list[FlowContext], profile: str, seed: int, shrink: bool,
                  examples: int) -> list[CheckResult]:
    """The property rows of one flow on one record per example; a row that fails together is run again
    alone (its own check, with its own context and slot) for its minimal example and evidence."""
    by_row = {check.row.id: (check, ctx) for check, ctx in zip(checks, contexts, strict=True) if check.row}

    def alone(row: PropertyRow) -> RowOutcome:
        check, ctx = by_row[row.id]
        outcome = _run_one(check, ctx, profile, seed, shrink, examples)
        return outcome.status, outcome.detail, outcome.evidence

    started = time.monotonic()
    rows = [check.row for check in checks if check.row is not None]
    try:
        outcomes = run_property_rows(rows, contexts[0], examples, seed, alone)
    except BudgetExhausted as exc:
        return [CheckResult(c.id, c.title, Status.SKIPPED, str(exc), "", stopped=True) for c in checks]
    except NotApplicable as exc:
        return [CheckResult(c.id, c.title, Status.SKIPPED, str(exc)) for c in checks]
    except PassNotRun as stop:  # every row waited for the pass that could not run: no row alone says more
        return [CheckResult(c.id, c.title, Status.FAILED, _describe(stop.error), "", time.monotonic() - started)
                for c in checks]
    share = (time.monotonic() - started) / len(checks)
    return [CheckResult(c.id, c.title, status, detail, evidence, share)
            for c, (status, detail, evidence) in zip(checks, outcomes, strict=True)]


def _shared_references(systems: Systems, contexts: list[FlowContext], one_pass: Callable[[], None]
                       ) -> dict[str, dict[str, str]] | None:
    """The customers and products the batch's checks refer to, created and linked once for all of them (in
    a sandbox every record is a call to delete, and two per example were most of the clean-up). None when
    they cannot be set up (an engine that fails its pass): each example then prepares its own and fails
    with its own evidence."""
    kinds: set[str] = set()
    for ctx in contexts:
        kinds |= REFERENCE_KINDS if ctx.plan.kind == "users" else \
            {ctx.ref_type(m) for m in ctx.mappings if m.kind == "ref"}
    if not kinds & REFERENCE_KINDS:
        return None
    reset_unique(0, 0)  # example 0 of a slot is no check's: these numbers are the batch's own
    try:
        pools = create_references(systems.customcrm_actor(), systems.exact_actor(), contexts[0].unique, kinds,
                                  one_pass)
    except (Exception, BudgetExhausted):  # noqa: BLE001 - each check then meets it itself, with its evidence
        return None
    return pools if all(pools.get(kind) for kind in kinds & REFERENCE_KINDS) else None


EXACT_LIST_PAGE = 60  # rows per page of Exact's plain lists (users/Users among them)


def _users_past_one_page(systems: Systems, contexts: list[FlowContext]) -> None:
    """On the mocks, before a batch that matches users: colleagues enough to fill a page of Exact's user list,
    so that about half of the users the checks add are listed past the first page whatever order the checks'
    threads add them in. An engine that never follows `__next` then misses owners in every run, not only when
    the interleaving happens to put more than a page of users in the division at once. (A sandbox's users are
    its own: the API cannot add any.)"""
    if systems.safe or not any(ctx.plan.kind == "users" or any(
            m.kind == "ref" and ctx.ref_type(m) == "User" for m in ctx.mappings) for ctx in contexts):
        return
    systems.admin("exact", "seed", {"users": [{"Email": f"colleague{i}@division.example",
                                               "FullName": f"Colleague {i}"} for i in range(EXACT_LIST_PAGE)]})


def _volume_flow(doc: Dataflow) -> str | None:
    """The flow that carries the run's volume (the paging check): the document's first flow with neither
    references nor lines, whichever flows are selected, so a flow's rows do not depend on the selection."""
    for flow in doc.flows:
        if flow.source_type.lower() == "user":
            continue
        plan = plan_checks(flow, doc)
        if not isinstance(plan, str) and not any(m.kind == "ref" or m.is_line for m in plan.mappings):
            return flow.id
    return None


def document_slots(doc: Dataflow) -> dict[tuple[str, str], int]:
    """Each check's place in the whole document (flow id, check id) -> n: its data depends on it (unique
    numbers in a batch, the classes of values it is given), never on how the flows were grouped (--jobs) or
    which checks were selected."""
    return {(flow.id, check.id): n for n, (flow, check) in enumerate((f, c) for f in doc.flows for c in checks_for(f))}


def _reporter(progress: Callable[[str, str, CheckResult], None] | None, secrets: list[str]
              ) -> Callable[[str, CheckResult], None]:
    """Progress from the checks' threads, one line at a time."""
    lock = threading.Lock()

    def report(flow_id: str, outcome: CheckResult) -> None:
        if progress is not None:
            with lock:
                progress(flow_id, outcome.id, outcome)
    return report


def _spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def _begin_sandbox(systems: Systems, driver: EngineDriver, flows: list[str]) -> str:
    """Let the engine settle what was there before the run, then note where the sandbox stands: the checks
    see only what changed since. Returns why no check can run (calls used up), or "". Credentials the sandbox
    refuses are a ConfigError."""
    try:
        driver.sync(flows)
        systems.begin()
    except BudgetExhausted as exc:
        return str(exc)
    except EngineError as exc:  # every check would wait on this engine: none runs, and the report says why
        return f"the engine under test failed its first pass, before any check: {exc}"
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise ConfigError(f"{exc.request.url.host} refused the checklist's credentials (HTTP {status}); check "
                              "the variables the sandbox config names") from None
        raise
    return ""


def _redacted(outcome: CheckResult, secrets: list[str]) -> CheckResult:
    """A result with every credential replaced by *** (reports are handed to others)."""
    if not secrets:
        return outcome
    return CheckResult(outcome.id, outcome.title, outcome.status, scrub(outcome.detail, secrets),
                       scrub(outcome.evidence, secrets), outcome.duration_s, outcome.stopped, outcome.calls)


def partial_result(doc: Dataflow, finished: dict[str, dict[str, CheckResult]], *, seed: int, profile: str,
                   target: str, engine: str, duration_s: float, mode: str) -> RunResult:
    """The rows that finished before an interruption, in the document's order, marked interrupted."""
    flows = []
    for flow in doc.flows:
        done = finished.get(flow.id, {})
        if done:
            rows = [done[c.id] for c in checks_for(flow) if c.id in done]
            flows.append(FlowResult(flow.id, flow.title, rows))
    return RunResult(flows, seed, profile, target, engine, doc.name, duration_s, mode=mode, interrupted=True)


def as_json(result: RunResult) -> dict[str, Any]:
    return {
        "summary": {"passed": result.count("passed"), "failed": result.count("failed"),
                    "skipped": result.count("skipped"), "duration_s": round(result.duration_s, 3),
                    "nothing_checked": result.nothing_checked, "interrupted": result.interrupted},
        "run": {"seed": result.seed, "profile": result.profile, "target": result.target, "engine": result.engine,
                "document": result.document, "calls": result.calls, "checklist_calls": result.checklist_calls,
                "mode": result.mode, "phases": result.phases, "tolerances": result.tolerances}
        | ({"sandbox": result.sandbox} if result.sandbox else {})
        | ({"baseline": {"path": result.baseline, "marks": {f"{f} / {c}": m for (f, c), m in result.marks.items()},
                         "trend": [{"run": label, **counts} for label, counts in result.trend]}}
           if result.baseline else {}),
        "flows": [
            {"id": f.id, "title": f.title, "note": f.note,
             "checks": [{"id": c.id, "title": c.title, "status": c.status, "detail": c.detail,
                         "evidence": c.evidence, "duration_s": round(c.duration_s, 3), "calls": c.calls}
                        | ({"failure": c.failure} if c.failure else {})
                        for c in f.checks]}
            for f in result.flows
        ],
    }
