"""What a check knows about one flow: how to reach both systems, how to draw records, how to compare them.

Values are compared by this module's own reading of both APIs, not by the engine's, so a conversion bug
in the engine cannot agree with itself. References are compared through the pairs the check itself
created and saw linked (``pools``), never through the engine's link store.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import assume
from hypothesis import strategies as st

from conformance.engines import EngineDriver
from conformance.lockstep import Lockstep
from conformance.ownership import Owned
from conformance.planner import CheckPlan, RowCheck, plan_checks
from conformance.sandbox import AMSTERDAM, exact_wall
from conformance.strategies import (
    catalogue,
    catalogue_turn,
    distinct_value,
    exact_table,
    field_limits,
    next_unique,
    reset_unique,
    sink,
    value_strategy,
)
from conformance.systems import CustomcrmActor, ExactActor, Systems
from conformance.tolerance import tolerated
from mocks.customcrm.models import RESOURCES as CRM_RESOURCES
from mocks.exact.properties import TABLES as EXACT_TABLES
from sync.dataflow import Dataflow, Flow, PropertyRow

__all__ = ["AMSTERDAM", "CheckFailure", "FlowContext", "NotApplicable", "engine_flows", "exact_wire", "expect_from_crm",
           "expect_from_exact"]



EXCHANGES_KEPT = 12


_NOT_GIVEN: Any = object()


class CheckFailure(AssertionError):
    """A broken promise of the document, with the evidence a reader needs: as one line (``[flow / check]
    what happened``) and as fields a report shows on their own (`fields`): the flow, the check, the record
    and the property at fault, what was expected and what was found, where the check knows them."""

    def __init__(self, message: str, *, flow: str | None = None, check: str | None = None,
                 record: str | None = None, prop: str | None = None, expected: Any = _NOT_GIVEN,
                 found: Any = _NOT_GIVEN) -> None:
        self.message, self.flow, self.check, self.record, self.prop = message, flow, check, record, prop
        self.expected, self.found = expected, found
        where = f"{flow} / {check}" if flow and check else flow or check
        super().__init__(f"[{where}] {message}" if where else message)

    def fields(self) -> dict[str, str]:
        """What the failure is about, field by field (values shown as the one line shows them)."""
        out = {"flow": self.flow, "check": self.check, "record": self.record, "property": self.prop,
               "expected": None if self.expected is _NOT_GIVEN else visible(self.expected),
               "found": None if self.found is _NOT_GIVEN else visible(self.found), "message": self.message}
        return {k: v for k, v in out.items() if v}


def visible(value: Any) -> str:
    """A value as the failure shows it: its repr, and where that holds anything beyond ASCII, its code points
    too, so that two values that look the same ('Zoë' composed and decomposed) read differently."""
    shown = repr(value)
    return shown if shown.isascii() else f"{shown} [{ascii(value)}]"


class NotApplicable(BaseException):  # noqa: N818 - a BaseException, so Hypothesis stops at once (no shrinking)
    """The systems cannot stage what a check needs (a sandbox with too few Exact users, say): reported as a
    skip with this reason, never as a pass."""


# A check's lanes at most (its unique numbers are interleaved by lane).
LANES_AT_MOST = 8


def skip_the_simplest(ctx: FlowContext, data: st.DataObject) -> None:
    """Hypothesis tries the simplest example first; in every lane but the first it would be the same example
    again, so there it is passed over (a draw of 0 is rejected before anything is written)."""
    if ctx.lane:
        assume(data.draw(st.integers(0, 255)) != 0)


def expect_from_exact(value: Any, kind: str) -> Any:
    """Exact's wire value as the Customcrm value it must equal (dates in Amsterdam time)."""
    if value is None or value == "":
        return False if kind == "bool" else None
    if kind in ("date", "datetime") and isinstance(value, str) and value.startswith("/Date("):
        wall = exact_wall(value)
        if kind == "date":
            return wall.date().isoformat()
        instant = wall.replace(tzinfo=AMSTERDAM).astimezone(UTC)
        return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind == "double":
        return float(value)
    if kind == "ref":
        return str(value).lower()
    return value


def expect_from_crm(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return False if kind == "bool" else None
    if kind == "double":
        return float(value)
    return value


def exact_wire(value: Any, kind: str) -> Any:
    """A Customcrm-form value as a user would type it into Exact (local Amsterdam time)."""
    if value is None:
        return None
    if kind == "date":
        return f"{value}T00:00:00"
    if kind == "datetime":
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(AMSTERDAM)
        return instant.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return value


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
    _draws: dict[str, int] = field(default_factory=dict)  # draws of each property in this example so far
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
        self._draws = {}
        self.exchanges.clear()
        if self.batch is not None:
            self.examples += 1
            fields = tuple(sorted(self._merge_fields))
            crm_fields = tuple(m.crm_field for m in self.header if m.exact_field in self._merge_fields)
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

    def sync(self) -> None:
        """Let the engine run a pass (in a batch: the pass every running check shares)."""
        if self.batch is not None:
            self.batch.sync()
        else:
            self.engine.sync(self.flows)

    # ------------------------------------------------------------------ time

    def freeze_clocks(self) -> datetime:
        """Stop both mocks' clocks at one instant, so a check can stage "this edit is later than that one"
        (or "at the same time") exactly; Exact's modification times have millisecond precision."""
        now = datetime.now(UTC).replace(microsecond=0)
        if self.safe:  # a sandbox keeps real time: later edits are staged by waiting (advance_clocks)
            return now
        for system in ("exact", "customcrm"):
            self.systems.admin(system, "clock", {"set": now.isoformat(), "frozen": True})
        return now

    @property
    def can_stage_same_instant(self) -> bool:
        """Edits at the very same instant on both sides can be staged only with the mocks' clocks."""
        return not self.safe

    def advance_clocks(self, seconds: float) -> None:
        """Let time pass between two edits: the mocks' clocks jump; against a sandbox, a real wait long
        enough for both systems' modification times to tell the edits apart."""
        if self.safe:
            time.sleep(1.1)
            return
        for system in ("exact", "customcrm"):
            self.systems.admin(system, "clock", {"advance": seconds})

    def release_clocks(self) -> None:
        """Back to real time on both mocks alike (a shared offset would drift by the time between the two
        calls, and "which edit is later" across the systems would then depend on it)."""
        if self.safe:
            return
        for system in ("exact", "customcrm"):
            self.systems.admin(system, "clock", {"reset": True})

    def exact_records(self, sync_path: str | None = None) -> dict[str, dict[str, Any]]:
        """Every record of the flow's Exact set (in a batch: every record this example owns)."""
        rows = self.exact.all(sync_path or self.plan.entity.sync_path)
        records = {str(r["ID"]).lower(): r for r in rows}
        if self.owned is None:
            return records
        lines = self.plan.entity.lines
        if sync_path is not None and lines is not None and sync_path == lines.sync_path:
            return self.owned.lines_view(records, lines.parent_key)
        return self.owned.exact_view(records)

    def crm_records(self) -> list[dict[str, Any]]:
        """Every record of the flow's Customcrm collection (in a batch: every record this example owns)."""
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
            self.add_users(data, 2, matched=True)
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

    def add_users(self, data: st.DataObject, count: int, *, matched: bool) -> list[str]:
        """Customcrm users; `matched` ones get an Exact user with the same e-mail (seeded: the API cannot)."""
        if self.safe:
            return self._sandbox_users(count, matched=matched)
        created = []
        for _ in range(count):
            n = next_unique()
            name = data.draw(st.sampled_from(["Sam Sales", "Ida de Vries", "Ole Nordmann", "Zoë Ångström"]))
            email = f"user{n}@example.com"
            user = self.crm.create("users", {"FullName": name, "Email": email})
            created.append(user["Id"])
            if matched:
                seeded = self.systems.admin("exact", "seed", {"users": [{"Email": email, "FullName": name}]})
                exact_users = {u["Email"]: u for u in self.exact_users(email)}
                exact_id = str(exact_users[email]["UserID"]).lower()
                self.pools.setdefault("User", {})[user["Id"]] = exact_id
                self.names[exact_id] = name
                assert seeded is not None
        return created

    def _sandbox_users(self, count: int, *, matched: bool) -> list[str]:
        """In a sandbox, matched users are the Exact users already there (the API cannot create any), with
        the Customcrm user of the same e-mail (created if there is none); unmatched ones are new and tagged."""
        out: list[str] = []
        if not matched:
            for _ in range(count):
                out.append(str(self.crm.create("users", {"FullName": "Una Matched",
                                                         "Email": self.unique("user@example.com")})["Id"]))
            return out
        with self.systems.users_lock:  # checks side by side share the division's users: one finds or creates
            return self._match_sandbox_users(count, out)

    def _match_sandbox_users(self, count: int, out: list[str]) -> list[str]:
        taken = set(self.pools.get("User", {}).values())
        for exact_user in self.exact_users():
            exact_id = str(exact_user["UserID"]).lower()
            email = exact_user.get("Email")
            if len(out) == count or not email or exact_id in taken:
                continue
            found = self.crm.find("users", Email=email)
            crm_user = found[0] if found else self.crm.create("users", {"FullName": exact_user.get("FullName")
                                                                        or email, "Email": email})
            out.append(str(crm_user["Id"]))
            self.pools.setdefault("User", {})[str(crm_user["Id"])] = exact_id
            self.names[exact_id] = str(exact_user.get("FullName") or "")
        if not out:
            raise NotApplicable("the sandbox's Exact division has no user with an e-mail address to match a "
                                "Customcrm user with")
        return out

    def exact_users(self, email: str | None = None) -> list[dict[str, Any]]:
        """Exact's users (those with this e-mail), every page of them. A sandbox's users are read once per
        run: the API cannot create or change any, so the list stands."""
        if email is None and self.safe:
            with self.systems.users_lock:
                if self.systems.exact_user_list is None:
                    self.systems.exact_user_list = self._read_exact_users(None)
                return list(self.systems.exact_user_list)
        return self._read_exact_users(email)

    def _read_exact_users(self, email: str | None) -> list[dict[str, Any]]:
        params: dict[str, str] | None = {"$filter": "Email eq '" + email.replace("'", "''") + "'"} if email else None
        url = self.exact.url("users/Users")
        users: list[dict[str, Any]] = []
        while url:
            response = self.exact.client.get(url, params=params, headers=self.exact._headers())
            response.raise_for_status()
            body = response.json()["d"]
            users.extend(body["results"])
            url, params = body.get("__next") or "", None
        return users

    # ------------------------------------------------------------------ drawing records

    def draw_value(self, data: st.DataObject, mapping: RowCheck, *, allow_empty: bool = True,
                   not_equal: Any = None, every_class: bool = False) -> Any:
        """A value for the property: `every_class` gives the one value that holds every class of what users
        type that engines get wrong (where the property can take one); otherwise a class of the catalogue in
        turn, or a random draw."""
        if every_class and mapping.kind != "ref":
            combined = sink(self.flow, mapping.row, mapping.kind)
            if combined is not None:
                return self._keyed(mapping, data.draw(st.just(combined), label=f"{mapping.id} (every class)"),
                                   constant=True)
        if mapping.kind == "ref":
            pool = sorted(self.pools.get(self.ref_type(mapping), {}))
            choices = [p for p in pool if p != not_equal] or pool
            required = not allow_empty or self.crm_required(mapping)
            options = choices if required else [*choices, None]
            return data.draw(st.sampled_from(options), label=f"{mapping.id}")
        value = self._catalogue_value(data, mapping)
        constant = value is not None and value != not_equal
        if not constant:
            value = data.draw(value_strategy(self.flow, mapping.row, mapping.kind, allow_empty=allow_empty),
                              label=mapping.id)
        return self._keyed(mapping, value, constant=constant)

    def _keyed(self, mapping: RowCheck, value: Any, *, constant: bool = False) -> Any:
        """A merge key's value made unique (to the run in a sandbox, to the example in a batch; a constant
        of the catalogue always, or two records of one example would share it and merge)."""
        if not mapping.is_line and mapping.exact_field in self._merge_fields:
            if self.systems.scope is not None:
                # In a sandbox a merge key must never match a record that was there before the run.
                value = self.systems.scope.tag(value, field_limits(self.flow, mapping.row)[0])
            elif self.batch is not None or constant:  # nor, in a batch, one of another example's
                value = distinct_value(value, next_unique(), field_limits(self.flow, mapping.row)[0])
        return value

    def _catalogue_value(self, data: st.DataObject, mapping: RowCheck) -> Any:
        """This draw's class of value from the catalogue (what users type that engines get wrong), or None
        when the turn is a random draw. Drawn as a constant, so that Hypothesis's notes show it."""
        classes = catalogue(self.flow, mapping.row, mapping.kind)
        nth = self._draws.get(mapping.id, 0)
        self._draws[mapping.id] = nth + 1
        turn = catalogue_turn(self.slot, nth, len(classes))
        if turn is None:
            return None
        name, value = classes[turn]
        return data.draw(st.just(value), label=f"{mapping.id} ({name})")

    @property
    def _merge_fields(self) -> set[str]:
        return {name for alt in self.plan.entity.merge_keys for name in alt}

    @property
    def crm_model(self) -> Any:
        """The Customcrm contract's model of this flow's records."""
        return CRM_RESOURCES[self.plan.resource.path].model

    def crm_required(self, mapping: RowCheck) -> bool:
        return field_limits(self.flow, mapping.row)[1]

    def crm_default(self, mapping: RowCheck) -> Any:
        """The value Customcrm gives a property left out of a create (such a property is never empty)."""
        info = self.crm_model.model_fields.get(mapping.crm_field)
        return None if info is None or info.is_required() else info.get_default(call_default_factory=True)

    def _unmapped_required(self) -> list[str]:
        """Customcrm fields a record cannot be created without, though this flow's table does not map them."""
        mapped = {m.crm_field for m in self.header}
        return [name for name, info in self.crm_model.model_fields.items()
                if info.is_required() and name not in mapped]

    def draw_line(self, data: st.DataObject) -> dict[str, Any]:
        line: dict[str, Any] = {}
        for m in self.line_mappings:
            value = self.draw_value(data, m, allow_empty=m.kind == "string")
            if value is not None:
                line[m.crm_field] = value
        return line

    def draw_record(self, data: st.DataObject) -> dict[str, Any]:
        """A Customcrm record with a value for every mapped property (required ones always filled)."""
        record: dict[str, Any] = {}
        for m in self.header:
            value = self.draw_value(data, m)
            if value is not None:
                record[m.crm_field] = value
        for name in self._unmapped_required():
            row = PropertyRow(name, name, None)
            record[name] = data.draw(value_strategy(self.flow, row, self.plan.resource.fields.get(name, "string"),
                                                    allow_empty=False), label=name)
        for group in self.plan.resource.counterpart_when.get(self.flow.target_type.lower(), ()):
            if not any(record.get(name) for name in group):
                first = next((x for x in self.header if x.crm_field == group[0]), None)
                if first is not None:
                    record[group[0]] = self.draw_value(data, first, allow_empty=False)
        if self.line_mappings:
            record["Lines"] = [self.draw_line(data) for _ in range(data.draw(st.integers(1, 3), label="lines"))]
        if (self.safe or self.batch is not None) and not any(
                record.get(m.crm_field) for m in self.header if m.exact_field in self._merge_fields):
            # In a sandbox every record carries the run id in a merge key, and in a batch one of its example's
            # own values (the example finds its records by it): fill the first one mapped.
            key = next((x for x in self.header if x.exact_field in self._merge_fields), None)
            if key is not None:
                record[key.crm_field] = self.draw_value(data, key, allow_empty=False)
        for group in self.plan.entity.mandatory:
            if not any(record.get(m.crm_field) for m in self.header if m.exact_field in group):
                needed = next((x for x in self.header if x.exact_field in group), None)
                if needed is not None:
                    record[needed.crm_field] = self.draw_value(data, needed, allow_empty=False)
        return record

    # ------------------------------------------------------------------ comparing

    def same(self, mapping: RowCheck, a: Any, b: Any) -> bool:
        """Two values of a property (in the same terms) equal, strictly unless a tolerance is declared."""
        kinds = self.tolerances.get(mapping.id, frozenset())
        return bool(a == b if not kinds else tolerated(a, kinds) == tolerated(b, kinds))

    def expected_exact(self, mapping: RowCheck, crm_value: Any) -> Any:
        """What Exact must hold for a Customcrm value."""
        value = expect_from_crm(crm_value, mapping.kind)
        if mapping.kind == "ref" and value is not None:
            return self.pools.get(self.ref_type(mapping), {}).get(str(value), f"(unlinked {value})")
        return value

    def to_exact_wire(self, mapping: RowCheck, crm_value: Any) -> Any:
        if mapping.kind == "ref":
            return self.expected_exact(mapping, crm_value)
        return exact_wire(crm_value, mapping.kind)

    def exact_lines(self, exact_id: str) -> list[dict[str, Any]]:
        lines = self.plan.entity.lines
        assert lines is not None
        mirror = self.systems.mirror
        scope = self.systems.scope
        if mirror is not None and (scope is None or lines.sync_path in scope.exact_marks):
            mine = [{k: v for k, v in r.items() if k != "Timestamp"} for r in mirror.exact(lines.sync_path)
                    if str(r.get(lines.parent_key) or "").lower() == exact_id.lower()]
            return sorted(mine, key=lambda r: (r.get("LineNumber") or 0, str(r.get("ID"))))
        response = self.exact.client.get(self.exact.url(f"{self.exact_path}(guid'{exact_id}')/{lines.nav}"),
                                         headers=self.exact._headers())
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()["d"]["results"]
        return rows

    def mismatches(self, crm_record: dict[str, Any], exact_record: dict[str, Any],
                   rows: list[PropertyRow] | None = None) -> list[str]:
        out = []
        wanted = set(rows) if rows is not None else None
        for m in self.header:
            if wanted is not None and m.row not in wanted:
                continue
            c = self.expected_exact(m, crm_record.get(m.crm_field))
            e = expect_from_exact(exact_record.get(m.exact_field), m.kind)
            if not self.same(m, c, e):
                out.append(f"{m.crm_field}={visible(crm_record.get(m.crm_field))} in Customcrm but "
                           f"{m.exact_field}={visible(exact_record.get(m.exact_field))} in Exact")
        if self.line_mappings and (wanted is None or wanted & {m.row for m in self.line_mappings}):
            seen = {m.id: self.tolerances.get(m.id, frozenset()) for m in self.line_mappings}
            expected = Counter(tuple(tolerated(self.expected_exact(m, line.get(m.crm_field)), seen[m.id])
                                     for m in self.line_mappings) for line in crm_record.get("Lines") or [])
            actual = Counter(tuple(tolerated(expect_from_exact(line.get(m.exact_field), m.kind), seen[m.id])
                                   for m in self.line_mappings)
                             for line in self.exact_lines(str(exact_record[self.exact_key])))
            if expected != actual:
                names = ", ".join(m.row.source for m in self.line_mappings)
                out.append(f"lines ({names}) differ: Customcrm {sorted(map(str, expected.elements()))} but Exact "
                           f"{sorted(map(str, actual.elements()))}")
        return out

    def assert_pair_agrees(self, check: str, crm_id: str, exact_id: str,
                           rows: list[PropertyRow] | None = None) -> None:
        crm_record = self.crm.get(self.crm_path, crm_id)
        exact_record = self.exact.get(self.exact_path, exact_id)
        if crm_record is None or exact_record is None:
            missing = self.label("crm", crm_id) if crm_record is None else self.label("exact", exact_id)
            raise self.failure(check, f"{missing} is gone")
        self.assert_records_agree(check, crm_record, exact_record, rows)

    def assert_records_agree(self, check: str, crm_record: dict[str, Any], exact_record: dict[str, Any],
                             rows: list[PropertyRow] | None = None) -> None:
        problems = self.mismatches(crm_record, exact_record, rows)
        if problems:
            crm_id, exact_id = str(crm_record["Id"]), str(exact_record[self.exact_key]).lower()
            raise self.failure(
                check, f"{self.label('crm', crm_id)} and {self.label('exact', exact_id)} disagree: "
                + "; ".join(problems), record=f"{self.label('crm', crm_id)} / {self.label('exact', exact_id)}")

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
                self.assert_entered_kept(check, created, now, m)
        return str(created["Id"]), new[0]

    def assert_entered_kept(self, check: str, created: dict[str, Any], now: dict[str, Any], m: RowCheck) -> None:
        """What the user entered in Customcrm (`created`, as Customcrm took it) is still there after a sync
        (`now`): an engine may not change a header property the user entered."""
        if m.is_line:
            return
        entered = expect_from_crm(created.get(m.crm_field), m.kind)
        kept = expect_from_crm(now.get(m.crm_field), m.kind)
        if entered not in (None, False) and not self.same(m, kept, entered):
            raise self.failure(
                check, f"{self.label('crm', str(created['Id']))} was created with "
                f"{m.crm_field}={visible(created.get(m.crm_field))}; after the sync Customcrm shows "
                f"{visible(now.get(m.crm_field))}: the engine changed what the user entered",
                record=self.label("crm", str(created["Id"])), prop=m.crm_field, expected=created.get(m.crm_field),
                found=now.get(m.crm_field))

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
