"""Mutation benchmark: how many of the reference engine's plausible defects the smoke checklist catches.

Cosmic Ray (a maintained mutation-testing tool) lists every mutation of `sync/engine.py` (a comparison
turned round, a condition negated, a loop that never runs, a constant changed...). A seeded sample of them
is applied, one at a time, to a checkout of the last commit, and each mutant runs the smoke checklist as a
user runs it (`talkcheck run --profile smoke --no-shrink`, all seven flows: the verdict, not a minimal
example, is what counts here). A mutant is killed when the run fails (exit
1, with the rows that failed), errs or hangs; it survives when every check passes. Survivors are listed with
their change, to be judged equivalent (no behaviour a user can see changes) or a gap in the checklist.

    python bench/mutation.py --sample 80 --seed 1 --json bench/mutation.json

The sample, the seed and the commit make a run repeatable; two mutants run side by side, one per core.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cosmic_ray.commands.init import init
from cosmic_ray.mutating import mutate_code
from cosmic_ray.plugins import get_operator
from cosmic_ray.work_db import WorkDB

TARGET = "sync/engine.py"
TIMEOUT_S = 300


def mutations(root: Path) -> list[dict[str, Any]]:
    """Every mutation Cosmic Ray makes of the target, in a stable order."""
    with tempfile.TemporaryDirectory() as scratch:
        db = WorkDB(str(Path(scratch) / "session.sqlite"), WorkDB.Mode.create)
        try:
            init([root / TARGET], db, {})
            specs = [m for item in db.work_items for m in item.mutations]
        finally:
            db.close()
    out = [{"operator": s.operator_name, "occurrence": s.occurrence, "line": s.start_pos[0],
            "definition": s.definition_name or ""} for s in specs]
    return sorted(out, key=lambda m: (m["operator"], m["occurrence"]))


def mutated(source: str, mutation: dict[str, Any]) -> str | None:
    operator = get_operator(mutation["operator"])()
    code: str | None = mutate_code(source, operator, mutation["occurrence"])
    return code


def change(source: str, code: str) -> str:
    """The mutant's change as a unified diff of the lines it touched."""
    diff = difflib.unified_diff(source.splitlines(), code.splitlines(), lineterm="", n=0)
    return "\n".join(line for line in diff if not line.startswith(("---", "+++", "@@")))


def run_smoke(tree: Path) -> tuple[str, list[str], float]:
    """The smoke checklist in `tree`: killed or survived, the rows that failed, the wall time."""
    with tempfile.TemporaryDirectory() as report:
        started = time.perf_counter()
        try:
            command = [sys.executable, "-m", "conformance.cli", "run", "--profile", "smoke", "--jobs", "1",
                       "--seed", "0", "--no-shrink", "--report-dir", report]
            done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return "killed (timeout)", [], time.perf_counter() - started
        elapsed = time.perf_counter() - started
        results = Path(report) / "results.json"
        failed = []
        if results.exists():
            data = json.loads(results.read_text())
            failed = [f"{f['id']} / {c['id']}" for f in data["flows"] for c in f["checks"] if c["status"] == "failed"]
    if done.returncode == 0:
        return "survived", [], elapsed
    if done.returncode == 1 and failed:
        return "killed", failed, elapsed
    return f"killed (exit {done.returncode})", failed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=80, help="mutants to run (a seeded sample of all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="mutants run side by side")
    parser.add_argument("--json", help="write the figures and the survivors here")
    parser.add_argument("--survivors", metavar="JSON",
                        help="run again only the survivors of an earlier run (its --json), at this commit: after a "
                             "check was added for a gap (the engine file must be unchanged since)")
    args = parser.parse_args()
    root = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    every = mutations(root)
    chosen = sorted(random.Random(args.seed).sample(every, min(args.sample, len(every))),
                    key=lambda m: (m["line"], m["operator"]))
    if args.survivors:
        earlier = json.loads(Path(args.survivors).read_text())
        chosen = [{k: o[k] for k in ("operator", "occurrence", "line", "definition")}
                  for o in earlier["outcomes"] if o["verdict"] == "survived"]
    print(f"{len(every)} mutations of {TARGET} at {commit}; running {len(chosen)} (seed {args.seed})", flush=True)
    outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as trees:
        slots = []
        for n in range(args.jobs):
            tree = Path(trees) / f"slot{n}"
            subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), "HEAD"], check=True,
                           capture_output=True)
            slots.append(tree)
        free = list(slots)
        source = (slots[0] / TARGET).read_text()

        def one(mutation: dict[str, Any]) -> None:
            with lock:
                tree = free.pop()
            try:
                code = mutated(source, mutation)
                if code is None or code == source:
                    return
                (tree / TARGET).write_text(code)
                verdict, failed, elapsed = run_smoke(tree)
                (tree / TARGET).write_text(source)
                outcome = {**mutation, "verdict": verdict, "failed": failed[:6], "seconds": round(elapsed, 1),
                           "change": change(source, code)}
                with lock:
                    outcomes.append(outcome)
                    print(f"[{len(outcomes)}/{len(chosen)}] line {mutation['line']} {mutation['operator']}: "
                          f"{verdict}" + (f" by {failed[0]}" if failed else ""), flush=True)
            finally:
                with lock:
                    free.append(tree)

        try:
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                list(pool.map(one, chosen))
        finally:
            for tree in slots:
                subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    killed = [o for o in outcomes if o["verdict"].startswith("killed")]
    survivors = sorted((o for o in outcomes if o["verdict"] == "survived"), key=lambda o: o["line"])
    share = len(killed) / len(outcomes) if outcomes else 0.0
    print(f"\n{len(killed)} of {len(outcomes)} mutants killed ({share:.0%}); {len(survivors)} survived:")
    for o in survivors:
        print(f"  line {o['line']} ({o['definition']}) {o['operator']}\n    " + o["change"].replace("\n", "\n    "))
    if args.json:
        Path(args.json).write_text(json.dumps({"target": TARGET, "commit": commit, "mutations": len(every),
                                               "sample": len(outcomes), "seed": args.seed, "killed": len(killed),
                                               "survived": len(survivors), "outcomes": outcomes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
