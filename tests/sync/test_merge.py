"""The three-way merge on its own: no mocks, no engine, only values (issue: one merge for headers, links
and lines)."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from sync.merge import MISSING, link_value, merge_values, merged_value

values = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3), st.booleans())
filled = st.one_of(st.integers(-3, 3), st.text(min_size=1, max_size=3), st.booleans())
names = st.lists(st.sampled_from(["A", "B", "C", "D"]), unique=True, min_size=1)


@given(values, values, st.booleans())
def test_both_sides_unchanged_means_no_write(value: Any, snapshot: Any, crm_first: bool) -> None:
    assert merged_value(value, value, snapshot, crm_first) == value
    merged = merge_values(["A"], {"A": value}, {"A": value}, {"A": value}, crm_first)
    assert merged.to_crm == merged.to_exact == {}


@given(values, values, st.booleans())
def test_one_side_changed_wins(old: Any, new: Any, crm_first: bool) -> None:
    """Whoever edited last in time, the only side that changed the property wins it."""
    assert merged_value(new, old, old, crm_first) == new  # changed in Customcrm
    assert merged_value(old, new, old, crm_first) == new  # changed in Exact


@given(values, values, values)
def test_both_changed_the_later_edit_wins(crm: Any, exact: Any, old: Any) -> None:
    assume(crm != exact and old != crm and old != exact)
    assert merged_value(crm, exact, old, True) == crm
    assert merged_value(crm, exact, old, False) == exact


@given(filled, st.booleans())
def test_at_link_time_an_empty_value_never_overwrites_a_filled_one(value: Any, crm_first: bool) -> None:
    assert link_value(value, None, crm_first) == value
    assert link_value(None, value, crm_first) == value
    assert merged_value(None, value, MISSING, crm_first) == value
    merged = merge_values(["A"], {"A": value}, {}, None, crm_first)
    assert merged.to_exact == {"A": value} and merged.to_crm == {}


@given(names, st.dictionaries(st.sampled_from("ABCD"), values), st.dictionaries(st.sampled_from("ABCD"), values),
       st.one_of(st.none(), st.dictionaries(st.sampled_from("ABCD"), values)), st.booleans())
def test_after_the_writes_both_sides_hold_the_snapshot(chosen: list[str], crm: dict[str, Any],
                                                       exact: dict[str, Any], snapshot: dict[str, Any] | None,
                                                       crm_first: bool) -> None:
    merged = merge_values(chosen, crm, exact, snapshot, crm_first)
    for name in chosen:
        assert merged.to_crm.get(name, crm.get(name)) == merged.snapshot[name]
        assert merged.to_exact.get(name, exact.get(name)) == merged.snapshot[name]
    # Merging again from where the writes left both sides writes nothing: no echo.
    after = {n: merged.snapshot[n] for n in chosen}
    again = merge_values(chosen, after, after, merged.snapshot, crm_first)
    assert again.to_crm == again.to_exact == {}


@given(values, values, values, st.booleans())
def test_a_property_exact_cannot_change_keeps_exacts_value(crm: Any, exact: Any, old: Any, crm_first: bool) -> None:
    merged = merge_values(["A"], {"A": crm}, {"A": exact}, {"A": old}, crm_first, exact_keeps={"A"})
    assert merged.snapshot["A"] == exact and merged.to_exact == {}
