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

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = [
    "DEFAULT_DOCUMENT",
    "DataflowError",
    "Dataflow",
    "Flow",
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
        if section.title.strip().lower() == "introduction":
            introduction.extend(p for _, p in _paragraphs(section.body))
            continue
        flow = _parse_flow(section, doc_source, doc_target, name)
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


def _split_label(text: str, system: str, line: int, name: str) -> tuple[str, str]:
    """Split 'Custom CRM Customer' into ('Custom CRM', 'Customer') given the expected system key."""
    words = text.split()
    for cut in range(len(words) - 1, 0, -1):
        label = " ".join(words[:cut])
        if system_key(label) == system:
            return label, " ".join(words[cut:])
    raise DataflowError(f"{text!r} does not start with a label of the system {system!r}", line, name)


def _flow_id(source_type: str, target_type: str) -> str:
    def slug(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", "", s.lower())

    return f"{slug(source_type)}-{slug(target_type)}"


def _parse_flow(section: _Section, doc_source: str, doc_target: str, name: str) -> Flow:
    parts = section.title.split(" to ")
    if len(parts) != 2:
        raise DataflowError(
            f"the section title {section.title!r} is not of the form '<System> <Type> to <System> <Type>'",
            section.line,
            name,
        )
    source_label, source_type = _split_label(parts[0].strip(), doc_source, section.line, name)
    target_label, target_type = _split_label(parts[1].strip(), doc_target, section.line, name)
    flow_id = _flow_id(source_type, target_type)

    requires: list[str] = []
    create_condition = ""
    notes: list[str] = []
    for line_no, paragraph in _paragraphs(section.body):
        if _EVERY.match(paragraph) or _KEEP_IN_SYNC.match(paragraph) or _PROPERTIES_INTRO.match(paragraph):
            continue
        link = _LINK_REQUIRED.match(paragraph)
        if link:
            _, a_type = _split_label(link.group("a"), doc_source, line_no, name)
            _, b_type = _split_label(link.group("b"), doc_target, line_no, name)
            required = _flow_id(a_type, b_type)
            if required not in requires:
                requires.append(required)
            continue
        created = _CREATED_IF.match(paragraph)
        if created:
            create_condition = created.group("via").strip()
            continue
        notes.append(paragraph)

    rows = _parse_table(section.body, name)
    return Flow(
        id=flow_id,
        source_system=doc_source,
        source_label=source_label,
        source_type=source_type,
        target_system=doc_target,
        target_label=target_label,
        target_type=target_type,
        properties=tuple(rows),
        requires=tuple(requires),
        create_condition=create_condition,
        notes=tuple(notes),
        line=section.line,
    )


def _parse_table(body: list[tuple[int, str]], name: str) -> list[PropertyRow]:
    """Read the section's list-table: a header row, then one row per property, three cells each."""
    rows: list[list[tuple[int, str]]] = []
    header_rows = 0
    in_table = False
    table_line = 0
    for line_no, line in body:
        stripped = line.strip()
        if stripped.startswith(".. list-table::"):
            if in_table:
                raise DataflowError("a second list-table in one section", line_no, name)
            in_table, table_line = True, line_no
            continue
        if stripped.startswith(".. "):
            raise DataflowError(f"unexpected directive {stripped!r}", line_no, name)
        if not in_table or not stripped:
            continue
        if not line.startswith((" ", "\t")):
            in_table = False
            continue
        option = re.match(r"^:([\w-]+):\s*(.*)$", stripped)
        if option:
            if option.group(1) == "header-rows":
                try:
                    header_rows = int(option.group(2))
                except ValueError as exc:
                    raise DataflowError(f"header-rows must be a number, not {option.group(2)!r}",
                                        line_no, name) from exc
            continue
        if stripped.startswith("* - "):
            rows.append([(line_no, stripped[4:].strip())])
        elif stripped == "* -":
            rows.append([(line_no, "")])
        elif stripped.startswith("- ") or stripped == "-":
            if not rows:
                raise DataflowError("a table cell before the first row ('* - ')", line_no, name)
            rows[-1].append((line_no, stripped[2:].strip()))
        else:
            raise DataflowError(f"cannot read this table line: {stripped!r}", line_no, name)
    if table_line and header_rows < 1 and rows:
        raise DataflowError("the list-table has no ':header-rows: 1' option", table_line, name)
    out: list[PropertyRow] = []
    seen: set[tuple[str, str]] = set()
    for index, cells in enumerate(rows):
        row_line = cells[0][0]
        if len(cells) != 3:
            raise DataflowError(f"a table row has {len(cells)} cells; three are expected", row_line, name)
        if index < header_rows:
            continue
        source, target, raw_type = (c for _, c in cells)
        if not source or not target:
            raise DataflowError("a property row with an empty property name", row_line, name)
        key = (source, target)
        if key in seen:
            continue
        seen.add(key)
        out.append(PropertyRow(source, target, normalize_type(raw_type), raw_type, row_line))
    return out


def _merge_repeated(first: Flow, again: Flow) -> Flow:
    """The generator repeats sections; keep one flow with the union of their rows, first seen first."""
    rows = list(first.properties)
    keys = {(r.source, r.target) for r in rows}
    rows.extend(r for r in again.properties if (r.source, r.target) not in keys)
    requires = list(first.requires) + [r for r in again.requires if r not in first.requires]
    notes = list(first.notes) + [n for n in again.notes if n not in first.notes]
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
        out += [f"Every {a} will be synchronized with a {b}.", ""]
        out += [f"Once a link between a {a} and a {b} is established, it will keep in sync between the two "
                "systems, regardless of where it is edited.", ""]
        for note in flow.notes:
            out += [note, ""]
        out += [f"The following properties are synchronized between a {a} and a {b}:", ""]
        out += [".. list-table::", "   :header-rows: 1", ""]
        out += [f"   * - {a} Property", f"     - {b} Property", f"     - {flow.target_label} Data Type"]
        for row in flow.properties:
            out += [f"   * - {row.source}", f"     - {row.target}", f"     - {row.raw_type or row.data_type or 'N/A'}"]
        out += ["", ""]
    return "\n".join(out)
