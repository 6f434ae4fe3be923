"""The journal's writes-only view answers as a scan of the whole journal would, whatever came and went."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mocks.common.journal import READS, Journal, JournalEntry

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
PATHS = ("/api/v1/customers/1", "/api/v1/customers/2", "/api/v1/1/crm/Accounts(guid'a')", "/api/v1/changes")

_steps = st.lists(st.one_of(st.just(None), st.tuples(st.sampled_from(METHODS), st.sampled_from(PATHS))),
                  max_size=60)


def _scanned(journal: Journal, needle: str, methods: frozenset[str]) -> list[JournalEntry]:
    return [e for e in journal.entries if e.method in methods and needle.lower() in e.path.lower()]


@given(_steps, st.integers(1, 8), st.sampled_from(["", "customers/1", "GUID'A'"]),
       st.sets(st.sampled_from(METHODS), min_size=1).map(frozenset))
def test_the_writes_of_a_record_are_those_a_scan_of_the_journal_finds(
        steps: list[tuple[str, str] | None], limit: int, needle: str, methods: frozenset[str]) -> None:
    journal = Journal(limit=limit)
    for n, step in enumerate(steps):
        if step is None:
            journal.clear()
        else:
            journal.add(JournalEntry(str(n), step[0], step[1], "", 200))
        assert journal.snapshot(path_contains=needle, methods=methods) == _scanned(journal, needle, methods)


def test_reads_are_told_apart_from_writes() -> None:
    journal = Journal(limit=3)
    for n, method in enumerate(["POST", "GET", "GET", "GET", "PUT"]):
        journal.add(JournalEntry(str(n), method, "/x", "", 200))
    # The POST has left the journal (three entries kept): the writes-only view forgets it too.
    assert [e.method for e in journal.snapshot(methods=frozenset({"POST", "PUT"}))] == ["PUT"]
    assert "GET" in READS and "POST" not in READS
