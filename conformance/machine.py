"""``stays-in-sync``: a Hypothesis state machine over both systems, with and without faults.

Rules create, edit, clear, delete and change lines on either side, as users would, interleaved with sync
passes. After every pass the machine checks its model of the world against both systems: every linked
pair agrees on every mapped property, every new Customcrm record has exactly one new Exact record, the
survivors of deleted records are left alone and never re-created, and nothing is duplicated. At the end a
sync with no edits must write nothing.

The faults variant runs every pass with faults injected in both mocks (429s, 503s, latency, writes that
commit and then lose their response) and may kill the engine mid-pass; after the faults are lifted, two
clean passes must reach the same end state a fault-free run reaches.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conformance.agreement import assert_records_agree, mismatches
from conformance.context import FlowContext, expect_from_crm, skip_the_simplest, visible
from conformance.disruption import Disruption
from conformance.planner import RowCheck
from conformance.rule_checks import apply_edits, apply_line_edit, assert_quiet

__all__ = ["stays_in_sync_machine"]

# Records one machine keeps at a time against a sandbox: each costs the run a delete in Exact afterwards (a
# call of the day's 5,000), and three already interleave edits, deletes and passes across records.
SANDBOX_RECORDS = 3


def stays_in_sync_machine(ctx: FlowContext, *, faults: bool) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one flow's context."""
    check = "stays-in-sync-faults" if faults else "stays-in-sync"
    sides = st.sampled_from(["customcrm", "exact"])

    # The rules' preconditions, named: Hypothesis describes a precondition each time it checks one, and a
    # lambda's description is worked out from its source.
    def room_for_a_record(machine: Any) -> bool:
        return not ctx.safe or len(machine.pairs) + len(machine.new_crm) < SANDBOX_RECORDS

    def a_pair_is_linked(machine: Any) -> bool:
        return bool(machine.pairs)

    def a_pair_has_lines(machine: Any) -> bool:
        return bool(machine.pairs) and bool(ctx.line_mappings)

    class StaysInSync(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            ctx.reset()
            self.pairs: list[tuple[str, str]] = []
            self.new_crm: list[str] = []
            self.kept_exact: dict[str, Any] = {}  # survivors of a Customcrm delete -> their version then
            self.kept_crm: dict[str, Any] = {}  # survivors of an Exact delete -> their version then
            self.passes = 0
            # What the user meant each pair to hold (crm id -> mapping id -> the values it may hold, in
            # Customcrm's terms), and each side's last value of each property since the last pass.
            self.intent: dict[str, dict[str, tuple[Any, ...]]] = {}
            self.edited: dict[tuple[str, str], dict[str, Any]] = {}

        @initialize(data=st.data())
        def prepare(self, data: st.DataObject) -> None:
            """The records the flow refers to, and a first record or two already linked."""
            skip_the_simplest(ctx, data)
            ctx.prepare(data)
            for n in range(data.draw(st.integers(1, 2), label="records to start with")):
                record = ctx.draw_record(data)
                if n == 0:  # every class of value users type, in every run whatever the draws
                    for m in ctx.header:
                        if m.kind != "ref":
                            record[m.crm_field] = ctx.draw_value(data, m, allow_empty=False, every_class=True)
                self._create(record)
            ctx.sync()
            self._check_world()
            if faults:  # every example, the simplest too, starts with the classic crash after edits on both sides
                for side in ("customcrm", "exact"):
                    self.edit(data, side)
                self._crash_at_first_write()

        def _crash_at_first_write(self) -> None:
            """A pass that has read every change (and, in an engine that saves its cursors early, saved them)
            dies at its first write; then a clean pass, and the world must be as the users left it."""
            # nothing was written: one clean pass redoes what the killed one read
            ctx.sync(Disruption(fault_seed=None, kill=-1, clean=1))
            self.passes += 1
            self._check_world()

        @precondition(room_for_a_record)
        @rule(data=st.data())
        def create_in_customcrm(self, data: st.DataObject) -> None:
            self._create(ctx.draw_record(data))

        def _create(self, record: dict[str, Any]) -> None:
            crm_id = str(ctx.crm.create(ctx.crm_path, record)["Id"])
            self.new_crm.append(crm_id)
            self.intent[crm_id] = {m.id: (record[m.crm_field],) for m in _intended(ctx) if m.crm_field in record}

        @precondition(a_pair_is_linked)
        @rule(data=st.data(), side=sides)
        def edit(self, data: st.DataObject, side: str) -> None:
            crm_id, exact_id = data.draw(st.sampled_from(self.pairs), label="pair")
            chosen = data.draw(st.lists(st.sampled_from(list(ctx.mappings)), min_size=1, max_size=3, unique=True),
                               label="properties (edited or cleared)")
            written = apply_edits(ctx, data, side, crm_id, exact_id, chosen)
            intent = self.intent.setdefault(crm_id, {})
            for m in _intended(ctx):
                if m.id not in written:
                    continue
                latest = self.edited.setdefault((crm_id, m.id), {})
                if side == "customcrm" and m.exact_field in ctx.plan.entity.immutable:
                    intent.pop(m.id, None)  # Exact cannot change it after create: Exact's value stands
                    continue
                # Each side's last value since the pass. Edited on both sides, the property goes to the side
                # whose record was modified later, and that is judged by the record's modification time (an
                # edit of another property counts), so either side's last value may stand, and only those.
                latest[side] = written[m.id]
                intent[m.id] = tuple(latest.values())

        @precondition(a_pair_has_lines)
        @rule(data=st.data(), side=sides, action=st.sampled_from(["add", "change", "remove"]))
        def change_lines(self, data: st.DataObject, side: str, action: str) -> None:
            crm_id, exact_id = data.draw(st.sampled_from(self.pairs), label="pair")
            apply_line_edit(ctx, data, side, action, crm_id, exact_id)

        @precondition(a_pair_is_linked)
        @rule(data=st.data(), side=sides)
        def delete(self, data: st.DataObject, side: str) -> None:
            pair = data.draw(st.sampled_from(self.pairs), label="pair")
            crm_id, exact_id = pair
            try:
                if side == "customcrm":
                    ctx.crm.delete(ctx.crm_path, crm_id)
                else:
                    ctx.exact.delete(ctx.exact_path, exact_id)
            except httpx.HTTPStatusError:
                return  # in use by another record: the system refused, nothing changed
            self.pairs.remove(pair)
            versions = ctx.versions()
            if side == "customcrm":
                self.kept_exact[exact_id] = versions["exact"].get(exact_id)
            else:
                self.kept_crm[crm_id] = versions["customcrm"].get(crm_id)

        @rule(data=st.data())
        def sync(self, data: st.DataObject) -> None:
            if faults:
                # The classic crash, whenever there is something to apply: the pass has read every change (and
                # an engine that saves its cursors early has saved them) and dies at its first write, with no
                # other fault to stop it sooner. Drawn on its own, so that it is not one chance in a dozen.
                pending = bool(self.edited)
                if pending and data.draw(st.booleans(), label="crash at the first write, nothing else wrong"):
                    disruption = Disruption(fault_seed=None, kill=-1, clean=2)
                else:
                    seed = data.draw(st.integers(0, 2**16), label="fault seed")
                    # At a request early in the pass (after the change feeds are read, before the records are),
                    # later on, or at its first or second write (after everything is read, before anything is
                    # applied).
                    kill = data.draw(st.sampled_from([None, 4, 2, 3, 5, 6, -1, 8, 10, 14, -2, 20]),
                                     label="kill the engine after (requests; -n: at its n-th write)")
                    disruption = Disruption(fault_seed=seed, kill=kill, clean=2)
                ctx.sync(disruption)  # then two clean passes
            else:
                ctx.sync()
            self.passes += 1
            self._check_world()

        def _check_world(self) -> None:
            crm = {str(r["Id"]): r for r in ctx.crm_records()}
            exact = ctx.exact_records()
            survivors = [("exact", "Customcrm", exact, "Timestamp", self.kept_exact),
                         ("crm", "Exact", crm, "Version", self.kept_crm)]
            for side, other, records, version_field, kept in survivors:
                for record_id, version in kept.items():
                    if record_id not in records:
                        raise ctx.failure(check, f"{ctx.label(side, record_id)} was left when "
                                           f"its {other} record was deleted, and then the sync deleted it")
                    if records[record_id].get(version_field) != version:
                        raise ctx.failure(check, f"the sync wrote to "
                                           f"{ctx.label(side, record_id)}, whose {other} record was deleted")
            known = {e for _c, e in self.pairs} | set(self.kept_exact)
            new_exact = {k: v for k, v in exact.items() if k not in known}
            for crm_id, exact_id in self.pairs:
                if exact_id not in exact or crm_id not in crm:
                    raise ctx.failure(check, f"{ctx.label('crm', crm_id)} or "
                                       f"{ctx.label('exact', exact_id)} disappeared though neither was deleted")
            wanted = [c for c in self.new_crm if c in crm]
            for crm_id in wanted:  # greedy pairing: records created with equal values may pair either way
                matches = [k for k, row in new_exact.items() if not mismatches(ctx, crm[crm_id], row)]
                if not matches:
                    raise ctx.failure(check,
                        f"{ctx.label('crm', crm_id)} was created in Customcrm; after "
                        f"the sync no new Exact {ctx.flow.target_type} agrees with it: {crm[crm_id]!r}")
                self.pairs.append((crm_id, matches[0]))
                del new_exact[matches[0]]
            self.new_crm = []
            if new_exact:
                raise ctx.failure(check, f"the sync created {len(new_exact)} Exact record(s) no "
                                   f"Customcrm record accounts for (duplicates): {sorted(new_exact)}")
            for crm_id, exact_id in self.pairs:  # the records read above: no second read per pair
                assert_records_agree(ctx, check, crm[crm_id], exact[exact_id])
                self._as_meant(crm_id, exact_id, crm[crm_id])
            self.edited = {}

        def _as_meant(self, crm_id: str, exact_id: str, record: dict[str, Any]) -> None:
            """The pair agrees; it must also hold what the user entered (an engine that changes a value and
            copies the change back keeps the systems agreeing on the wrong value)."""
            intent = self.intent.get(crm_id, {})
            for m in _intended(ctx):
                meant = intent.get(m.id)
                if meant is None:
                    continue
                found = expect_from_crm(record.get(m.crm_field), m.kind)
                if not any(ctx.same(m, found, expect_from_crm(v, m.kind)) for v in meant):
                    raise ctx.failure(check,
                        f"{m.crm_field} of {ctx.label('crm', crm_id)} (and "
                        f"{m.exact_field} of {ctx.label('exact', exact_id)}) was last entered as "
                        f"{' or '.join(visible(v) for v in meant)}; after the sync both systems show "
                        f"{visible(record.get(m.crm_field))}, which no user entered")
                intent[m.id] = (record.get(m.crm_field),)  # settled: the next edit starts from it

        @invariant()
        def links_are_one_to_one(self) -> None:
            exact_ids = [e for _c, e in self.pairs]
            crm_ids = [c for c, _e in self.pairs]
            if len(set(exact_ids)) != len(exact_ids) or len(set(crm_ids)) != len(crm_ids):
                raise ctx.failure(check, f"a record is linked twice: {self.pairs!r}")

        def teardown(self) -> None:
            """The end state: one more clean pass settles the last steps, then a pass writes nothing."""
            if self.passes:
                ctx.sync()
                self._check_world()
                assert_quiet(ctx, check)

    StaysInSync.__name__ = f"StaysInSync_{ctx.flow.id.replace('-', '_')}"
    return StaysInSync


def _intended(ctx: FlowContext) -> list[RowCheck]:
    """The header properties whose value is what a user entered (not a reference that may stay empty)."""
    return [m for m in ctx.header if not m.soft]

