"""What a `talkcheck run` costs around its work: the imports before it starts, the end after it is done, and
a terminal (the live display).

Each round is, first, a fresh process that imports what a run imports before its workers start (timed from
the process's start to the imports' end), then a fresh `talkcheck run --profile smoke` (all seven flows, the
built-in mocks, `--jobs 2`) whose command's return is stamped by the process itself and its end by this
script; then the same run on a terminal (a pseudo-terminal, outside CI: the live display on). With
`--against REV`, that commit (checked out in a temporary worktree, run with the same
interpreter) and the working tree alternate round by round. Medians on a shared machine, never assertions.

    python bench/startup_bench.py --against 1f85244 --rounds 5 --json bench/startup_terminal_ab.json
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checklist_bench import checked_out  # the commits to compare, each in a worktree

# The command as its entry point runs it (`main()` with no arguments: this process's own command line),
# then the moment it returned, on stderr's last line.
_STAMPED = ("import sys, time; from conformance.cli import main; code = main(); "
            "print(f'returned {time.time():.6f}', file=sys.stderr); raise SystemExit(code)")


_IMPORTS = "import conformance.cli, conformance.runner, conformance.engines, conformance.report"


def imports(cwd: str | None) -> tuple[float, float]:
    """A fresh process that makes a run's imports and ends: (its wall time, its CPU time), the interpreter's
    start included. The CPU time moves less with the machine's other load than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    subprocess.run([sys.executable, "-c", _IMPORTS], check=True, capture_output=True, cwd=cwd)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def on_terminal(cwd: str | None) -> float:
    """Seconds of one `talkcheck run --profile smoke` whose output is a terminal, as a person runs it."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # the live display is off under CI
    primary, secondary = pty.openpty()
    with tempfile.TemporaryDirectory() as report:
        started = time.time()
        run = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--profile", "smoke", "--jobs", "2",
                                "--seed", "0", "--report-dir", report], stdin=subprocess.DEVNULL, stdout=secondary,
                               stderr=secondary, cwd=cwd, env=env)
        os.close(secondary)
        while True:  # the terminal is read as a person's would be, so the run never waits on it
            try:
                if not os.read(primary, 65536):
                    break
            except OSError:  # the run has ended and closed its side
                break
        code = run.wait()
        elapsed = time.time() - started
    os.close(primary)
    if code not in (0, 1):
        raise SystemExit(f"talkcheck run on a terminal failed with exit code {code}")
    return elapsed


def one_round(cwd: str | None) -> tuple[float, float]:
    """One run: (seconds from start to end, seconds from the command's return to the process's end)."""
    with tempfile.TemporaryDirectory() as report:
        started = time.time()
        done = subprocess.run([sys.executable, "-c", _STAMPED, "run", "--profile", "smoke", "--jobs", "2",
                               "--seed", "0", "--report-dir", report], capture_output=True, text=True, cwd=cwd)
        ended = time.time()
    if done.returncode not in (0, 1):
        raise SystemExit(f"talkcheck run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    stamp = next(line for line in reversed(done.stderr.splitlines()) if line.startswith("returned "))
    return ended - started, ended - float(stamp.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", metavar="REV", help="a commit to compare with, round by round")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with checked_out([args.against] if args.against else []) as trees:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        loads: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        terminal: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, cwd in trees.items():
                loads[name].append(imports(cwd))
                runs[name].append(one_round(cwd))
                terminal[name].append(on_terminal(cwd))
    figures = {name: {"median_imports_s": round(statistics.median(w for w, _ in loads[name]), 3),
                      "median_imports_cpu_s": round(statistics.median(c for _, c in loads[name]), 3),
                      "imports_s": [round(w, 3) for w, _ in loads[name]],
                      "median_total_s": round(statistics.median(t for t, _ in rounds), 2),
                      "median_after_return_s": round(statistics.median(a for _, a in rounds), 3),
                      "after_return_s": [round(a, 3) for _, a in rounds],
                      "median_on_terminal_s": round(statistics.median(terminal[name]), 2),
                      "on_terminal_s": [round(t, 2) for t in terminal[name]], "rounds": len(rounds)}
               for name, rounds in runs.items()}
    for name, figure in figures.items():
        print(name, figure)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
