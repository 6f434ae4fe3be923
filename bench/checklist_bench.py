"""Wall time of the checklist as a user runs it: `talkcheck run` for the smoke and ci profiles.

Each round is a fresh `talkcheck run` process (start-up included) against the built-in mocks, all seven
flows of the project's document. Reported: the median and spread of the rounds, and the ratio of one
process to `--jobs 2` (the flows spread over both cores). With `--modes`, the two ways of running the
examples side by side in one benchmark run, alternating (per-example, batched, per-example, ...): the ratio
of their medians, and the calls and engine passes of each. Timings are medians on a shared machine, never
assertions.

    python bench/checklist_bench.py --rounds 3 --json bench/checklist.json
    python bench/checklist_bench.py --modes --rounds 3 --json bench/checklist_modes.json
    python bench/checklist_bench.py --against bf8c616 --against 7fab6d3 --rounds 3 --json bench/checklist_commits.json

With `--against REV`, the checklist at each commit (checked out in a temporary worktree, run with the same
interpreter) and the working tree, alternating round by round: the ratio of their medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def one_run(profile: str, jobs: int, mode: str = "batched", cwd: str | None = None) -> tuple[float, dict[str, int]]:
    """One `talkcheck run` (of the tree at `cwd`, the working tree when None): its wall time and counts."""
    mode_option = [] if mode == "batched" else ["--mode", mode]  # older commits know no --mode
    with tempfile.TemporaryDirectory() as report:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--profile", profile,
                               "--jobs", str(jobs), "--seed", "0", *mode_option, "--report-dir", report],
                              capture_output=True, text=True, cwd=cwd)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):  # 1: a check failed, which the figures count; anything else is broken
            raise SystemExit(f"talkcheck run --profile {profile} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        if done.returncode == 1:
            print(f"  (a round of --profile {profile} in {cwd or 'the working tree'} had failures:\n"
                  + "\n".join(line for line in done.stdout.splitlines() if "FAILED" in line) + ")", flush=True)
        results = json.loads((Path(report) / "results.json").read_text())
    summary, run = results["summary"], results["run"]
    run.setdefault("checklist_calls", {})
    passes = sum(int(p.get("engine passes", 0)) for p in run.get("phases", {}).values())
    return elapsed, {**{k: summary[k] for k in ("passed", "failed", "skipped")},
                     "checklist_calls": sum(run["checklist_calls"].values()), "all_calls": sum(run["calls"].values()),
                     "engine_passes_side_by_side": passes}


def compare_modes(rounds: int) -> dict[str, object]:
    """Per-example and batched, alternating, for smoke and ci with --jobs 2."""
    figures: dict[str, object] = {}
    for profile in ("smoke", "ci"):
        times: dict[str, list[float]] = {"per-example": [], "batched": []}
        counts: dict[str, dict[str, int]] = {}
        for _ in range(rounds):
            for mode in ("per-example", "batched"):
                elapsed, counts[mode] = one_run(profile, 2, mode)
                times[mode].append(elapsed)
        for mode in times:
            figures[f"{profile}_{mode}"] = {"median_s": round(statistics.median(times[mode]), 1),
                                            "min_s": round(min(times[mode]), 1), "max_s": round(max(times[mode]), 1),
                                            "rounds": rounds, **counts[mode]}
            print(f"{profile}_{mode}", figures[f"{profile}_{mode}"], flush=True)
        figures[f"{profile}_speedup"] = round(statistics.median(times["per-example"])
                                              / statistics.median(times["batched"]), 2)
        print(f"{profile} speed-up, batched over per-example:", figures[f"{profile}_speedup"], flush=True)
    return figures


@contextmanager
def checked_out(revisions: list[str]) -> Iterator[dict[str, str | None]]:
    """Each revision checked out in a temporary worktree, then the working tree: name -> folder to run in
    (None: the working tree itself). The worktrees are removed afterwards."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as trees:
        places: dict[str, str | None] = {}
        try:
            for rev in revisions:
                tree = str(Path(trees) / rev)
                subprocess.run(["git", "-C", root, "worktree", "add", "--detach", tree, rev], check=True,
                               capture_output=True)
                places[rev] = tree
            places["working tree"] = None
            yield places
        finally:
            for where in places.values():
                if where is not None:
                    subprocess.run(["git", "-C", root, "worktree", "remove", "--force", where], capture_output=True)


def compare_commits(revisions: list[str], rounds: int, profiles: list[str]) -> dict[str, object]:
    """Each of `revisions` and the working tree, alternating round by round (a fresh process each run,
    `--jobs 2`): the medians and each revision's ratio to the working tree."""
    figures: dict[str, object] = {}
    with checked_out(revisions) as places:
        for profile in profiles:
            times: dict[str, list[float]] = {name: [] for name in places}
            counts: dict[str, dict[str, int]] = {}
            for _ in range(rounds):
                for name, where in places.items():
                    elapsed, counts[name] = one_run(profile, 2, cwd=where)
                    times[name].append(elapsed)
            now = statistics.median(times["working tree"])
            for name in places:
                median = statistics.median(times[name])
                figures[f"{profile} {name}"] = {
                    "median_s": round(median, 1), "min_s": round(min(times[name]), 1),
                    "max_s": round(max(times[name]), 1), "rounds": rounds,
                    "ratio_to_working_tree": round(median / now, 2), **counts[name]}
                print(f"{profile} {name}", figures[f"{profile} {name}"], flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--modes", action="store_true", help="compare --mode per-example and batched")
    parser.add_argument("--against", action="append", default=[], metavar="REV",
                        help="compare side by side with the checklist at this commit (repeatable)")
    parser.add_argument("--profile", action="append", dest="profiles", help="with --against: smoke, ci (both)")
    args = parser.parse_args()
    if args.against:
        commits = compare_commits(args.against, args.rounds, args.profiles or ["smoke", "ci"])
        if args.json:
            Path(args.json).write_text(json.dumps(commits, indent=2) + "\n")
        return
    if args.modes:
        modes = compare_modes(args.rounds)
        if args.json:
            Path(args.json).write_text(json.dumps(modes, indent=2) + "\n")
        return
    figures: dict[str, object] = {}
    for profile, jobs in (("smoke", 2), ("ci", 2), ("ci", 1)):
        rounds = args.rounds if jobs == 2 else 1
        times = []
        counts: dict[str, int] = {}
        for _ in range(rounds):
            elapsed, counts = one_run(profile, jobs)
            times.append(elapsed)
        key = f"{profile}_jobs{jobs}"
        figures[key] = {"median_s": round(statistics.median(times), 1), "min_s": round(min(times), 1),
                        "max_s": round(max(times), 1), "rounds": rounds, **counts}
        print(key, figures[key], flush=True)
    ci2, ci1 = figures["ci_jobs2"], figures["ci_jobs1"]
    figures["ci_speedup_jobs2"] = round(ci1["median_s"] / ci2["median_s"], 2)  # type: ignore[index]
    print("ci speed-up with --jobs 2:", figures["ci_speedup_jobs2"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
