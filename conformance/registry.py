"""What a row of the checklist is: a check's record, the registries checks are declared in, and the rows a
flow's property table gives.

A check is declared where it is written, with a decorator that gives its id, its title and when it does not
apply (`Registry.check`); a registry keeps the checks in the order they were declared, which is the order of
the report's rows. Kept apart from the checks themselves, so that the generic checks (`checks`,
`rule_checks`) and the users flow's (`user_checks`) all build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from conformance.context import FlowContext
from sync.dataflow import Flow, PropertyRow

__all__ = ["Check", "Registry", "Status", "property_checks"]

RunCheck = Callable[[FlowContext, st.DataObject], None]
Applies = Callable[[FlowContext], str | None]
MachineFactory = Callable[[FlowContext], type[RuleBasedStateMachine]]


class Status(StrEnum):
    """How a row of the checklist ended (equal to its name in results.json, JUnit and the reports)."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


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
    # Alone, apart from the other checks, but its own examples side by side in a batch of their own: what it
    # does to the systems happens where all of them share it (faults and kills in their passes, `Disruption`;
    # the stopped clocks, `Clocks`).
    own_batch: bool = False
    # In its own batch, one batch per flow rather than one for the same check of every flow: what it does to a
    # pass is counted from the pass's start (the engine killed at its n-th request, or at its first write),
    # and in a pass of many flows that would land in the first flow with work to do, never in the later ones.
    batch_per_flow: bool = False
    # A property row that runs with the flow's other such rows on one record per example (property_rows).
    together: bool = False
    # One example whatever the profile (a volume check: its worth is the volume, not the variety of data).
    once: bool = False

    def skip_reason(self, ctx: FlowContext) -> str | None:
        return self.applies(ctx) if self.applies is not None else None


class Registry:
    """Checks as they are declared, in order (the report lists them so); an id is declared once."""

    def __init__(self) -> None:
        self._checks: list[Check] = []

    def _add(self, check: Check) -> None:
        if any(c.id == check.id for c in self._checks):
            raise ValueError(f"the check {check.id!r} is declared twice")
        self._checks.append(check)

    def check(self, check_id: str, title: str, *, applies: Applies | None = None, alone: bool = False,
              once: bool = False, own_batch: bool = False) -> Callable[[RunCheck], RunCheck]:
        """Declare the decorated function as the check `check_id`: a Hypothesis property over one example.
        `applies` says why the check does not apply to a flow (None when it does); `alone`: never side by
        side with other checks on the mocks (it stops their clocks or holds writes in flight); `once`: one
        example whatever the profile (a volume check); `own_batch`: alone, with its examples side by side
        among themselves (they share the stopped clocks)."""

        def declare(run: RunCheck) -> RunCheck:
            self._add(Check(check_id, title, run, applies=applies, alone=alone, once=once, own_batch=own_batch))
            return run

        return declare

    def machine(self, check_id: str, title: str, *, applies: Applies | None = None, alone: bool = False,
                own_batch: bool = False, batch_per_flow: bool = False) -> Callable[[MachineFactory], MachineFactory]:
        """Declare the decorated factory (flow context -> state machine class) as the check `check_id`;
        `own_batch`: alone, with its examples side by side among themselves (`batch_per_flow`: a batch for
        each flow)."""

        def declare(factory: MachineFactory) -> MachineFactory:
            self._add(Check(check_id, title, None, machine=factory, applies=applies, alone=alone,
                            own_batch=own_batch, batch_per_flow=batch_per_flow))
            return factory

        return declare

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)



def property_checks(flow: Flow, make: Callable[[PropertyRow], Callable[[FlowContext, st.DataObject], None]],
                    *, together: bool = False) -> list[Check]:
    """One check per property row of the flow's table."""
    return [Check(f"property:{row.id}", f"{row.source} is kept equal to {row.target} ({row.data_type})",
                  make(row), row, together=together) for row in flow.properties]
