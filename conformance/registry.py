"""What a row of the checklist is: a check's record, and the rows a flow's property table gives.

Kept apart from the checks themselves, so that the generic checks (`checks`) and the users flow's
(`user_checks`) both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from conformance.context import FlowContext
from sync.dataflow import Flow, PropertyRow

__all__ = ["Check", "property_checks"]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[FlowContext, st.DataObject], None] | None
    row: PropertyRow | None = None
    # A check that is a state machine: built per flow, run with Hypothesis's stateful runner.
    machine: Callable[[FlowContext], type[RuleBasedStateMachine]] | None = None
    # Why the check does not apply to a flow (no lines, no references...), or None when it does.
    applies: Callable[[FlowContext], str | None] | None = None
    # Runs alone, never side by side with other checks: it stops the mocks' clocks or injects faults, which
    # would reach every check sharing the systems. (A sandbox keeps real time and takes no faults: there such a
    # check runs side by side.)
    alone: bool = False
    # A property row that runs with the flow's other such rows on one record per example (property_rows).
    together: bool = False
    # One example whatever the profile (a volume check: its worth is the volume, not the variety of data).
    once: bool = False

    def skip_reason(self, ctx: FlowContext) -> str | None:
        return self.applies(ctx) if self.applies is not None else None



def property_checks(flow: Flow, make: Callable[[PropertyRow], Callable[[FlowContext, st.DataObject], None]],
                    *, together: bool = False) -> list[Check]:
    """One check per property row of the flow's table."""
    return [Check(f"property:{row.id}", f"{row.source} is kept equal to {row.target} ({row.data_type})",
                  make(row), row, together=together) for row in flow.properties]
