"""Dataflow documents: the parsed spec that the engine, the checklist and the report all read.

A Sesam Talk "Dataflow" document is reStructuredText in a fixed shape: a title "<A> to <B> Dataflow",
then one section per flow titled "<A> <Type> to <B> <Type>", a few fixed sentences, and a three-column
``list-table`` (source property, target property, target data type). The generator that wrote them is
noisy, so the parser tolerates its quirks (empty tables, quoted cast names instead of types, ``N/A``,
drifting system labels, repeated sections) and fails with a line number on anything it cannot read.

Example::

    doc = parse_dataflow(Path("dataflows/customcrm-exact.rst").read_text(), name="customcrm-exact.rst")
    for flow in doc.flows:
        print(flow.id, [row.source for row in flow.properties])
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_DOCUMENT",
    "DataflowError",
    "Dataflow",
    "Flow",
    "MergeRule",
    "PropertyRow",
    "load_dataflow",
    "normalize_type",
    "parse_dataflow",
    "render_dataflow",
    "system_key",
]

DEFAULT_DOCUMENT = "customcrm-exact.rst"

# Generator cast names (the "Data Type" column is the cast applied in the target) mapped to Edm types.
_CAST_TYPES = {
    "string": "Edm.String",
    "integer": "Edm.Int32",
    "int": "Edm.Int32",
    "float": "Edm.Double",
    "decimal": "Edm.Double",
    "boolean": "Edm.Boolean",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTime",
    "date": "Edm.DateTime",
    "guid": "Edm.Guid",
    "list": "list",
}
_EDM_TYPES = {
    "Edm.String",
    "Edm.Guid",
    "Edm.DateTime",
    "Edm.Double",
    "Edm.Int16",
    "Edm.Int32",
    "Edm.Int64",
    "Edm.Byte",
    "Edm.Boolean",
}

# Known spellings of one system. The generator drifted between them, sometimes within one title
# ("ExactOnlineExact OnlineExact Items"), so a label is any concatenation of a system's aliases.
_SYSTEM_ALIASES: dict[str, tuple[str, ...]] = {
    "exact": ("exactonline", "exact"),
    "customcrm": ("customcrm",),
}


class DataflowError(ValueError):
    """A document that cannot be read; carries the line number of the offending text."""

    def __init__(self, message: str, line: int | None = None, source: str = "") -> None:
        self.message = message
        self.line = line
        self.source = source
        where = f"{source}:{line}: " if source and line is not None else f"{source}: " if source else \
            f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}")


@dataclass(frozen=True)
class PropertyRow:
    """One synchronized property: a row of a flow's table, and one property check of the checklist."""

    source: str
    target: str
    data_type: str | None
    raw_type: str = ""
    line: int = 0

    @property
    def id(self) -> str:
        return self.source if self.source == self.target else f"{self.source}->{self.target}"


@dataclass(frozen=True)
class MergeRule:
    """One row of a flow's merge table: records merge (link) when these properties are equal on both sides.
    A cell may name several properties ("FirstName + LastName"): a combination, all of which must match."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True)
class Flow:
    """One section of the document: every <source type> is synchronized with a <target type>."""

    id: str
    source_system: str
    source_label: str
    source_type: str
    target_system: str
    target_label: str
    target_type: str
    properties: tuple[PropertyRow, ...] = ()
    requires: tuple[str, ...] = ()
    create_condition: str = ""
    notes: tuple[str, ...] = ()
    line: int = 0
    # The document's own merge keys (its merge table), in its order; empty when it states none.
    merge_rules: tuple[MergeRule, ...] = ()
    # "A link between <this section's own pair> must be established": a precondition, not a dependency.
    preconditions: tuple[str, ...] = ()
    # Sentences that limit which records the flow covers ("When a Deal has a 100% probability ..."): the
    # checklist cannot stage them, so such a flow is reported as conditional and not checked.
    conditions: tuple[str, ...] = ()

    def __hash__(self) -> int:
        """Worked out once: a flow keys the caches of every drawn value, and hashing it field by field (every
        row of its table) on each lookup cost a ci run more than the lookups saved."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the cached hash: another process hashes strings with another seed."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @property
    def title(self) -> str:
        return f"{self.source_label} {self.source_type} to {self.target_label} {self.target_type}"

    def row(self, source: str) -> PropertyRow | None:
        for row in self.properties:
            if row.source == source:
                return row
        return None


@dataclass(frozen=True)
class Dataflow:
    """A whole document: the systems it connects and its flows in document order."""

    title: str
    source_label: str
    target_label: str
    flows: tuple[Flow, ...]
    generated: str = ""
    introduction: tuple[str, ...] = ()
    name: str = ""

    def flow(self, flow_id: str) -> Flow:
        for flow in self.flows:
            if flow.id == flow_id:
                return flow
        known = ", ".join(f.id for f in self.flows)
        raise KeyError(f"no flow {flow_id!r} in {self.name or 'the document'} (known: {known})")

    @property
    def source_system(self) -> str:
        return system_key(self.source_label)

    @property
    def target_system(self) -> str:
        return system_key(self.target_label)


def system_key(label: str) -> str:
    """The canonical key of a system label: 'Custom CRM' -> 'customcrm', 'Exact Online' -> 'exact'."""
    squashed = re.sub(r"[^a-z0-9]", "", label.lower())
    for key, aliases in _SYSTEM_ALIASES.items():
        if re.fullmatch("(?:" + "|".join(aliases) + ")+", squashed):
            return key
    return squashed


def normalize_type(raw: str) -> str | None:
    """Map the table's third column to an Edm type; None when the document does not say (N/A, empty)."""
    text = raw.strip()
    unquoted = text.strip('"').strip("'").strip()
    if unquoted in _EDM_TYPES:
        return unquoted
    lowered = unquoted.lower()
    if lowered in ("", "n/a", "na", "none"):
        return None
    if lowered in _CAST_TYPES:
        return _CAST_TYPES[lowered]
    if "datetime" in lowered:  # raw DTL leaking into the column, e.g. ["datetime-format", ...]
        return "Edm.DateTime"
    return None


# --------------------------------------------------------------------------------------------------
# Parsing


_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
_EVERY = re.compile(r"^Every (?P<a>.+?) will be synchronized with an? (?P<b>.+?)\.?$")
_LINK_REQUIRED = re.compile(
    r"^Before any synchronization can take place, a link between an? (?P<a>.+?) and an? (?P<b>.+?) "
    r"must be established\.?$"
)
_CREATED_IF = re.compile(
    r"^A new (?P<b>.+?) will be created from an? (?P<a>.+?) if it is connected to an? (?P<via>.+?) "
    r"that is synchronized into (?P<sys>.+?)\.?$"
)
_KEEP_IN_SYNC = re.compile(r"^Once a link between .+ is established, it will keep in sync")
_MERGES_IF = re.compile(r"^An? (?P<a>.+?) will merge with an? (?P<b>.+?) if (?:one of )?the following property "
                        r"combinations? match(?:es)?:?$")
_CONDITION = re.compile(r"^(?:When|If|Only when|Only if|Unless) an? .+", re.IGNORECASE)
_COMBINATION = re.compile(r"\s*(?:\+|,|\band\b)\s*")
_PROPERTIES_INTRO = re.compile(r"^The following properties are synchronized between ")


@dataclass
class _Section:
    title: str
    line: int
    body: list[tuple[int, str]] = field(default_factory=list)


def load_dataflow(path: str | Path | None = None) -> Dataflow:
    """Read a document from a path, or the project's own document when no path is given."""
    if path is None:
        text = resources.files("dataflows").joinpath(DEFAULT_DOCUMENT).read_text(encoding="utf-8")
        return parse_dataflow(text, name=DEFAULT_DOCUMENT)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataflowError(f"cannot read the document: {exc.strerror or exc}", source=str(p)) from exc
    return parse_dataflow(text, name=str(p))


def parse_dataflow(text: str, name: str = "") -> Dataflow:
    """Parse a document of the Dataflow family; raises DataflowError with a line number."""
    lines = text.splitlines()
    title, title_line, sections = _split_sections(lines, name)
    m = re.fullmatch(r"(?P<a>.+?) to (?P<b>.+?) Dataflow", title.strip())
    if not m:
        raise DataflowError(
            f"the title {title!r} is not of the form '<System> to <System> Dataflow'", title_line, name
        )
    source_label, target_label = m.group("a").strip(), m.group("b").strip()
    file_keys = _file_keys(name)
    doc_source, doc_target = system_key(source_label), system_key(target_label)

    generated = ""
    introduction: list[str] = []
    flows: dict[str, Flow] = {}
    preamble = sections.pop(0) if sections and sections[0].title == "" else None
    if preamble is not None:
        for _, text_line in preamble.body:
            g = re.match(r"^Generated:\s*(.+)$", text_line.strip())
            if g:
                generated = g.group(1).strip()
    for section in sections:
        if section.title.strip().rstrip(".").strip().lower() == "introduction":
            introduction.extend(p for _, p in _paragraphs(section.body))
            continue
        flow = _parse_flow(section, (doc_source, source_label, file_keys[0]), (doc_target, target_label, file_keys[1]),
                           name)
        if flow.id in flows:
            flows[flow.id] = _merge_repeated(flows[flow.id], flow)
        else:
            flows[flow.id] = flow
    return Dataflow(
        title=title.strip(),
        source_label=source_label,
        target_label=target_label,
        flows=tuple(flows.values()),
        generated=generated,
        introduction=tuple(introduction),
        name=name,
    )


def _split_sections(lines: list[str], name: str) -> tuple[str, int, list[_Section]]:
    """Find the document title and the sections (a text line underlined by a run of '-')."""
    title = ""
    title_line = 0
    sections: list[_Section] = [_Section("", 0)]
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        # Over- and underlined title.
        if not title and _ADORNMENT.match(line) and i + 2 < n and _ADORNMENT.match(lines[i + 2]):
            title, title_line = lines[i + 1].strip(), i + 2
            i += 3
            continue
        if (
            line.strip()
            and not _ADORNMENT.match(line)
            and i + 1 < n
            and _ADORNMENT.match(lines[i + 1])
            and not line.startswith((" ", "\t"))
        ):
            char = lines[i + 1].strip()[0]
            if not title and char == "=":
                title, title_line = line.strip(), i + 1
            else:
                sections.append(_Section(line.strip(), i + 1))
            i += 2
            continue
        sections[-1].body.append((i + 1, line))
        i += 1
    if not title:
        raise DataflowError("no document title found (expected '<System> to <System> Dataflow')", 1, name)
    return title, title_line, sections


def _paragraphs(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join the non-directive text of a section into paragraphs (line number of the first line)."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    in_directive = False
    for line_no, line in body:
        if line.startswith(".. "):
            in_directive = True
        elif in_directive and line.strip() and not line.startswith((" ", "\t")):
            in_directive = False
        if in_directive:
            if current:
                out.append((start, " ".join(current)))
                current = []
            continue
        if line.strip():
            if not current:
                start = line_no
            current.append(line.strip())
        elif current:
            out.append((start, " ".join(current)))
            current = []
    if current:
        out.append((start, " ".join(current)))
    return out


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _file_keys(name: str) -> tuple[str, str]:
    """The systems' keys a file name gives ("wave-exact.rst", "hubspot_exact_dataflow.rst"), or blanks."""
    parts = [p for p in re.split(r"[-_]", Path(name).name.split(".")[0].lower()) if p and p != "dataflow"]
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "")


def _label_matches(candidate: str, system: tuple[str, str, str]) -> bool:
    """Whether a section's label names the system the title calls `system` (key, title label, the file
    name's key): its known spellings; case, spaces and punctuation ignored; the file name's key; a start of
    the title's label ("Wave" for "Wave Financial", "Custom" for "Customcrm", three letters at least); or its
    end ("BusinessNxt" for "Visma Business Nxt")."""
    key, title_label, file_key = system
    if system_key(candidate) == key:
        return True
    short, full = _squash(candidate), _squash(title_label)
    if file_key and short == file_key:
        return True
    return len(short) >= 3 and (full.startswith(short) or full.endswith(short))


def _split_label(text: str, system: tuple[str, str, str], line: int, name: str,
                 other: tuple[str, str, str] | None = None) -> tuple[str, str]:
    """Split 'Custom CRM Customer' into ('Custom CRM', 'Customer') given the system (key, title label). A
    label run together with the type ("WoocommerceProduct") is cut where the title's label ends; a label
    that would name the other system of the document just as well is ambiguous and refused."""
    words = text.split()
    for cut in range(len(words) - 1, 0, -1):
        label = " ".join(words[:cut])
        if _label_matches(label, system):
            if other is not None and system_key(label) != system[0] and _label_matches(label, other):
                raise DataflowError(f"{label!r} in {text!r} could name either system of the document "
                                    f"({system[1]!r} or {other[1]!r})", line, name)
            return label, " ".join(words[cut:])
    full = _squash(system[1])
    if words and len(words[0]) > len(full) and _squash(words[0]).startswith(full) and words[0][:len(full)].isalpha():
        cut_at = len(full)
        return words[0][:cut_at], " ".join([words[0][cut_at:], *words[1:]])
    raise DataflowError(f"{text!r} does not start with a label of the system {system[1]!r}", line, name)


def _flow_id(source_type: str, target_type: str) -> str:
    def slug(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", "", s.lower())

    return f"{slug(source_type)}-{slug(target_type)}"


def _parse_flow(section: _Section, source: tuple[str, str, str], target: tuple[str, str, str], name: str) -> Flow:
    parts = section.title.split(" to ")
    if len(parts) != 2:
        raise DataflowError(
            f"the section title {section.title!r} is not of the form '<System> <Type> to <System> <Type>'",
            section.line,
            name,
        )
    source_label, source_type = _split_label(parts[0].strip(), source, section.line, name, target)
    target_label, target_type = _split_label(parts[1].strip(), target, section.line, name, source)
    flow_id = _flow_id(source_type, target_type)

    requires: list[str] = []
    preconditions: list[str] = []
    conditions: list[str] = []
    create_condition = ""
    notes: list[str] = []
    paragraphs = _paragraphs(section.body)
    for line_no, paragraph in paragraphs:
        if _EVERY.match(paragraph) or _KEEP_IN_SYNC.match(paragraph) or _PROPERTIES_INTRO.match(paragraph) \
                or _MERGES_IF.match(paragraph):
            continue
        link = _LINK_REQUIRED.match(paragraph)
        if link:
            _, a_type = _split_label(link.group("a"), source, line_no, name, target)
            _, b_type = _split_label(link.group("b"), target, line_no, name, source)
            required = _flow_id(a_type, b_type)
            if required == flow_id:  # the section's own pair: what must hold before it syncs, not a dependency
                preconditions.append(paragraph)
            elif required not in requires:
                requires.append(required)
            continue
        created = _CREATED_IF.match(paragraph)
        if created:
            create_condition = created.group("via").strip()
            continue
        if _CONDITION.match(paragraph):
            conditions.append(paragraph)
            continue
        notes.append(paragraph)

    rows: list[PropertyRow] = []
    merge_rules: list[MergeRule] = []
    for table in _tables(section.body, name):
        lead = next((text for start, text in reversed(paragraphs) if start < table.line), "")
        if _MERGES_IF.match(lead):
            merge_rules.extend(_merge_rules(table, name))
        else:
            rows.extend(_property_rows(table, name))
    rows = _first_of_each(rows, _pair)
    merge_rules = _first_of_each(merge_rules, _pair)
    return Flow(
        id=flow_id,
        source_system=source[0],
        source_label=source_label,
        source_type=source_type,
        target_system=target[0],
        target_label=target_label,
        target_type=target_type,
        properties=tuple(rows),
        requires=tuple(requires),
        create_condition=create_condition,
        notes=tuple(notes),
        line=section.line,
        merge_rules=tuple(merge_rules),
        preconditions=tuple(preconditions),
        conditions=tuple(conditions),
    )


@dataclass
class _Table:
    line: int
    header_rows: int = 0
    rows: list[list[tuple[int, str]]] = field(default_factory=list)


def _tables(body: list[tuple[int, str]], name: str) -> list[_Table]:
    """Every list-table of a section, each with its own header rows and rows of cells."""
    tables: list[_Table] = []
    in_table = False
    for line_no, line in body:
        stripped = line.strip()
        if stripped.startswith(".. list-table::"):
            tables.append(_Table(line_no))
            in_table = True
            continue
        if stripped.startswith(".. "):
            raise DataflowError(f"unexpected directive {stripped!r}", line_no, name)
        if not in_table or not stripped:
            continue
        if not line.startswith((" ", "\t")):
            in_table = False
            continue
        table = tables[-1]
        option = re.match(r"^:([\w-]+):\s*(.*)$", stripped)
        if option:
            if option.group(1) == "header-rows":
                try:
                    table.header_rows = int(option.group(2))
                except ValueError as exc:
                    raise DataflowError(f"header-rows must be a number, not {option.group(2)!r}",
                                        line_no, name) from exc
            continue
        if stripped.startswith("* - "):
            table.rows.append([(line_no, stripped[4:].strip())])
        elif stripped == "* -":
            table.rows.append([(line_no, "")])
        elif stripped.startswith("- ") or stripped == "-":
            if not table.rows:
                raise DataflowError("a table cell before the first row ('* - ')", line_no, name)
            table.rows[-1].append((line_no, stripped[2:].strip()))
        else:
            raise DataflowError(f"cannot read this table line: {stripped!r}", line_no, name)
    for table in tables:
        if table.header_rows < 1 and table.rows:
            raise DataflowError("the list-table has no ':header-rows: 1' option", table.line, name)
    return tables


def _body_rows(table: _Table, width: int, what: str, name: str) -> list[tuple[int, list[str]]]:
    """A table's rows below its header, (line, cells), each with exactly `width` cells."""
    out = []
    for index, cells in enumerate(table.rows):
        row_line = cells[0][0]
        if len(cells) != width:
            raise DataflowError(f"{what} has {len(cells)} cells; {_WIDTHS[width]} are expected", row_line, name)
        if index >= table.header_rows:
            out.append((row_line, [c for _, c in cells]))
    return out


_WIDTHS = {2: "two", 3: "three"}


def _property_rows(table: _Table, name: str) -> list[PropertyRow]:
    """A property table: a header row, then one row per property, three cells each."""
    out: list[PropertyRow] = []
    for row_line, (source, target, raw_type) in _body_rows(table, 3, "a table row", name):
        if not source or not target:
            raise DataflowError("a property row with an empty property name", row_line, name)
        out.append(PropertyRow(source, target, _data_type(raw_type, row_line, name), raw_type, row_line))
    return out


def _merge_rules(table: _Table, name: str) -> list[MergeRule]:
    """A merge table: a header row, then one row per property combination, two cells each."""
    out: list[MergeRule] = []
    for row_line, cells in _body_rows(table, 2, "a merge-table row", name):
        source, target = (tuple(p for p in _COMBINATION.split(c) if p) for c in cells)
        if not source or len(source) != len(target):
            raise DataflowError("a merge row must name as many properties on each side", row_line, name)
        out.append(MergeRule(source, target, row_line))
    return out


def _pair(row: Any) -> tuple[Any, Any]:
    return row.source, row.target


def _same(item: Any) -> Any:
    return item


def _first_of_each(items: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    """The items in order, each key kept once (the generator repeats rows and sections)."""
    seen: set[Any] = set()
    out = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            out.append(item)
    return out


def _data_type(raw: str, line: int, name: str) -> str | None:
    """The row's Edm type; an ``Edm.`` name the family does not use (a typo) is a document error."""
    unquoted = raw.strip().strip('"').strip("'").strip()
    if unquoted.startswith("Edm.") and unquoted not in _EDM_TYPES and unquoted not in ("Edm.Decimal",
                                                                                      "Edm.DateTimeOffset"):
        near = difflib.get_close_matches(unquoted, sorted(_EDM_TYPES), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise DataflowError(f"unknown data type {unquoted!r}{hint}", line, name)
    return normalize_type(raw)


def _merge_repeated(first: Flow, again: Flow) -> Flow:
    """The generator repeats sections; keep one flow with the union of their rows, first seen first."""
    rows = _first_of_each([*first.properties, *again.properties], _pair)
    requires = _first_of_each([*first.requires, *again.requires], _same)
    notes = _first_of_each([*first.notes, *again.notes], _same)
    return Flow(
        id=first.id,
        source_system=first.source_system,
        source_label=first.source_label,
        source_type=first.source_type,
        target_system=first.target_system,
        target_label=first.target_label,
        target_type=first.target_type,
        properties=tuple(rows),
        requires=tuple(requires),
        create_condition=first.create_condition or again.create_condition,
        notes=tuple(notes),
        line=first.line,
        merge_rules=tuple(_first_of_each([*first.merge_rules, *again.merge_rules], _pair)),
        preconditions=tuple(_first_of_each([*first.preconditions, *again.preconditions], _same)),
        conditions=tuple(_first_of_each([*first.conditions, *again.conditions], _same)),
    )


# --------------------------------------------------------------------------------------------------
# Rendering


def _underline(text: str, char: str) -> str:
    return char * len(text)


def render_dataflow(doc: Dataflow) -> str:
    """Write a document in the generator's format; parse(render(doc)) gives the same flows back."""
    out: list[str] = []
    bar = _underline(doc.title, "=")
    out += [bar, doc.title, bar, ""]
    if doc.generated:
        out += [f"Generated: {doc.generated}", ""]
    if doc.introduction:
        out += ["Introduction", _underline("Introduction", "-"), ""]
        for paragraph in doc.introduction:
            out += [paragraph, ""]
    for flow in doc.flows:
        a = f"{flow.source_label} {flow.source_type}"
        b = f"{flow.target_label} {flow.target_type}"
        out += [flow.title, _underline(flow.title, "-")]
        for required in flow.requires:
            req = next((f for f in doc.flows if f.id == required), None)
            if req is not None:
                ra = f"{req.source_label} {req.source_type}"
                rb = f"{req.target_label} {req.target_type}"
                out += [f"Before any synchronization can take place, a link between a {ra} and a {rb} "
                        "must be established.", ""]
        out += [f"Before any synchronization can take place, a link between a {a} and a {b} must be established.",
                ""] if flow.preconditions else []
        out += [f"Every {a} will be synchronized with a {b}.", ""]
        for condition in flow.conditions:
            out += [condition, ""]
        out += [f"Once a link between a {a} and a {b} is established, it will keep in sync between the two "
                "systems, regardless of where it is edited.", ""]
        for note in flow.notes:
            out += [note, ""]
        out += [f"The following properties are synchronized between a {a} and a {b}:", ""]
        out += [".. list-table::", "   :header-rows: 1", ""]
        out += [f"   * - {a} Property", f"     - {b} Property", f"     - {flow.target_label} Data Type"]
        for row in flow.properties:
            out += [f"   * - {row.source}", f"     - {row.target}", f"     - {row.raw_type or row.data_type or 'N/A'}"]
        out += [""]
        if flow.merge_rules:
            out += [f"A {a} will merge with a {b} if one of the following property combinations match:", ""]
            out += [".. list-table::", "   :header-rows: 1", ""]
            out += [f"   * - {a} Property", f"     - {b} Property"]
            for rule in flow.merge_rules:
                out += [f"   * - {' + '.join(rule.source)}", f"     - {' + '.join(rule.target)}"]
            out += [""]
        out += [""]
    return "\n".join(out)
