"""Tolerances: strict equality unless a property's tolerance is declared, and then only that tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.cli import main
from conformance.tolerance import KINDS, described, parse_tolerance, tolerated
from sync.dataflow import load_dataflow

kinds = st.frozensets(st.sampled_from(KINDS))


@given(st.text(), kinds)
def test_a_tolerance_is_idempotent_and_strict_without_one(value: str, declared: frozenset[str]) -> None:
    once = tolerated(value, declared)
    assert tolerated(once, declared) == once
    assert tolerated(value, frozenset()) == value


@given(st.text(), st.text(alphabet=" \t"), st.text(alphabet=" \t"))
def test_trim_tolerates_surrounding_whitespace_and_nothing_else(core: str, before: str, after: str) -> None:
    assert tolerated(before + core + after, frozenset({"trim"})) == tolerated(core, frozenset({"trim"}))
    assert tolerated(core + "x", frozenset({"trim"})) != tolerated(core + "y", frozenset({"trim"}))


def test_each_kind_forgives_its_own_difference_only() -> None:
    assert tolerated("A.B@Example.COM", frozenset({"case"})) == tolerated("a.b@example.com", frozenset({"case"}))
    assert tolerated("Zoe\u0308", frozenset({"unicode"})) == tolerated("Zo\u00eb", frozenset({"unicode"}))
    assert tolerated("a\r\nb", frozenset({"line-breaks"})) == tolerated("a b", frozenset({"line-breaks"}))
    assert tolerated(" a", frozenset({"case"})) != tolerated("a", frozenset({"case"}))
    assert tolerated(2.5, frozenset({"trim"})) == 2.5


def test_a_tolerance_names_a_flow_a_property_and_known_kinds() -> None:
    doc = load_dataflow()
    into: dict[str, dict[str, frozenset[str]]] = {}
    parse_tolerance("customer-accounts:Email=case", doc, into)
    parse_tolerance("customer-accounts:Name=trim+unicode", doc, into)
    assert described(into) == ["customer-accounts:Email=case", "customer-accounts:Name=trim+unicode"]
    for wrong, said in (("customer-accounts:Emial=case", "no property 'Emial'"), ("nope:Email=case", "no flow"),
                        ("customer-accounts:Email=lower", "no tolerance 'lower'"), ("Email=case", "write FLOW")):
        with pytest.raises(ValueError, match=said):
            parse_tolerance(wrong, doc, {})


def test_a_trimming_engine_fails_strictly_and_passes_the_declared_tolerance(tmp_path: Path) -> None:
    """The default is the document's promise: equal values. A declared tolerance lets that one property pass,
    and the report says so, with a replay command that repeats it."""
    from conformance.planted import TrimmingEngine
    from conformance.runner import run_checklist

    doc = load_dataflow()
    strict = run_checklist(doc, flows=["customer-accounts"], checks=["property:Name"], profile="smoke", seed=1,
                           engine_class=TrimmingEngine, shrink=False)
    assert strict.flows[0].checks[0].status == "failed"
    tolerant = run_checklist(doc, flows=["customer-accounts"], checks=["property:Name"], profile="smoke", seed=1,
                             engine_class=TrimmingEngine, shrink=False,
                             tolerances={"customer-accounts": {"Name": frozenset({"trim"})}})
    assert tolerant.flows[0].checks[0].status == "passed"
    assert tolerant.tolerances == ["customer-accounts:Name=trim"]


def test_the_cli_refuses_a_wrong_tolerance_in_one_line_and_reports_a_right_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--flow", "product-items", "--check", "property:Code", "--tolerate", "product-items:Cod=trim",
                 "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no property 'Cod'" in err
    assert main(["run", "--flow", "product-items", "--check", "property:Code", "--profile", "smoke", "--tolerate",
                 "product-items:Code=trim", "--report-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["run"]["tolerances"] == ["product-items:Code=trim"]
    assert "--tolerate 'product-items:Code=trim'" in (tmp_path / "report.md").read_text()
    assert "Tolerances declared" in (tmp_path / "report.html").read_text()
