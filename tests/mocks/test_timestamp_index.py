"""The Exact mock's sync index against the scan it replaces: the same rows, in the same order, whatever the
sequence of changes and deletes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mocks.exact.timestamps import TimestampIndex

# A change (key) or a delete (None, key), over a handful of keys so that records change many times.
_steps = st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=300)


@settings(max_examples=100, deadline=None)
@given(_steps, st.integers(0, 400))
def test_the_index_answers_what_a_scan_of_the_rows_answers(steps: list[tuple[bool, int]], after: int) -> None:
    index, stamp = TimestampIndex(), 0
    rows: dict[str, int] = {}
    for deleted, n in steps:
        key = f"k{n}"
        if deleted:
            rows.pop(key, None)
            index.forget(key)
        else:
            stamp += 1
            rows[key] = stamp
            index.note(key, stamp)
    scanned = [k for k, s in sorted(rows.items(), key=lambda kv: kv[1]) if s > after]
    assert index.after(after) == scanned
    assert len(index) == len(rows)


def test_the_log_stays_in_proportion_to_the_records() -> None:
    index = TimestampIndex()
    for stamp in range(1, 10_001):
        index.note(f"k{stamp % 10}", stamp)
    assert len(index._stamps) <= 2 * 10 + 64
    assert index.after(9_990) == [f"k{n % 10}" for n in range(9_991, 10_001)]


def test_a_timestamp_that_does_not_grow_is_refused() -> None:
    index = TimestampIndex()
    index.note("a", 5)
    with pytest.raises(ValueError, match="not above"):
        index.note("b", 5)
