"""What a run will cost, before anything is written: ``talkcheck run --plan``.

The checklist's calls depend on what it draws, and the draws on the seed alone, so the cost of a sandbox run
is measured rather than guessed: the same checks, profile and seed run first against in-process mocks set
up as a sandbox (safe mode, scoped reads, run-tagged keys, clean-up), with talkcheck's engine between them.
The checklist's own calls per check and system are counted and turned into time at the sandbox's limits
(Exact: 60 calls a minute, 5,000 a day per app and division). The figure assumes an engine that keeps the
document's promises; a defective engine can make a check stop early (fewer calls) or shrink a failure
(more calls against the mocks; none against a sandbox, where nothing is shrunk twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.runner import RunResult, run_checklist
from conformance.sandbox import SandboxSettings
from conformance.systems import Systems
from sync.dataflow import Dataflow
from sync.errors import ConfigError

__all__ = ["EXACT_PER_DAY", "EXACT_PER_MINUTE", "Plan", "day_left", "estimate", "render_plan", "refusal"]

EXACT_PER_MINUTE = 60
EXACT_PER_DAY = 5000
MARGIN = 1.1


@dataclass
class Plan:
    """Calls per check (flow, check) and system, and the totals."""

    rows: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    profile: str = "ci"
    seed: int = 0
    # The run's calls per phase (the checks side by side, then one at a time, then the clean-up).
    phases: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def total(self, system: str) -> int:
        if self.totals:
            return self.totals.get(system, 0)
        return sum(calls.get(system, 0) for _f, _c, calls in self.rows)

    def minutes_at_limit(self, per_minute: int = EXACT_PER_MINUTE) -> float:
        """The least wall time the Exact calls take at the minute's limit."""
        return self.total("exact") / per_minute

    @classmethod
    def from_result(cls, result: RunResult) -> Plan:
        rows = [(f.id, c.id, dict(c.calls)) for f in result.flows for c in f.checks if c.status != "skipped"]
        return cls(rows, result.profile, result.seed, dict(result.phases), dict(result.checklist_calls))


def estimate(doc: Dataflow, *, flows: list[str] | None, profile: str, seed: int,
             checks: list[str] | None = None, mode: str = "batched") -> Plan:
    """Run the checks against a simulated sandbox and count the checklist's calls. In one process, as a
    sandbox run is (one pair of systems): flows spread over processes would each keep a mirror of their own
    and read every change API once per process and pass, which the run itself never does."""
    result = run_checklist(doc, flows=flows, profile=profile, seed=seed, target="simulation", engine="builtin",
                           jobs=1, checks=checks, mode=mode)
    return Plan.from_result(result)


def render_plan(plan: Plan, *, day_left: int | None = None, budget: int | None = None,
                out: Callable[[str], None] = print) -> None:
    """The plan as a table: calls per check and system, totals, and time at Exact's limit."""
    out(f"plan: profile {plan.profile}, seed {plan.seed}: the checklist's own calls per check (measured on "
        "in-process mocks set up as a sandbox)")
    out(f"  {'flow':<20} {'check':<40} {'exact':>6} {'customcrm':>10}")
    for flow, check, calls in plan.rows:
        if calls:
            out(f"  {flow:<20} {check[:40]:<40} {calls.get('exact', 0):>6} {calls.get('customcrm', 0):>10}")
        else:
            out(f"  {flow:<20} {check[:40]:<40} {'(side by side: see the phase)':>17}")
    for phase, calls in plan.phases.items():
        passes = f" ({calls['engine passes']} engine passes)" if calls.get("engine passes") else ""
        out(f"  {'phase':<20} {(phase + passes)[:40]:<40} {calls.get('exact', 0):>6} {calls.get('customcrm', 0):>10}")
    exact, crm = plan.total("exact"), plan.total("customcrm")
    out(f"  {'total':<61} {exact:>6} {crm:>10}")
    out(f"Exact: {exact} calls, at least {plan.minutes_at_limit():.1f} minutes at {EXACT_PER_MINUTE} calls a minute; "
        f"{exact / EXACT_PER_DAY:.0%} of a day's {EXACT_PER_DAY} calls per app and division")
    if budget is not None:
        out(f"the config's call budget: {budget} calls in all ({exact + crm} planned)")
    if day_left is not None:
        out(f"the checklist's Exact app has {day_left} calls left today")


def day_left(settings: SandboxSettings) -> int | None:
    """How many calls the checklist's Exact app has left today, as the sandbox says (costs one call)."""
    systems = Systems.sandbox(settings, "plan")
    try:
        actor = systems.exact_actor()
        response = actor.client.get(actor.url("crm/Accounts"), headers=actor._headers(), params={
            "$filter": "ID eq guid'00000000-0000-0000-0000-000000000000'", "$select": "ID"})
        if response.status_code in (401, 403):
            raise ConfigError(f"Exact refused the checklist's credentials (HTTP {response.status_code}); check the "
                              "variables the sandbox config names")
        response.raise_for_status()
        state = systems.limits.get("exact")
        return state.day_left if state is not None else None
    finally:
        systems.close()


def refusal(plan: Plan, settings: SandboxSettings, left: int | None) -> str | None:
    """Why a sandbox run must not start (its estimate does not fit what is left), or None."""
    # A tenth more than measured: another engine makes the checks read a little more (more pages, retries).
    exact = math.ceil(plan.total("exact") * MARGIN)
    calls = math.ceil((plan.total("exact") + plan.total("customcrm")) * MARGIN)
    if left is not None and exact > left:
        return (f"the run needs about {exact} Exact calls (see --plan) and the checklist's Exact app has {left} "
                "left today; run fewer flows (--flow), a smaller profile, or wait for the daily reset")
    reserve = max(50, settings.call_budget // 10)
    if calls > settings.call_budget - reserve:
        return (f"the run needs about {calls} calls (see --plan) and the config's call_budget is "
                f"{settings.call_budget}, {reserve} of them kept for the clean-up")
    return None
