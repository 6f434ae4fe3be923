"""The Dataflow family as the generator really writes it: merge tables beside property tables, an
"Introduction." heading, drifting and truncated system labels, sentences naming the section's own pair,
conditional flows, typos in names and types, and documents for systems talkcheck does not cover. Each quirk
in a synthetic document of its own (the real corpus is not the project's to copy)."""

from __future__ import annotations

import pytest

from conformance.planner import document_problems, plan_checks
from sync.dataflow import DataflowError, load_dataflow, parse_dataflow, render_dataflow


def document(title: str = "Customcrm to Exact Dataflow", sections: str = "") -> str:
    bar = "=" * len(title)
    return f"{bar}\n{title}\n{bar}\n\nGenerated: 2024-01-01 00:00:00\n\n{sections}"


def section(a: str, b: str, rows: list[tuple[str, str, str]], *, before: str = "", after: str = "") -> str:
    title = f"{a} to {b}"
    table = "".join(f"   * - {s}\n     - {t}\n     - {d}\n" for s, t, d in rows)
    return (f"{title}\n{'-' * len(title)}\n{before}Every {a} will be synchronized with a {b}.\n\n"
            f"The following properties are synchronized between a {a} and a {b}:\n\n.. list-table::\n"
            f"   :header-rows: 1\n\n   * - {a} Property\n     - {b} Property\n     - Exact Data Type\n{table}\n"
            f"{after}\n")


def merge_table(a: str, b: str, pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"   * - {s}\n     - {t}\n" for s, t in pairs)
    return (f"A {a} will merge with a {b} if one of the following property combinations match:\n\n"
            f".. list-table::\n   :header-rows: 1\n\n   * - {a} Property\n     - {b} Property\n{rows}\n")


ACCOUNT_ROWS = [("Name", "Name", "Edm.String"), ("OrganisationNumber", "ChamberOfCommerce", "Edm.String"),
                ("Email", "Email", "Edm.String")]


def test_a_merge_table_is_read_apart_from_the_property_table() -> None:
    text = document(sections=section("Customcrm Customer", "Exact Accounts", ACCOUNT_ROWS, after=merge_table(
        "Customcrm Customer", "Exact Accounts", [("Email", "Email"), ("Name + OrganisationNumber",
                                                                     "Name + ChamberOfCommerce")])))
    flow = parse_dataflow(text).flows[0]
    assert [r.source for r in flow.properties] == ["Name", "OrganisationNumber", "Email"]  # no header row read
    assert [(r.source, r.target) for r in flow.merge_rules] == [
        (("Email",), ("Email",)), (("Name", "OrganisationNumber"), ("Name", "ChamberOfCommerce"))]
    again = parse_dataflow(render_dataflow(parse_dataflow(text))).flows[0]
    assert [(r.source, r.target) for r in again.merge_rules] == [(r.source, r.target) for r in flow.merge_rules]
    assert [(r.source, r.target, r.data_type) for r in again.properties] == \
        [(r.source, r.target, r.data_type) for r in flow.properties]


def test_the_document_s_merge_table_decides_the_merge_keys_of_the_checklist_and_the_engine() -> None:
    from sync.engine import plan_flow

    text = document(sections=section("Customcrm Customer", "Exact Accounts", ACCOUNT_ROWS,
                                     after=merge_table("Customcrm Customer", "Exact Accounts", [("Email", "Email")])))
    doc = parse_dataflow(text)
    checklist, engine = plan_checks(doc.flows[0], doc), plan_flow(doc.flows[0], doc)
    assert not isinstance(checklist, str) and not isinstance(engine, str)
    assert checklist.entity.merge_keys == engine.entity.merge_keys == (("Email",),)
    project = load_dataflow()
    plan = plan_checks(project.flow("customer-accounts"), project)
    assert not isinstance(plan, str) and plan.entity.merge_keys == (("ChamberOfCommerce",), ("Email",))


def test_changing_a_merge_row_changes_what_links() -> None:
    """With the project's table an Exact account with the customer's organisation number is linked; with a
    table that merges on e-mail alone the same account is left alone and a new one is created."""
    from importlib import resources

    from conformance.engines import BuiltinEngine
    from conformance.systems import Systems

    project = resources.files("dataflows").joinpath("customcrm-exact.rst").read_text(encoding="utf-8")
    email_only = project.replace("   * - OrganisationNumber\n     - ChamberOfCommerce\n   * - Email\n     - Email\n",
                                 "   * - Email\n     - Email\n")
    assert email_only != project
    outcomes = []
    for text in (project, email_only):
        systems = Systems.start("inproc")
        try:
            engine = BuiltinEngine(parse_dataflow(text), systems, flows=["customer-accounts"])
            engine.reset()
            systems.exact_actor().create("crm/Accounts", {"Name": "Old", "ChamberOfCommerce": "12345678"})
            systems.customcrm_actor().create("customers", {"Name": "New", "OrganisationNumber": "12345678",
                                                           "Email": "new@example.com"})
            report = engine.sync().flow("customer-accounts")
            outcomes.append((report.linked, report.created))
        finally:
            systems.close()
    assert outcomes == [(1, 0), (0, 1)]


def test_an_introduction_heading_with_a_period_is_not_a_flow() -> None:
    text = document(sections="Introduction.\n-------------\n\nSome words.\n\n" +
                    section("Customcrm Customer", "Exact Accounts", ACCOUNT_ROWS))
    doc = parse_dataflow(text)
    assert [f.id for f in doc.flows] == ["customer-accounts"] and doc.introduction == ("Some words.",)


@pytest.mark.parametrize(("title", "a", "b", "label"), [
    ("Wave Financial to Exact Dataflow", "Wave Customer", "Exact Accounts", "Wave"),
    ("Visma Business Nxt to Exact Dataflow", "BusinessNxt Customer", "Exact Accounts", "BusinessNxt"),
    ("WooCommerce to Exact Dataflow", "WoocommerceCustomer", "Exact Accounts", "Woocommerce"),
    ("Customcrm to Exact Dataflow", "Custom Customer", "Exact Accounts", "Custom"),
])
def test_drifting_and_truncated_labels_are_read(title: str, a: str, b: str, label: str) -> None:
    flow = parse_dataflow(document(title, section(a, b, ACCOUNT_ROWS))).flows[0]
    assert (flow.source_label, flow.source_type, flow.target_type) == (label, "Customer", "Accounts")


def test_a_label_that_could_name_either_system_is_refused_with_its_line() -> None:
    text = document("Exactly to Exact Online Dataflow", section("Exact Customer", "Exact Accounts", ACCOUNT_ROWS))
    with pytest.raises(DataflowError, match="either system") as caught:
        parse_dataflow(text)
    assert caught.value.line == 7


def test_a_sentence_naming_the_section_s_own_pair_is_a_precondition() -> None:
    own = ("Before any synchronization can take place, a link between a Customcrm Customer and a Exact Accounts "
           "must be established.\n\n")
    flow = parse_dataflow(document(sections=section("Customcrm Customer", "Exact Accounts", ACCOUNT_ROWS,
                                                    before=own))).flows[0]
    assert flow.requires == () and flow.preconditions == (own.strip(),)


def test_a_conditional_flow_is_marked_and_not_checked() -> None:
    when = "When a Customcrm Customer has a credit limit above 1000 it will be synchronized.\n\n"
    doc = parse_dataflow(document(sections=section("Customcrm Customer", "Exact Accounts", ACCOUNT_ROWS,
                                                   before=when)))
    assert doc.flows[0].conditions == (when.strip(),) and when.strip() not in doc.flows[0].notes
    reason = plan_checks(doc.flows[0], doc)
    assert isinstance(reason, str) and reason.startswith("conditional: not checked")


def test_an_unknown_data_type_is_refused_with_its_line_and_the_nearest_type() -> None:
    rows = [("Name", "Name", "Edm.String"), ("Email", "Email", "Edm.Strin")]
    with pytest.raises(DataflowError, match=r"unknown data type 'Edm.Strin' \(did you mean Edm.String\?\)") as caught:
        parse_dataflow(document(sections=section("Customcrm Customer", "Exact Accounts", rows)), name="t.rst")
    assert caught.value.line == 22


def test_misspelt_properties_are_refused_with_their_line_and_the_nearest_name() -> None:
    rows = [("Name", "Name", "Edm.String"), ("Emial", "Email", "Edm.String"), ("Phone", "Phoen", "Edm.String")]
    doc = parse_dataflow(document(sections=section("Customcrm Customer", "Exact Accounts", rows)), name="t.rst")
    assert document_problems(doc) == [
        "t.rst:22: Customcrm Customer has no property 'Emial' (did you mean Email?)",
        "t.rst:25: Exact Accounts has no property 'Phoen' (did you mean Phone?)"]
    assert document_problems(load_dataflow()) == []


def test_documents_for_other_systems_and_the_mirror_direction_are_refused() -> None:
    other = parse_dataflow(document("HubSpot to Exact Dataflow", section("HubSpot Company", "Exact Accounts",
                                                                          ACCOUNT_ROWS)), name="hubspot-exact.rst")
    assert "no declarations for HubSpot to Exact" in document_problems(other)[0]
    mirror = parse_dataflow(document("Exact to Customcrm Dataflow", section("Exact Accounts", "Customcrm Customer",
                                                                             [("Name", "Name", "string")])))
    assert "mirror direction" in document_problems(mirror)[0]


def test_the_command_line_refuses_what_cannot_run_with_exit_2(tmp_path: object, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    from pathlib import Path

    from conformance.cli import main

    path = Path(str(tmp_path)) / "hubspot-exact.rst"
    path.write_text(document("HubSpot to Exact Dataflow", section("HubSpot Company", "Exact Accounts", ACCOUNT_ROWS)))
    assert main(["run", "--doc", str(path), "--profile", "smoke"]) == 2
    assert main(["flows", "--doc", str(path)]) == 2
    err = capsys.readouterr().err
    assert "supports Customcrm to Exact documents" in err and "Traceback" not in err


def test_a_label_the_file_name_gives_is_read() -> None:
    """The title says "Sage Business Cloud", the sections say "SBC", and the file is sbc-exact.rst."""
    text = document("Sage Business Cloud to Exact Dataflow", section("SBC Customer", "Exact Accounts", ACCOUNT_ROWS))
    flow = parse_dataflow(text, name="dataflows/sbc-exact.rst").flows[0]
    assert (flow.source_label, flow.source_type) == ("SBC", "Customer")
    with pytest.raises(DataflowError, match="does not start with a label"):
        parse_dataflow(text, name="other.rst")
