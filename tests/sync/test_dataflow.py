"""The parser reads every document of the Dataflow family, quirks included, and fails with a line number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.dataflow import (
    Dataflow,
    DataflowError,
    Flow,
    PropertyRow,
    load_dataflow,
    normalize_type,
    parse_dataflow,
    render_dataflow,
    system_key,
)

SEVEN = ["contact-contacts", "customer-accounts", "order-salesorders", "product-contacts", "product-items",
         "quote-quotations", "user-salesorders"]
PAIRS = [("Contact", "Contacts"), ("Customer", "Accounts"), ("Order", "Salesorders"), ("Product", "Contacts"),
         ("Product", "Items"), ("Quote", "Quotations"), ("User", "Salesorders")]


def seed_shaped(a: str = "Customcrm", b: str = "Exact", rows: dict[str, list[tuple[str, str, str]]] | None = None,
                repeat: int = 1) -> str:
    """A document in the generator's shape: empty tables unless rows are given."""
    out = ["=" * 30, f"{a} to {b} Dataflow", "=" * 30, "", "Generated: 2024-01-01 00:00:00", "",
           "Introduction", "------------", "", "A test document.", ""]
    for _ in range(repeat):
        for s, t in PAIRS:
            title = f"{a} {s} to {b} {t}"
            out += [title, "-" * len(title), f"Every {a} {s} will be synchronized with a {b} {t}.", "",
                    f"Once a link between a {a} {s} and a {b} {t} is established, it will keep in sync between "
                    "the two systems, regardless of where it is edited.", "",
                    f"The following properties are synchronized between a {a} {s} and a {b} {t}:", "",
                    ".. list-table::", "   :header-rows: 1", "",
                    f"   * - {a} {s} Property", f"     - {b} {t} Property", f"     - {b} Data Type"]
            for src, tgt, typ in (rows or {}).get(f"{s}-{t}".lower(), []):
                out += [f"   * - {src}", f"     - {tgt}", f"     - {typ}"]
            out += ["", ""]
    return "\n".join(out)


def test_project_document_has_seven_filled_flows_with_edm_types() -> None:
    doc = load_dataflow()
    assert [f.id for f in doc.flows] == SEVEN
    for flow in doc.flows:
        assert flow.properties, flow.id
        for row in flow.properties:
            assert row.data_type is not None and row.data_type.startswith("Edm."), (flow.id, row)
    assert doc.flow("contact-contacts").requires == ("customer-accounts",)
    assert doc.flow("product-contacts").notes, "the interpretation of the odd flow is stated"


def test_seed_shaped_document_gives_seven_empty_flows() -> None:
    doc = parse_dataflow(seed_shaped())
    assert [f.id for f in doc.flows] == SEVEN
    assert all(f.properties == () for f in doc.flows)
    assert doc.generated == "2024-01-01 00:00:00"


@pytest.mark.parametrize(("a", "b"), [("CustomCRM", "ExactOnline"), ("Custom CRM", "Exact Online"),
                                      ("Customcrm", "ExactOnlineExact OnlineExact")])
def test_label_drift(a: str, b: str) -> None:
    doc = parse_dataflow(seed_shaped(a, b))
    assert doc.source_system == "customcrm" and doc.target_system == "exact"
    assert [f.id for f in doc.flows] == SEVEN


def test_repeated_sections_are_merged_once() -> None:
    text = seed_shaped(rows={"customer-accounts": [("Name", "Name", '"string"')]}, repeat=2)
    doc = parse_dataflow(text)
    assert [f.id for f in doc.flows] == SEVEN
    assert doc.flow("customer-accounts").properties[0].data_type == "Edm.String"
    assert len(doc.flow("customer-accounts").properties) == 1


def test_dependency_sentences_become_requirements() -> None:
    text = seed_shaped().replace(
        "Every Customcrm Contact will be synchronized",
        "Before any synchronization can take place, a link between a Customcrm Customer and a Exact Accounts "
        "must be established.\n\nA new Contacts will be created from a Contact if it is connected to a "
        "Customer that is synchronized into Exact.\n\nEvery Customcrm Contact will be synchronized")
    flow = parse_dataflow(text).flow("contact-contacts")
    assert flow.requires == ("customer-accounts",)
    assert flow.create_condition == "Customer"


@pytest.mark.parametrize(("raw", "expected"), [('"string"', "Edm.String"), ('"integer"', "Edm.Int32"),
                                                ('"float"', "Edm.Double"), ('"decimal"', "Edm.Double"),
                                                ('"boolean"', "Edm.Boolean"), ("N/A", None), ("Edm.Guid", "Edm.Guid"),
                                                ('["datetime-format","%Y","_."]', "Edm.DateTime"), ("", None)])
def test_generator_types(raw: str, expected: str | None) -> None:
    assert normalize_type(raw) == expected


def test_a_table_row_with_two_cells_fails_with_its_line() -> None:
    text = seed_shaped(rows={"customer-accounts": [("Name", "Name", "Edm.String")]})
    lines = text.splitlines()
    bad = next(i for i, line in enumerate(lines) if line == "     - Edm.String" and lines[i - 2] == "   * - Name")
    del lines[bad]
    with pytest.raises(DataflowError) as caught:
        parse_dataflow("\n".join(lines), name="broken.rst")
    assert caught.value.line == bad - 1
    assert "broken.rst:" in str(caught.value) and "three are expected" in str(caught.value)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t.replace("Customcrm to Exact Dataflow", "Nothing here"), "title"),
    (lambda t: t.replace("Customcrm Quote to Exact Quotations\n", "Customcrm Quote and Exact Quotations\n"),
     "section title"),
    (lambda t: t.replace("Customcrm Quote to Exact Quotations\n", "Hubspot Quote to Exact Quotations\n"),
     "does not start with a label"),
    (lambda t: t.replace("   :header-rows: 1\n", "", 1).replace("     - Exact Contacts Property", "     - x", 1),
     "header-rows"),
])
def test_malformed_documents_name_a_line(mutate: object, message: str) -> None:
    text = mutate(seed_shaped(rows={"contact-contacts": [("Email", "Email", "Edm.String")]}))  # type: ignore[operator]
    with pytest.raises(DataflowError, match=message) as caught:
        parse_dataflow(text)
    assert caught.value.line is not None and caught.value.line > 0


def test_system_keys() -> None:
    assert system_key("Custom CRM") == system_key("CustomCRM") == "customcrm"
    assert system_key("Exact Online") == system_key("ExactOnline") == "exact"


_name = st.from_regex(r"[A-Z][A-Za-z0-9]{0,12}", fullmatch=True)
_type = st.sampled_from(["Edm.String", "Edm.Guid", "Edm.DateTime", "Edm.Double", "Edm.Int32", "Edm.Boolean"])


@st.composite
def documents(draw: st.DrawFn) -> Dataflow:
    pairs = draw(st.lists(st.tuples(_name, _name), min_size=1, max_size=6,
                          unique_by=lambda p: (p[0].lower(), p[1].lower())))
    flows = []
    for source_type, target_type in pairs:
        rows = draw(st.lists(st.tuples(_name, _name, _type), max_size=5, unique_by=lambda r: (r[0], r[1])))
        flows.append(Flow(
            id=f"{source_type.lower()}-{target_type.lower()}", source_system="customcrm", source_label="Customcrm",
            source_type=source_type, target_system="exact", target_label="Exact", target_type=target_type,
            properties=tuple(PropertyRow(s, t, ty, ty) for s, t, ty in rows)))
    return Dataflow(title="Customcrm to Exact Dataflow", source_label="Customcrm", target_label="Exact",
                    flows=tuple(flows), generated="2026-01-01 00:00:00")


@given(documents())
def test_render_then_parse_gives_the_same_flows(doc: Dataflow) -> None:
    parsed = parse_dataflow(render_dataflow(doc))
    assert [f.id for f in parsed.flows] == [f.id for f in doc.flows]
    for mine, theirs in zip(doc.flows, parsed.flows, strict=True):
        assert [(r.source, r.target, r.data_type) for r in theirs.properties] == \
            [(r.source, r.target, r.data_type) for r in mine.properties]
        assert (theirs.source_type, theirs.target_type) == (mine.source_type, mine.target_type)
