"""What a check knows about one flow: how to reach both systems, how to draw records, how to compare them.

Values are compared by this module's own reading of both APIs, not by the engine's, so a conversion bug
in the engine cannot agree with itself. References are compared through the pairs the check itself
created and saw linked (``pools``), never through the engine's link store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx
from hypothesis import assume
from hypothesis import strategies as st

from conformance import agreement, drawing, people
from conformance.clocks import Clocks
from conformance.disruption import Disruption, disrupted_pass
from conformance.engines import EngineDriver
from conformance.failures import CheckFailure, EngineError, NotApplicable, PassNotRun, visible
from conformance.lockstep import Lockstep
from conformance.ownership import Owned
from conformance.planner import CheckPlan, RowCheck, plan_checks
from conformance.readings import exact_wire, expect_from_crm, expect_from_exact
from conformance.sandbox import AMSTERDAM
from conformance.strategies import (
    exact_table,
    next_unique,
    reset_unique,
)
from conformance.systems import CustomcrmActor, ExactActor, Systems
from mocks.exact.properties import TABLES as EXACT_TABLES
from sync.dataflow import Dataflow, Flow, PropertyRow

__all__ = ["AMSTERDAM", "CheckFailure", "FlowContext", "NotApplicable", "engine_flows", "exact_wire", "expect_from_crm",
           "expect_from_exact", "visible"]



EXCHANGES_KEPT = 12


# A check's lanes at most (its unique numbers are interleaved by lane).
LANES_AT_MOST = 8


def skip_the_simplest(ctx: FlowContext, data: st.DataObject) -> None:
    """Hypothesis tries the simplest example first; in every lane but the first it would be the same example
    again, so there it is passed over (a draw of 0 is rejected before anything is written)."""
    if ctx.lane:
        assume(data.draw(st.integers(0, 255)) != 0)


@dataclass
class FlowContext:
    """Everything a check needs about one flow and the systems it runs against."""

    flow: Flow
    plan: CheckPlan
    systems: Systems
    engine: EngineDriver
    crm: CustomcrmActor
    exact: ExactActor
    flows: list[str] = field(default_factory=list)  # the flows the engine must run for this one
    pools: dict[str, dict[str, str]] = field(default_factory=dict)  # ref type -> {crm id: exact id}
    names: dict[str, str] = field(default_factory=dict)  # Exact user id -> full name
    exact_sets: frozenset[str] = frozenset()  # the Exact sets the flows in play write (for the clean-up)
    # In a batch: the shared sync passes, this check's slot, its examples so far, and what the example owns.
    batch: Lockstep | None = None
    slot: int = 0
    examples: int = 0
    owned: Owned | None = None
    shared_pools: dict[str, dict[str, str]] | None = None  # in a batch: the references every check shares
    tolerances: dict[str, frozenset[str]] = field(default_factory=dict)  # property -> kinds declared (--tolerate)
    # The checklist's own HTTP exchanges of the current example (the last ones), for a failure's evidence.
    exchanges: deque[str] = field(default_factory=lambda: deque(maxlen=EXCHANGES_KEPT))
    draws: dict[str, int] = field(default_factory=dict)  # draws of each property in this example so far
    last_created: dict[str, Any] = field(default_factory=dict)  # the last record create_pair made, as taken
    lane: int = 0  # in a batch: which of the check's lanes (side by side runs of its examples) this is
    volume: bool = False  # this flow carries the run's volume check (paging): one flow, at ci and thorough

    def __post_init__(self) -> None:
        for actor in (self.crm, self.exact):
            actor.client.event_hooks.setdefault("response", []).append(self._note_exchange)

    def _note_exchange(self, response: httpx.Response) -> None:
        """One exchange as evidence: the call, its body and the answer, each cut short (no headers, so no
        credentials; the token endpoint is left out)."""
        request = response.request
        if "/oauth2/" in request.url.path or "/_admin" in request.url.path:
            return
        answer = response.read()[:300].decode("utf-8", "replace")  # a page of 1,000 rows is not decoded whole
        sent = request.content[:300].decode("utf-8", "replace") if request.content else ""
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        self.exchanges.append(f"{request.method} {request.url.path}{query}" + (f" {sent}" if sent else "")
                              + f" -> {response.status_code} {answer}")

    def exchange_note(self) -> str:
        """The example's last exchanges, for the evidence of a failure."""
        if not self.exchanges:
            return ""
        return "The checklist's last HTTP exchanges in this example:\n" + "\n".join(f"  {e}" for e in self.exchanges)

    def failure(self, check: str | None, message: str, **fields: Any) -> CheckFailure:
        """A failure of this flow's `check` (None: of the flow as a whole)."""
        return CheckFailure(message, flow=self.flow.id, check=check, **fields)

    @classmethod
    def for_flow(cls, flow: Flow, doc: Dataflow, systems: Systems, engine: EngineDriver) -> FlowContext | str:
        """The context of one flow of `doc`, or why the flow cannot be satisfied."""
        plan = plan_checks(flow, doc)
        if isinstance(plan, str):
            return plan
        flows = engine_flows(flow, doc)
        plans = [plan_checks(doc.flow(f), doc) for f in flows]
        return cls(flow, plan, systems, engine, systems.customcrm_actor(), systems.exact_actor(), flows=flows,
                   exact_sets=frozenset(p.entity.type_name for p in plans if isinstance(p, CheckPlan)))

    # ------------------------------------------------------------------ the flow

    @property
    def mappings(self) -> tuple[RowCheck, ...]:
        return tuple(m for m in self.plan.mappings if not m.read_only)

    @property
    def header(self) -> tuple[RowCheck, ...]:
        return tuple(m for m in self.mappings if not m.is_line)

    @property
    def line_mappings(self) -> tuple[RowCheck, ...]:
        return tuple(m for m in self.mappings if m.is_line)

    def mapping(self, row: PropertyRow) -> RowCheck:
        return next(m for m in self.plan.mappings if m.row == row)

    @property
    def crm_path(self) -> str:
        return self.plan.resource.path

    @property
    def exact_path(self) -> str:
        return self.plan.entity.path

    @property
    def exact_key(self) -> str:
        return self.plan.entity.key

    def ref_type(self, mapping: RowCheck) -> str:
        kind = self.plan.resource.kind(mapping.crm_field if not mapping.is_line else mapping.row.source)
        return (kind or "ref:?")[4:]

    def exact_mandatory(self, mapping: RowCheck) -> bool:
        table = EXACT_TABLES.get(exact_table(self.plan.entity.path), ())
        return any(name == mapping.exact_field and mandatory for name, _e, _a, mandatory, _l in table) or \
            mapping.exact_field in self.plan.entity.immutable

    # ------------------------------------------------------------------ lifecycle

    @property
    def safe(self) -> bool:
        """Safe mode (a sandbox): no resets, no admin plane, no faults, no calls meant to be refused."""
        return self.systems.safe

    def join_batch(self, batch: Lockstep, slot: int) -> None:
        """Run this check's examples side by side with other checks', sharing the systems and the passes."""
        self.batch, self.slot = batch, slot
        self.exact.observer = self._observe_exact
        self.crm.observer = self._observe_crm

    def _observe_exact(self, action: str, path: str, values: dict[str, Any], row: dict[str, Any] | None) -> None:
        if self.owned is not None and path.lower() == self.exact_path.lower():
            self.owned.note_exact(values, None if row is None else str(row.get(self.exact_key) or ""))

    def _observe_crm(self, action: str, path: str, values: dict[str, Any], row: dict[str, Any] | None) -> None:
        if self.owned is not None and path == self.crm_path:
            self.owned.note_crm(values, None if row is None else str(row.get("Id") or ""))

    def reset(self) -> None:
        """A clean start for the next example: the mocks are reset; a sandbox has what the last example
        created deleted again instead (the engine keeps its links, as a running engine would). In a batch
        nothing is reset: the example starts owning nothing, with unique numbers of its own."""
        self.draws = {}
        self.exchanges.clear()
        if self.batch is not None:
            self.examples += 1
            fields = tuple(sorted(self.merge_fields))
            crm_fields = tuple(m.crm_field for m in self.header if m.exact_field in self.merge_fields)
            self.owned = Owned(fields, crm_fields, self.exact_key)
            self.pools = {}
            self.names = {}
            reset_unique(self.slot, self.examples * LANES_AT_MOST + self.lane)
            return
        if self.safe:
            self.systems.cleanup(sets=self.exact_sets)
        else:
            self.systems.reset()
            self.exact.forget_token()
        self.engine.reset()
        self.pools = {}
        self.names = {}
        reset_unique()

    def sync(self, disruption: Disruption | None = None) -> None:
        """Let the engine run a pass (in a batch: the pass every running check shares). With `disruption`: a
        pass under faults or killed mid-way first, then the clean passes it names."""
        try:
            if self.batch is not None:
                self.batch.sync(disruption, rank=self.slot * LANES_AT_MOST + self.lane)
                return
            if disruption is not None:
                disrupted_pass(self.systems, self.engine, self.flows, disruption)
            for _ in range(1 if disruption is None else disruption.clean):
                self.engine.sync(self.flows)
        except EngineError as exc:
            raise PassNotRun(exc) from exc

    @cached_property
    def clocks(self) -> Clocks:
        """Both systems' clocks, to stage which of two edits is the later one."""
        return Clocks(self.systems)

    def exact_records(self, sync_path: str | None = None) -> dict[str, dict[str, Any]]:
        """Every record of the flow's Exact set (in a batch: every record this example owns)."""
        path = sync_path or self.plan.entity.sync_path
        lines = self.plan.entity.lines
        is_lines = sync_path is not None and lines is not None and sync_path == lines.sync_path
        mirror = self.exact.mirror
        if self.owned is not None and mirror is not None and not is_lines:  # found by the mirror's index
            return self.owned.take_exact(mirror.exact_owned(path, self.owned.exact_ids, self.owned.exact_fields,
                                                            self.owned.keys))
        rows = self.exact.all(path)
        records = {str(r["ID"]).lower(): r for r in rows}
        if self.owned is None:
            return records
        if is_lines:
            assert lines is not None
            return self.owned.lines_view(records, lines.parent_key)
        return self.owned.exact_view(records)

    def crm_records(self) -> list[dict[str, Any]]:
        """Every record of the flow's Customcrm collection (in a batch: every record this example owns)."""
        mirror = self.crm.mirror
        if self.owned is not None and mirror is not None:  # found by the mirror's index
            return self.owned.take_crm(mirror.crm_owned(self.crm_path, self.owned.crm_ids, self.owned.crm_fields,
                                                        self.owned.keys))
        rows = self.crm.all(self.crm_path)
        return rows if self.owned is None else self.owned.crm_view(rows)

    def label(self, side: str, record_id: str) -> str:
        if side == "crm":
            return f"Customcrm {self.flow.source_type} {record_id}"
        return f"Exact {self.flow.target_type} {record_id}"

    # ------------------------------------------------------------------ prerequisites

    def prepare(self, data: st.DataObject, needed: set[str] | None = None) -> None:
        """The records this flow's references point at, linked: two of each kind. In a batch the customers
        and products are the batch's own, created once for every check (only referred to, never changed);
        alone, each example creates its own."""
        if needed is None:
            needed = {self.ref_type(m) for m in self.mappings if m.kind == "ref"}
        if "User" in needed:
            people.add_users(self, data, 2, matched=True)
        kinds = needed - {"User"}
        if self.shared_pools is not None and kinds <= set(self.shared_pools):
            for kind in kinds:
                self.pools[kind] = dict(self.shared_pools[kind])
            return
        self.pools.update(create_references(self.crm, self.exact, self.unique, kinds, self.sync))
        for kind in kinds:
            if len(self.pools.get(kind, {})) < 1:
                raise self.failure(None, f"the prerequisite {kind} records were not linked by the engine; "
                                   "check the flows they depend on first")

    def unique(self, value: str) -> str:
        """A merge-key value as the check wrote it; in a sandbox, made unique to the run (tagged)."""
        return str(self.systems.scope.tag(value)) if self.systems.scope is not None else value

    # ------------------------------------------------------------------ drawing records (conformance.drawing)

    @property
    def merge_fields(self) -> set[str]:
        return {name for alt in self.plan.entity.merge_keys for name in alt}

    def draw_value(self, data: st.DataObject, mapping: RowCheck, *, allow_empty: bool = True,
                   not_equal: Any = None, every_class: bool = False) -> Any:
        return drawing.draw_value(self, data, mapping, allow_empty=allow_empty, not_equal=not_equal,
                                  every_class=every_class)

    def draw_record(self, data: st.DataObject) -> dict[str, Any]:
        return drawing.draw_record(self, data)

    def draw_line(self, data: st.DataObject) -> dict[str, Any]:
        return drawing.draw_line(self, data)

    # ------------------------------------------------------------------ comparing (conformance.agreement)

    def same(self, mapping: RowCheck, a: Any, b: Any) -> bool:
        return agreement.same(self, mapping, a, b)

    def to_exact_wire(self, mapping: RowCheck, crm_value: Any) -> Any:
        return agreement.to_exact_wire(self, mapping, crm_value)

    def exact_lines(self, exact_id: str) -> list[dict[str, Any]]:
        return agreement.exact_lines(self, exact_id)

    def assert_pair_agrees(self, check: str, crm_id: str, exact_id: str,
                           rows: list[PropertyRow] | None = None) -> None:
        agreement.assert_pair_agrees(self, check, crm_id, exact_id, rows)

    def create_pair(self, check: str, record: dict[str, Any], rows: list[PropertyRow] | None = None
                    ) -> tuple[str, str]:
        """Create a Customcrm record, sync, and return it with the one Exact record it produced. What the
        user entered must still be there after the sync (only `rows`' properties, for a property's own row:
        another property's defect is another row's failure)."""
        before = set(self.exact_records())
        created = self.last_created = self.crm.create(self.crm_path, record)
        self.sync()
        new = sorted(set(self.exact_records()) - before)
        if len(new) != 1:
            raise self.failure(check,
                f"{self.label('crm', created['Id'])} was created with {record!r}; "
                f"expected exactly one new Exact {self.flow.target_type} after a sync, found {len(new)}")
        now = self.crm.get(self.crm_path, str(created["Id"])) or {}
        for m in self.header:
            if rows is None or m.row in rows:
                agreement.assert_entered_kept(self, check, created, now, m)
        return str(created["Id"]), new[0]

    def versions(self) -> dict[str, dict[str, Any]]:
        """Every record's version on both sides (lines included): a write changes one."""
        out = {"customcrm": {r["Id"]: r["Version"] for r in self.crm_records()},
               "exact": {k: r["Timestamp"] for k, r in self.exact_records().items()}}
        if self.plan.entity.lines is not None:
            out["exact lines"] = {k: r["Timestamp"] for k, r in
                                  self.exact_records(self.plan.entity.lines.sync_path).items()}
        return out


REFERENCE_KINDS = frozenset({"Customer", "Product"})  # references the checklist creates (users it matches)


def create_references(crm: CustomcrmActor, exact: ExactActor, unique: Callable[[str], str], kinds: set[str],
                      sync: Callable[[], None]) -> dict[str, dict[str, str]]:
    """Two linked records of each kind referred to (customers, products): created in Customcrm, carried over
    by one engine pass, and found in Exact by their merge keys. Returns kind -> {Customcrm id: Exact id}."""
    kinds = set(kinds) & REFERENCE_KINDS
    if not kinds:
        return {}
    customers = [crm.create("customers", {"Name": f"Customer {i}",
                                          "Email": unique(f"c{i}.{next_unique()}@example.com")}) for i in range(2)]
    products = [crm.create("products", {"Code": unique(f"PRE-{i}-{next_unique()}"), "Name": f"Product {i}",
                                        "Price": 10.0 + i}) for i in range(2)] if "Product" in kinds else []
    sync()
    by_email = {r["Email"]: str(r["ID"]).lower() for r in exact.all("sync/CRM/Accounts")}
    pools = {"Customer": {c["Id"]: by_email[c["Email"]] for c in customers if c["Email"] in by_email}}
    if products:
        by_code = {r["Code"]: str(r["ID"]).lower() for r in exact.all("sync/Logistics/Items")}
        pools["Product"] = {p["Id"]: by_code[p["Code"]] for p in products if p["Code"] in by_code}
    return pools


def engine_flows(flow: Flow, doc: Dataflow) -> list[str]:
    """The flow and every flow it depends on (document requirements and the flows its references use)."""
    all_flows = doc.flows
    by_id = {f.id: f for f in all_flows}
    out: list[str] = []

    def visit(flow_id: str) -> None:
        if flow_id in out or flow_id not in by_id:
            return
        out.append(flow_id)
        current = by_id[flow_id]
        for required in current.requires:
            visit(required)
        plan = plan_checks(current, doc)
        if not isinstance(plan, str):
            for m in plan.mappings:
                if m.ref_flow:
                    visit(m.ref_flow)
            if plan.kind == "users":
                for other in all_flows:
                    if other.target_type.lower() == current.target_type.lower() and other.id != current.id:
                        visit(other.id)

    visit(flow.id)
    return out
