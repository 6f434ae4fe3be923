"""The mirror's key index finds an example's records as a look at every record would, as records change."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance.mirror import KeyIndex
from conformance.ownership import Owned

VALUES = st.sampled_from([None, "", " a@x.nl", "A@X.NL", "b@x.nl", "b@x.nl ", 7, True, "c"])
IDS = st.sampled_from(["1", "2", "3", "4", "5"])
# A step: a record written (its two merge-key properties) or gone (None), or a read asking for these keys.
_steps = st.lists(st.one_of(
    st.tuples(st.just("write"), IDS, st.one_of(st.none(), st.fixed_dictionaries({"Email": VALUES, "Code": VALUES}))),
    st.tuples(st.just("read"), st.sets(st.sampled_from(["a@x.nl", "b@x.nl", "c", "7"])), st.sets(IDS))),
    max_size=40)


@given(_steps)
def test_the_index_finds_what_a_look_at_every_record_finds(steps: list[tuple[Any, ...]]) -> None:
    records: dict[str, dict[str, Any]] = {}
    index = KeyIndex()
    for step in steps:
        if step[0] == "write":
            _op, record_id, record = step
            if record is None:
                records.pop(record_id, None)
            else:
                records[record_id] = record
            index.update(record_id, record)
            continue
        _op, keys, ids = step
        owned = Owned(("Email", "Code"), ("Email", "Code"), keys=set(keys), exact_ids=set(ids))
        looked_at = owned.exact_view(dict(records))
        found = {i for i in ids if i in records} | index.ids(records, "Email", keys) | index.ids(records, "Code", keys)
        assert {i: r for i, r in records.items() if i in found} == looked_at


def test_a_record_whose_key_changed_is_found_by_its_new_key_only() -> None:
    records = {"1": {"Email": "old@x.nl"}}
    index = KeyIndex()
    assert index.ids(records, "Email", {"old@x.nl"}) == {"1"}
    records["1"] = {"Email": "New@X.nl"}
    index.update("1", records["1"])
    assert index.ids(records, "Email", {"old@x.nl"}) == set()
    assert index.ids(records, "Email", {"new@x.nl"}) == {"1"}
