"""Whether a Customcrm record and its Exact counterpart agree, by the checklist's own reading of both APIs.

A property agrees when the Customcrm value, read as Exact must hold it (a reference through the pairs the
check itself saw linked), equals Exact's value read back, strictly unless a tolerance is declared for it.
Lines agree as multisets (Exact numbers them its own way). A disagreement names both records and every
property at fault.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from conformance.failures import visible
from conformance.planner import RowCheck
from conformance.readings import exact_wire, expect_from_crm, expect_from_exact
from conformance.tolerance import tolerated
from sync.dataflow import PropertyRow

if TYPE_CHECKING:
    from conformance.context import FlowContext

__all__ = ["assert_entered_kept", "assert_pair_agrees", "assert_records_agree", "exact_lines", "expected_exact",
           "mismatches", "same", "to_exact_wire"]


def same(ctx: FlowContext, mapping: RowCheck, a: Any, b: Any) -> bool:
    """Two values of a property (in the same terms) equal, strictly unless a tolerance is declared."""
    kinds = ctx.tolerances.get(mapping.id, frozenset())
    return bool(a == b if not kinds else tolerated(a, kinds) == tolerated(b, kinds))


def expected_exact(ctx: FlowContext, mapping: RowCheck, crm_value: Any) -> Any:
    """What Exact must hold for a Customcrm value."""
    value = expect_from_crm(crm_value, mapping.kind)
    if mapping.kind == "ref" and value is not None:
        return ctx.pools.get(ctx.ref_type(mapping), {}).get(str(value), f"(unlinked {value})")
    return value


def to_exact_wire(ctx: FlowContext, mapping: RowCheck, crm_value: Any) -> Any:
    if mapping.kind == "ref":
        return expected_exact(ctx, mapping, crm_value)
    return exact_wire(crm_value, mapping.kind)


def exact_lines(ctx: FlowContext, exact_id: str) -> list[dict[str, Any]]:
    lines = ctx.plan.entity.lines
    assert lines is not None
    mirror = ctx.systems.mirror
    scope = ctx.systems.scope
    if mirror is not None and (scope is None or lines.sync_path in scope.exact_marks):
        mine = [{k: v for k, v in r.items() if k != "Timestamp"} for r in mirror.exact(lines.sync_path)
                if str(r.get(lines.parent_key) or "").lower() == exact_id.lower()]
        return sorted(mine, key=lambda r: (r.get("LineNumber") or 0, str(r.get("ID"))))
    response = ctx.exact.client.get(ctx.exact.url(f"{ctx.exact_path}(guid'{exact_id}')/{lines.nav}"),
                                     headers=ctx.exact._headers())
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["d"]["results"]
    return rows


def mismatches(ctx: FlowContext, crm_record: dict[str, Any], exact_record: dict[str, Any],
               rows: list[PropertyRow] | None = None) -> list[str]:
    out = []
    wanted = set(rows) if rows is not None else None
    for m in ctx.header:
        if wanted is not None and m.row not in wanted:
            continue
        c = expected_exact(ctx, m, crm_record.get(m.crm_field))
        e = expect_from_exact(exact_record.get(m.exact_field), m.kind)
        if not same(ctx, m, c, e):
            out.append(f"{m.crm_field}={visible(crm_record.get(m.crm_field))} in Customcrm but "
                       f"{m.exact_field}={visible(exact_record.get(m.exact_field))} in Exact")
    if ctx.line_mappings and (wanted is None or wanted & {m.row for m in ctx.line_mappings}):
        seen = {m.id: ctx.tolerances.get(m.id, frozenset()) for m in ctx.line_mappings}
        expected = Counter(tuple(tolerated(expected_exact(ctx, m, line.get(m.crm_field)), seen[m.id])
                                 for m in ctx.line_mappings) for line in crm_record.get("Lines") or [])
        actual = Counter(tuple(tolerated(expect_from_exact(line.get(m.exact_field), m.kind), seen[m.id])
                               for m in ctx.line_mappings)
                         for line in exact_lines(ctx, str(exact_record[ctx.exact_key])))
        if expected != actual:
            names = ", ".join(m.row.source for m in ctx.line_mappings)
            out.append(f"lines ({names}) differ: Customcrm {sorted(map(str, expected.elements()))} but Exact "
                       f"{sorted(map(str, actual.elements()))}")
    return out


def assert_pair_agrees(ctx: FlowContext, check: str, crm_id: str, exact_id: str,
                       rows: list[PropertyRow] | None = None) -> None:
    crm_record = ctx.crm.get(ctx.crm_path, crm_id)
    exact_record = ctx.exact.get(ctx.exact_path, exact_id)
    if crm_record is None or exact_record is None:
        missing = ctx.label("crm", crm_id) if crm_record is None else ctx.label("exact", exact_id)
        raise ctx.failure(check, f"{missing} is gone")
    assert_records_agree(ctx, check, crm_record, exact_record, rows)


def assert_records_agree(ctx: FlowContext, check: str, crm_record: dict[str, Any], exact_record: dict[str, Any],
                         rows: list[PropertyRow] | None = None) -> None:
    problems = mismatches(ctx, crm_record, exact_record, rows)
    if problems:
        crm_id, exact_id = str(crm_record["Id"]), str(exact_record[ctx.exact_key]).lower()
        raise ctx.failure(
            check, f"{ctx.label('crm', crm_id)} and {ctx.label('exact', exact_id)} disagree: "
            + "; ".join(problems), record=f"{ctx.label('crm', crm_id)} / {ctx.label('exact', exact_id)}")


def assert_entered_kept(ctx: FlowContext, check: str, created: dict[str, Any], now: dict[str, Any],
                        m: RowCheck) -> None:
    """What the user entered in Customcrm (`created`, as Customcrm took it) is still there after a sync
    (`now`): an engine may not change a header property the user entered."""
    if m.is_line:
        return
    entered = expect_from_crm(created.get(m.crm_field), m.kind)
    kept = expect_from_crm(now.get(m.crm_field), m.kind)
    if entered not in (None, False) and not same(ctx, m, kept, entered):
        raise ctx.failure(
            check, f"{ctx.label('crm', str(created['Id']))} was created with "
            f"{m.crm_field}={visible(created.get(m.crm_field))}; after the sync Customcrm shows "
            f"{visible(now.get(m.crm_field))}: the engine changed what the user entered",
            record=ctx.label("crm", str(created["Id"])), prop=m.crm_field, expected=created.get(m.crm_field),
            found=now.get(m.crm_field))
