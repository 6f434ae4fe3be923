"""The talkcheck command line: run, flows, sync, serve."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sync.dataflow import DataflowError, load_dataflow

__all__ = ["main"]

# 0 all done; 1 some record failed (the rest synced); 2 configuration, document or credentials; 3 a system was
# unreachable or answered errors after retries, or the engine crashed; 4 the state file needs a person
# (damaged, or lost while both systems hold records: see --relink); 5 another engine holds the state file.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_STATE, EXIT_BUSY = 0, 1, 2, 3, 4, 5
# talkcheck run: no check passed or failed (every row skipped), so the run says nothing about the engine.
EXIT_NOTHING_CHECKED = 6
# Stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"talkcheck: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _seed(text: str) -> int:
    """--seed: a number, or 'random' for a new one (the run prints it, so it can be replayed)."""
    if text == "random":
        return random.SystemRandom().randrange(1, 1_000_000)
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'random', not {text!r}") from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("talkcheck")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _usage(text: str) -> int:
    """A usage, configuration or document error: one line on stderr, exit 2."""
    print(text, file=sys.stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="talkcheck", description="An executable QA checklist for Customcrm to Exact Online sync.")
    parser.add_argument("--version", action="version", version=f"talkcheck {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the checklist and write the QA report")
    run.add_argument("--doc", help="a dataflow document (default: the project's own)")
    run.add_argument("--target", default="inproc", choices=["inproc", "server", "sandbox"],
                     help="the mocks in this process (default), the mocks under uvicorn on 127.0.0.1, or the real "
                          "systems named by --config")
    run.add_argument("--engine", default="builtin",
                     help="the engine under test: builtin (default), cmd:COMMAND (run once per sync pass) or "
                          "poll:SECONDS (an engine that runs by itself)")
    run.add_argument("--profile", default="ci", choices=["smoke", "ci", "thorough"],
                     help="examples per check: smoke 2, ci 8 (default), thorough 60")
    run.add_argument("--flow", action="append", dest="flows", metavar="NAME", help="only this flow (repeatable)")
    run.add_argument("--check", action="append", dest="checks", metavar="ID",
                     help="only this check of each selected flow, e.g. create or property:Email (repeatable)")
    run.add_argument("--report-dir", default="reports/latest", help="where the QA report goes (default: %(default)s)")
    run.add_argument("--seed", type=_seed, default=None,
                     help="the run's seed: the same seed replays the same data exactly (default: a new one each "
                          "run, printed and in the report's replay command, so that CI runs vary the random part "
                          "of the data; every class of the value catalogue is given in every run whatever the seed)")
    run.add_argument("--jobs", default="auto", help="flows run in this many processes (default: one per core)")
    run.add_argument("--config", help="with --target sandbox: the TOML file naming both systems (see README)")
    run.add_argument("--mode", default="batched", choices=["batched", "per-example"],
                     help="batched (default): the checks run side by side and share each engine pass; "
                          "per-example: every example alone, on systems reset before it (slower, for isolating "
                          "a failure)")
    run.add_argument("--baseline", metavar="PATH",
                     help="an earlier run's results.json, or a folder of them: mark each row as a new failure, "
                          "fixed, still failing or newly skipped, with a trend of the earlier runs' counts")
    run.add_argument("--allure-dir", metavar="DIR",
                     help="also write Allure results there (one result file per row), for `allure generate`")
    run.add_argument("--fail-on-skip", action="store_true",
                     help="a skipped check fails the run (exit 1), for teams that want every row to run")
    run.add_argument("--tolerate", action="append", default=[], metavar="FLOW:PROPERTY=KIND",
                     help="compare this property through a tolerance instead of strictly: trim, case, unicode or "
                          "line-breaks, joined with + (repeatable; the report lists every one that applied)")
    run.add_argument("--no-shrink", action="store_true",
                     help="report each failure with the example that first failed, not shrunk to a minimal one "
                          "(a faster verdict; the evidence is the larger example)")
    run.add_argument("--plan", action="store_true",
                     help="print the calls each check will make to each system and the time at Exact's limits, "
                          "then stop (nothing is written to any system)")

    flows = sub.add_parser("flows", help="list the parsed checklist")
    flows.add_argument("--doc", help="a dataflow document (default: the project's own)")

    sync = sub.add_parser("sync", help="run the reference engine between two configured systems")
    source = sync.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="a TOML file naming both systems (see README)")
    source.add_argument("--from-env", action="store_true",
                        help="read both systems from the TALKCHECK_* variables the checklist hands an engine")
    sync.add_argument("--once", action="store_true", help="one pass, then exit (0: no record failed, 1: some did)")
    sync.add_argument("--full", action="store_true",
                      help="re-read both systems from the start (after lost or expired cursors)")
    first = sync.add_mutually_exclusive_group()
    first.add_argument("--relink", action="store_true",
                       help="after a lost or damaged state file: link the records both systems hold by their merge "
                            "keys, create nothing, and hold back what has no match")
    first.add_argument("--first-sync", action="store_true",
                       help="the first sync of two systems that both hold data: link what matches, create the rest")
    sync.add_argument("--release-held", action="store_true",
                      help="let the records a --relink held back be created on the next pass")

    cleanup = sub.add_parser("cleanup", help="remove what interrupted sandbox runs left behind (from their manifests)")
    cleanup.add_argument("--config", required=True, help="the sandbox config the runs used")
    cleanup.add_argument("--run-id", help="only this run (default: every run with a manifest beside the config)")

    serve = sub.add_parser("serve", help="serve the mocks under uvicorn")
    serve.add_argument("system", nargs="?", default="all", choices=["exact", "customcrm", "all"])
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="Exact's port; Customcrm takes the next one with 'all'")
    return parser




def _refused(doc: Any) -> bool:
    """Print why a document cannot run (other systems, unknown property names), each on its own line."""
    from conformance.planner import document_problems

    problems = document_problems(doc)
    for problem in problems[:20]:
        print(f"talkcheck: {problem}", file=sys.stderr)
    if len(problems) > 20:
        print(f"talkcheck: and {len(problems) - 20} more", file=sys.stderr)
    return bool(problems)


def _cmd_flows(args: argparse.Namespace) -> int:
    from conformance.checks import checks_for
    from conformance.planner import plan_checks

    doc = load_dataflow(args.doc) if args.doc else load_dataflow()
    if _refused(doc):
        return EXIT_USAGE
    print(f"{doc.title} ({doc.name}): {len(doc.flows)} flows")
    for flow in doc.flows:
        plan = plan_checks(flow, doc)
        status = "ready" if not isinstance(plan, str) else plan
        print(f"\n{flow.id:<20} {flow.title}")
        if flow.requires:
            print(f"  requires: {', '.join(flow.requires)}")
        for sentence in flow.preconditions:
            print(f"  precondition: {sentence}")
        for sentence in flow.conditions:
            print(f"  condition (not checked): {sentence}")
        if flow.merge_rules:
            print("  merges on: " + "; or ".join(f"{' + '.join(r.source)} = {' + '.join(r.target)}"
                                               for r in flow.merge_rules) + " (the document's merge table)")
        elif not isinstance(plan, str) and plan.entity.merge_keys:
            print("  merges on: " + "; or ".join(" + ".join(k) for k in plan.entity.merge_keys)
                  + f" of Exact {flow.target_type} (talkcheck's declaration; the document has no merge table)")
        print(f"  checks:   {len(checks_for(flow))} ({status})")
        for row in flow.properties:
            print(f"    {row.source:<22} -> {row.target:<26} {row.data_type or row.raw_type or 'N/A'}")
        if not flow.properties:
            print("    (no properties in the document's table)")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    if args.seed is None:
        args.seed = _seed("random")
    from conformance.engines import target_for, validate_engine
    from conformance.report import engine_budget, failure_groups, first_line, write_reports
    from conformance.runner import CheckResult, partial_result, run_checklist
    from conformance.sandbox import SandboxSettings, load_sandbox
    from conformance.tolerance import Tolerances, described, parse_tolerance
    from sync.errors import ConfigError
    from sync.service import scrub

    try:
        validate_engine(args.engine, args.target)
    except ValueError as exc:
        return _usage(f"talkcheck: --engine: {exc}")
    sandbox: SandboxSettings | None = None
    if (args.target == "sandbox") != bool(args.config):
        return _usage("talkcheck: --target sandbox needs --config FILE (and --config is only for a sandbox)")
    if args.config:
        try:
            sandbox = load_sandbox(args.config)
        except ConfigError as exc:
            return _usage(f"talkcheck: {exc}")
    try:
        doc = load_dataflow(args.doc) if args.doc else load_dataflow()
    except DataflowError as exc:
        return _usage(f"talkcheck: {exc}")
    if _refused(doc):
        return EXIT_USAGE
    try:
        jobs = (os.cpu_count() or 1) if args.jobs == "auto" else int(args.jobs)
    except ValueError:
        return _usage(f"talkcheck: --jobs takes a number or 'auto', not {args.jobs!r}")
    baseline = None
    if args.baseline:
        from conformance.baseline import BaselineError, load_baseline

        try:
            baseline = load_baseline(args.baseline)
        except BaselineError as exc:
            return _usage(f"talkcheck: --baseline: {exc}")
    tolerances: Tolerances = {}
    for text in args.tolerate:
        try:
            parse_tolerance(text, doc, tolerances)
        except ValueError as exc:
            return _usage(f"talkcheck: {exc}")
    known = {f.id for f in doc.flows}
    unknown = [f for f in args.flows or [] if f not in known]
    if unknown:
        print(f"talkcheck: no flow {unknown[0]!r} in {doc.name}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return EXIT_USAGE
    from conformance.checks import checks_for
    from conformance.console import LiveDisplay

    check_ids = {c.id for f in doc.flows if not args.flows or f.id in args.flows for c in checks_for(f)}
    unknown = [c for c in args.checks or [] if c not in check_ids]
    if unknown:
        print(f"talkcheck: no check {unknown[0]!r} in the selected flows; known: {', '.join(sorted(check_ids))}",
              file=sys.stderr)
        return EXIT_USAGE

    said: dict[str, str] = {}  # the skip reason each flow last printed: a flow-wide reason is said once
    finished: dict[str, dict[str, CheckResult]] = {}  # what has run, for a partial report after Ctrl-C
    per_flow = {f.id: sum(1 for c in checks_for(f) if not args.checks or c.id in args.checks)
                for f in doc.flows if not args.flows or f.id in args.flows}
    total = sum(per_flow.values())
    display = LiveDisplay(per_flow) if sys.stdout.isatty() and not os.environ.get("CI") else None

    def progress(flow: str, check: str, result: CheckResult) -> None:
        finished.setdefault(flow, {})[check] = result
        n = sum(len(rows) for rows in finished.values())
        if display is not None:
            display.advance(flow, result.status)
        reason = first_line(result.detail)
        if result.status == "skipped" and said.get(flow) == reason:
            return
        if result.status == "skipped":
            said[flow] = reason
        line = f"  {result.status.upper():<7} {flow} / {check}" + (f"  ({reason})" if result.status != "passed" else "")
        if display is not None:
            if result.status != "passed":  # on a terminal the bar counts the passes; the rest is said above it
                display.say(line)
        else:
            print(f"[{n}/{total}]{line}", flush=True)

    if args.plan or sandbox is not None:
        from conformance.plan import day_left, estimate, refusal, render_plan

        try:  # the sandbox's credentials and budget first: one call, before the minute of planning
            left = day_left(sandbox) if sandbox is not None else None
        except ConfigError as exc:
            print(f"talkcheck: {scrub(str(exc), sandbox.secrets if sandbox else [])}", file=sys.stderr)
            return EXIT_USAGE
        print(f"talkcheck: planning the run on in-process mocks set up as a sandbox (profile {args.profile}, "
              f"seed {args.seed})", flush=True)
        plan = estimate(doc, flows=args.flows, profile=args.profile, seed=args.seed, checks=args.checks,
                        mode=args.mode)
        if args.plan:
            render_plan(plan, day_left=left, budget=sandbox.call_budget if sandbox else None)
            return EXIT_OK
        assert sandbox is not None
        why = refusal(plan, sandbox, left)
        if why:
            return _usage(f"talkcheck: refused: {why}")
        print(f"talkcheck: planned {plan.total('exact')} Exact and {plan.total('customcrm')} Customcrm calls "
              f"(at least {plan.minutes_at_limit():.0f} min at Exact's limit)"
              + (f"; {left} Exact calls left today" if left is not None else ""), flush=True)
    print(f"talkcheck: {doc.title}, profile {args.profile}, seed {args.seed}, target "
          f"{target_for(args.engine, args.target)}, engine {args.engine}", flush=True)
    if tolerances:
        print(f"talkcheck: tolerances declared (compared through them, not strictly): "
              f"{'; '.join(described(tolerances))}", flush=True)
    started = time.monotonic()
    previous = signal.signal(signal.SIGINT, _first_interrupt)
    try:  # the display's thread starts once the workers have: they are forked from a process of one thread
        result = run_checklist(doc, flows=args.flows, checks=args.checks, profile=args.profile, seed=args.seed,
                               target=args.target,
                               engine=args.engine, jobs=jobs, progress=progress, sandbox=sandbox, mode=args.mode,
                               tolerances=tolerances, shrink=not args.no_shrink,
                               on_started=display.start if display is not None else None)
    except ConfigError as exc:
        print(f"talkcheck: {scrub(str(exc), sandbox.secrets if sandbox else [])}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        partial = partial_result(doc, finished, seed=args.seed, profile=args.profile,
                                 target=target_for(args.engine, args.target), engine=args.engine,
                                 duration_s=time.monotonic() - started, mode=args.mode)
        files = write_reports(partial, args.report_dir)
        print(f"\ntalkcheck: interrupted; {sum(len(f.checks) for f in partial.flows)} rows had run. Partial "
              f"report: {files[0]}" + (f" (records left in the sandbox: talkcheck cleanup --config {args.config})"
                                       if args.config else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
        if display is not None:
            display.stop()
    if baseline is not None:
        from conformance.baseline import MARKS, compare

        result.baseline, result.trend = baseline.path, baseline.trend
        result.marks = compare([(f.id, c.id, c.status) for f in result.flows for c in f.checks], baseline)
    files = write_reports(result, args.report_dir)
    if args.allure_dir:
        from conformance.allure import write_allure

        write_allure(result, args.allure_dir)
        files.append(Path(args.allure_dir))
    print(f"\n{result.count('passed')} passed, {result.count('failed')} failed, {result.count('skipped')} skipped "
          f"in {result.duration_s:.1f}s")
    for flow in result.flows:
        counts = {status: sum(c.status == status for c in flow.checks) for status in ("passed", "failed", "skipped")}
        state = "FAILED" if counts["failed"] else ("skipped" if not counts["passed"] else "ok")
        print(f"  {flow.id:<20} {state:<7} {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['skipped']} skipped" + (f": {flow.note}" if flow.note else ""))
    groups = failure_groups(result)
    if groups:
        print(f"\nfailures by probable cause ({len(groups)}):")
        for cause, rows in groups:
            print(f"  {len(rows)} × {cause}")
            print("      " + ", ".join(rows[:8]) + (f" and {len(rows) - 8} more" if len(rows) > 8 else ""))
    if result.baseline:
        tally = {m: sum(1 for v in result.marks.values() if v == m) for m in MARKS}
        print(f"\nagainst the baseline {result.baseline}: " + ", ".join(f"{n} {m}" for m, n in tally.items()))
        for (flow_id, check_id), m in result.marks.items():
            if m in ("new failure", "fixed", "newly skipped"):
                print(f"  {m.upper():<14} {flow_id} / {check_id}")
    if result.banner:
        print(f"\ntalkcheck: {result.banner}", file=sys.stderr)
    if result.sandbox:
        info = result.sandbox
        print(f"sandbox: run id {info['run_id']}, {sum(result.calls.values())} of {info['call_budget']} calls "
              f"({', '.join(f'{k} {v}' for k, v in sorted(result.calls.items()))}), {info['removed']} records "
              f"removed, {len(info['left'])} left behind")
        for system, state in sorted(info.get("limits", {}).items()):
            print(f"  {system}: waited {state['waited_s']} s for its rate limit, {state['refused_429']} answers 429 "
                  "(each waited out and sent again)"
                  + (f", {state['day_left']} calls left today" if state.get("day_left") is not None else ""))
        engine = engine_budget(info)
        if engine:
            print(f"  {engine}")
        for text in info["left"]:
            print(f"  left: {text}")
        if info.get("manifest"):
            print(f"  what is left is listed in {info['manifest']}: talkcheck cleanup --config {args.config}")
    print("report: " + ", ".join(str(p) for p in files))
    if result.nothing_checked:
        return EXIT_NOTHING_CHECKED
    if not result.ok or (args.fail_on_skip and result.count("skipped")):
        return EXIT_FAILED
    return EXIT_OK


def _first_interrupt(_signum: int, _frame: Any) -> None:
    """The first Ctrl-C stops the run (a partial report follows); a second one leaves at once."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))
    raise KeyboardInterrupt


def _first_sync(args: argparse.Namespace) -> str:
    """A state that knows nothing: the checklist hands `--from-env` a new state for new systems (create);
    a configured engine refuses when both systems already hold records, unless told what to do."""
    if args.relink:
        return "relink"
    if args.first_sync or args.from_env:
        return "create"
    return "refuse"


def _cmd_sync(args: argparse.Namespace) -> int:
    from sync.config import config_from_env, load_config
    from sync.errors import AuthError, ConfigError, ConnectorError, EngineBusy, StateError
    from sync.service import run_service, scrub

    try:
        config = config_from_env() if args.from_env else load_config(args.config)
    except ConfigError as exc:
        return _usage(f"talkcheck: {exc}")

    def fail(code: int, text: str) -> int:
        print(f"talkcheck: {scrub(text, config.secrets)}", file=sys.stderr)
        return code

    try:
        report = run_service(config, once=args.once, full=args.full, out=lambda text: print(text, flush=True),
                             first_sync=_first_sync(args), release_held=args.release_held)
    except (ConfigError, AuthError) as exc:
        return fail(EXIT_USAGE, str(exc))
    except StateError as exc:
        return fail(EXIT_STATE, str(exc))
    except EngineBusy as exc:
        return fail(EXIT_BUSY, str(exc))
    except ConnectorError as exc:
        return fail(EXIT_UNREACHABLE, f"the pass stopped: {exc}. Nothing is lost: the next pass starts from where "
                                      "this one was")
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # a defect of the engine itself: one line, the traceback only when asked for
        if os.environ.get("TALKCHECK_DEBUG"):
            raise
        return fail(EXIT_UNREACHABLE, f"the engine crashed ({type(exc).__name__}: {exc}); run again with "
                                      "TALKCHECK_DEBUG=1 for the traceback, and please report it")
    return EXIT_OK if all(r.failed == 0 for r in report.flows) else EXIT_FAILED


def _cmd_cleanup(args: argparse.Namespace) -> int:
    from conformance.cleanup import cleanup_runs
    from conformance.manifest import ManifestError
    from conformance.sandbox import load_sandbox
    from sync.errors import ConfigError

    try:
        settings = load_sandbox(args.config)
        results = cleanup_runs(settings, args.run_id, out=lambda text: print(text, flush=True))
    except (ConfigError, ManifestError) as exc:
        return _usage(f"talkcheck: {exc}")
    if not results:
        print("talkcheck: nothing to clean up" + (f" for run {args.run_id}" if args.run_id else ""))
    return EXIT_FAILED if any(r.left for r in results) else EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mocks.customcrm.app import create_app as customcrm_app
    from mocks.exact.app import create_app as exact_app

    def exact_with_limits() -> Any:
        return exact_app(rate_limits=True)

    apps: dict[str, tuple[Callable[[], Any], int]] = {
        "exact": (exact_with_limits, args.port), "customcrm": (customcrm_app, args.port + (args.system == "all"))}
    chosen = ["exact", "customcrm"] if args.system == "all" else [args.system]
    servers = []
    for name in chosen:
        factory, port = apps[name]
        servers.append(uvicorn.Server(uvicorn.Config(factory(), host=args.host, port=port, log_level="info")))
        print(f"talkcheck: serving the {name} mock on http://{args.host}:{port}", flush=True)
    threads = [threading.Thread(target=s.run, daemon=True) for s in servers[1:]]
    for t in threads:
        t.start()
    servers[0].run()
    for s in servers[1:]:
        s.should_exit = True
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (`argv` None: this process's own)."""
    code = _main(argv)
    if code == EXIT_INTERRUPTED and argv is None:
        _end_interrupted(code)
    if argv is None:
        # The process ends now. CPython tears its heap down with collections that walk every object the run
        # left (about 0.4 s after a run, a tenth of a smoke run); frozen, they are skipped, and what is not
        # cyclic garbage is freed as the modules are cleared all the same. Every file has been closed.
        gc.freeze()
    return code


def _end_interrupted(code: int) -> None:
    """End the process now with the exit code of an interrupted run, its output flushed. CPython 3.11 takes
    a Ctrl-C that went through code run by `exec` of a string (dataclasses make their methods so, and a
    Ctrl-C while the command loads lands there about one time in ten) for one nobody handled, however it was
    handled, and at exit kills the process with the signal instead: exit status -2, not the documented 130."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken output has nothing to flush
            stream.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "flows":
            return _cmd_flows(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "sync":
            return _cmd_sync(args)
        if args.command == "cleanup":
            return _cmd_cleanup(args)
        return _cmd_serve(args)
    except DataflowError as exc:
        return _usage(f"talkcheck: {exc}")
    except KeyboardInterrupt:  # Ctrl-C before a command set up its own handling (while it was loading)
        print("\ntalkcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the output was piped into a reader that stopped (`| head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
