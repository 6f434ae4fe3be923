"""The checklist: one check per claim of the document, generated for every flow and every table row.

A check drives both systems as a user would (through their APIs), lets the engine under test run, and
asserts what the document promises. Values are compared by this module's own reading of both APIs
(``expect``), not by the engine's, so a conversion bug in the engine cannot agree with itself.
Failures name the flow, the check, the record and the property.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from conformance.engines import EngineDriver
from conformance.strategies import record_strategy, value_strategy
from conformance.systems import CustomcrmActor, ExactActor, Systems
from mocks.exact.properties import TABLES as EXACT_TABLES
from sync.dataflow import Flow, PropertyRow
from sync.engine import FlowPlan

__all__ = ["CHECKS", "Check", "CheckFailure", "FlowContext", "checks_for"]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class CheckFailure(AssertionError):
    """A broken promise of the document, with the evidence a reader needs."""


# ---------------------------------------------------------------------- expectations


def _exact_wall(raw: str) -> datetime:
    ms = int(raw[len("/Date("):].split(")")[0].split("+")[0])
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def expect_from_exact(value: Any, kind: str) -> Any:
    """Exact's wire value as the Customcrm value it must equal."""
    if value is None or value == "":
        return False if kind == "bool" else None
    if kind in ("date", "datetime") and isinstance(value, str) and value.startswith("/Date("):
        wall = _exact_wall(value)
        if kind == "date":
            return wall.date().isoformat()
        instant = wall.replace(tzinfo=AMSTERDAM).astimezone(UTC)
        return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind == "double":
        return float(value)
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


# ---------------------------------------------------------------------- context


@dataclass
class FlowContext:
    """Everything a check needs about one flow and the systems it runs against."""

    flow: Flow
    plan: FlowPlan
    systems: Systems
    engine: EngineDriver
    crm: CustomcrmActor
    exact: ExactActor

    @property
    def kinds(self) -> dict[str, str]:
        return {m.id: m.kind for m in self.plan.mappings}

    @property
    def crm_path(self) -> str:
        return self.plan.resource.path

    @property
    def exact_path(self) -> str:
        return self.plan.entity.path

    @property
    def exact_key(self) -> str:
        return self.plan.entity.key

    def exact_sync_path(self) -> str:
        return self.plan.entity.sync_path.removeprefix("sync/")

    def reset(self) -> None:
        self.systems.reset()
        self.exact.forget_token()
        self.engine.reset()

    def sync(self) -> None:
        self.engine.sync()

    def exact_records(self) -> dict[str, dict[str, Any]]:
        rows = self.exact.all("sync/" + self.exact_sync_path())
        return {str(r[self.exact_key]).lower(): r for r in rows}

    def exact_mandatory(self, row: PropertyRow) -> bool:
        for name, _edm, _access, mandatory, _len in EXACT_TABLES.get(self.plan.entity.path.split("/")[1], ()):
            if name == row.target:
                return mandatory
        return False

    def label(self, side: str, record_id: str) -> str:
        if side == "crm":
            return f"Customcrm {self.flow.source_type} {record_id}"
        return f"Exact {self.flow.target_type} {record_id}"

    def mismatches(self, crm_record: dict[str, Any], exact_record: dict[str, Any],
                   rows: list[PropertyRow] | None = None) -> list[str]:
        out = []
        for row in rows if rows is not None else list(self.flow.properties):
            kind = self.kinds[row.source]
            c = expect_from_crm(crm_record.get(row.source), kind)
            e = expect_from_exact(exact_record.get(row.target), kind)
            if c != e:
                out.append(f"{row.source}={c!r} in Customcrm but {row.target}={e!r} in Exact")
        return out

    def assert_pair_agrees(self, check: str, crm_id: str, exact_id: str,
                           rows: list[PropertyRow] | None = None) -> None:
        crm_record = self.crm.get(self.crm_path, crm_id)
        exact_record = self.exact.get(self.exact_path, exact_id)
        if crm_record is None or exact_record is None:
            missing = self.label("crm", crm_id) if crm_record is None else self.label("exact", exact_id)
            raise CheckFailure(f"[{self.flow.id} / {check}] {missing} is gone")
        problems = self.mismatches(crm_record, exact_record, rows)
        if problems:
            raise CheckFailure(
                f"[{self.flow.id} / {check}] {self.label('crm', crm_id)} and {self.label('exact', exact_id)} "
                "disagree: " + "; ".join(problems))

    def create_pair(self, check: str, record: dict[str, Any]) -> tuple[str, str]:
        """Create a Customcrm record, sync, and return it with the one Exact record it produced."""
        before = set(self.exact_records())
        created = self.crm.create(self.crm_path, record)
        self.sync()
        new = sorted(set(self.exact_records()) - before)
        if len(new) != 1:
            raise CheckFailure(
                f"[{self.flow.id} / {check}] {self.label('crm', created['Id'])} was created with {record!r}; "
                f"expected exactly one new Exact {self.flow.target_type} after a sync, found {len(new)}")
        return str(created["Id"]), new[0]


# ---------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[FlowContext, st.DataObject], None]
    row: PropertyRow | None = None


def _create(ctx: FlowContext, data: st.DataObject) -> None:
    record = data.draw(record_strategy(ctx.flow, ctx.kinds), label="customcrm record")
    crm_id, exact_id = ctx.create_pair("create", record)
    ctx.assert_pair_agrees("create", crm_id, exact_id)


def _link(ctx: FlowContext, data: st.DataObject) -> None:
    merge_keys = [alt for alt in ctx.plan.entity.merge_keys
                  if all(any(r.target == name for r in ctx.flow.properties) for name in alt)]
    if not merge_keys:
        raise CheckFailure(f"[{ctx.flow.id} / link] the document maps no merge key of Exact {ctx.flow.target_type}")
    index = data.draw(st.integers(0, len(merge_keys) - 1), label="merge key")
    ambiguous = data.draw(st.booleans(), label="ambiguous")
    record = data.draw(record_strategy(ctx.flow, ctx.kinds), label="customcrm record")
    by_target = {r.target: r for r in ctx.flow.properties}
    for earlier in merge_keys[:index]:  # an earlier, filled merge key would be used instead
        for name in earlier:
            record.pop(by_target[name].source, None)
    existing: dict[str, Any] = {}
    for name in merge_keys[index]:
        row = by_target[name]
        if record.get(row.source) is None:
            record[row.source] = data.draw(value_strategy(ctx.flow, row, ctx.kinds[row.source], allow_empty=False))
        existing[name] = exact_wire(record[row.source], ctx.kinds[row.source])
    for row in ctx.flow.properties:
        if ctx.exact_mandatory(row) and row.target not in existing:
            existing[row.target] = exact_wire(
                data.draw(value_strategy(ctx.flow, row, ctx.kinds[row.source], allow_empty=False)),
                ctx.kinds[row.source])
    first = ctx.exact.create(ctx.exact_path, existing)
    if ambiguous:
        ctx.exact.create(ctx.exact_path, existing)
    before = set(ctx.exact_records())
    crm_record = ctx.crm.create(ctx.crm_path, record)
    ctx.sync()
    after = set(ctx.exact_records())
    if after != before:
        raise CheckFailure(
            f"[{ctx.flow.id} / link] {ctx.label('crm', crm_record['Id'])} has the merge key {existing!r} of "
            f"{'two existing' if ambiguous else 'an existing'} Exact {ctx.flow.target_type}, yet the sync "
            f"created {len(after - before)} new one(s)")
    if not ambiguous:
        ctx.assert_pair_agrees("link", str(crm_record["Id"]), str(first[ctx.exact_key]).lower())


def _edit(side: str) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"edit-{side}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        record = data.draw(record_strategy(ctx.flow, ctx.kinds), label="customcrm record")
        crm_id, exact_id = ctx.create_pair(check, record)
        rows = data.draw(st.lists(st.sampled_from(list(ctx.flow.properties)), min_size=1, unique=True),
                         label="edited properties")
        _apply_edits(ctx, data, side, crm_id, exact_id, rows)
        ctx.sync()
        ctx.assert_pair_agrees(check, crm_id, exact_id)

    return run


def _apply_edits(ctx: FlowContext, data: st.DataObject, side: str, crm_id: str, exact_id: str,
                 rows: list[PropertyRow]) -> dict[str, Any]:
    edits: dict[str, Any] = {}
    for row in rows:
        allow_empty = not ctx.exact_mandatory(row)
        edits[row.source] = data.draw(value_strategy(ctx.flow, row, ctx.kinds[row.source], allow_empty=allow_empty),
                                      label=f"new {row.source}")
    if side == "customcrm":
        ctx.crm.update(ctx.crm_path, crm_id, edits)
    else:
        by_source = {r.source: r for r in rows}
        ctx.exact.update(ctx.exact_path, exact_id,
                         {by_source[k].target: exact_wire(v, ctx.kinds[k]) for k, v in edits.items()})
    return edits


def _versions(ctx: FlowContext) -> dict[str, Any]:
    crm = {r["Id"]: r["Version"] for r in ctx.crm.all(ctx.crm_path)}
    exact = {k: r["Timestamp"] for k, r in ctx.exact_records().items()}
    return {"customcrm": crm, "exact": exact}


def _stays_in_sync(ctx: FlowContext, data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 3), label="records")
    pairs = [ctx.create_pair("stays-in-sync", data.draw(record_strategy(ctx.flow, ctx.kinds), label="record"))
             for _ in range(count)]
    steps = data.draw(st.lists(st.sampled_from(["edit-customcrm", "edit-exact", "sync"]), max_size=6),
                      label="steps")
    for step in steps:
        if step == "sync":
            ctx.sync()
            continue
        crm_id, exact_id = data.draw(st.sampled_from(pairs), label="pair")
        row = data.draw(st.sampled_from(list(ctx.flow.properties)), label="property")
        _apply_edits(ctx, data, step.removeprefix("edit-"), crm_id, exact_id, [row])
    ctx.sync()
    for crm_id, exact_id in pairs:
        ctx.assert_pair_agrees("stays-in-sync", crm_id, exact_id)
    before = _versions(ctx)
    ctx.sync()
    after = _versions(ctx)
    if before != after:
        changed = [f"{system} {key}" for system in before for key in before[system]
                   if before[system].get(key) != after[system].get(key)]
        raise CheckFailure(
            f"[{ctx.flow.id} / stays-in-sync] a sync with no edits wrote to {', '.join(changed)}: the engine "
            "echoes its own writes")
    if len(after["exact"]) != len(pairs) or len(after["customcrm"]) != len(pairs):
        raise CheckFailure(
            f"[{ctx.flow.id} / stays-in-sync] {len(pairs)} linked pairs expected, found "
            f"{len(after['customcrm'])} Customcrm and {len(after['exact'])} Exact records")


def _property(row: PropertyRow) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"property:{row.id}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        kind = ctx.kinds[row.source]
        record = data.draw(record_strategy(ctx.flow, ctx.kinds), label="customcrm record")
        value = data.draw(value_strategy(ctx.flow, row, kind, allow_empty=False), label=f"{row.source}")
        record[row.source] = value
        crm_id, exact_id = ctx.create_pair(check, record)
        ctx.assert_pair_agrees(check + " (create)", crm_id, exact_id, [row])
        for side in ("exact", "customcrm"):
            _apply_edits(ctx, data, side, crm_id, exact_id, [row])
            ctx.sync()
            ctx.assert_pair_agrees(f"{check} (edited in {side})", crm_id, exact_id, [row])

    return run


CHECKS: tuple[Check, ...] = (
    Check("create", "A new Customcrm record yields one new Exact record with every property", _create),
    Check("link", "An existing Exact record with the merge key is linked, nothing created", _link),
    Check("edit-customcrm", "An edit in Customcrm reaches Exact", _edit("customcrm")),
    Check("edit-exact", "An edit in Exact reaches Customcrm", _edit("exact")),
    Check("stays-in-sync", "Random edits on both sides converge; a sync without edits writes nothing",
          _stays_in_sync),
)


def checks_for(flow: Flow) -> list[Check]:
    """The flow-level checks, then one check per property row of the flow's table."""
    return [*CHECKS, *(Check(f"property:{row.id}", f"{row.source} is kept equal to {row.target} ({row.data_type})",
                             _property(row), row) for row in flow.properties)]
