"""Planted-bug variants of the reference engine: each breaks one promise, and a named check must catch it.

This is how the checklist proves it bites (Hypothesis's ``bad_machines``, Schemathesis's modifiers): a
check that passes against every variant below could never fail, and would be a defect.
"""

from __future__ import annotations

from typing import Any

from sync.engine import Engine, FlowPlan

__all__ = ["PLANTED_BUGS", "EchoingEngine", "NoLinkLookupEngine"]


class EchoingEngine(Engine):
    """Skips echo suppression: whatever a change feed mentions is pushed whole to the other side,
    without comparing with the last synced snapshot, so the engine's own writes come back as changes."""

    def is_echo(self, *args: Any) -> bool:
        return False

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        to_crm, to_exact, new_snapshot = super().merge(plan, snapshot, crm_values, exact_values, crm_first, changed)
        if "exact" in changed:
            to_crm = dict(exact_values)
        if "customcrm" in changed:
            to_exact = dict(crm_values)
        return to_crm, to_exact, new_snapshot


class NoLinkLookupEngine(Engine):
    """Never looks for an existing Exact record with the merge key, so it creates a duplicate."""

    def find_matches(self, plan: FlowPlan, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        return []


# bug name -> (engine variant, the check that must fail)
PLANTED_BUGS: dict[str, tuple[type[Engine], str]] = {
    "echo": (EchoingEngine, "stays-in-sync"),
    "no-link-lookup": (NoLinkLookupEngine, "link"),
}
