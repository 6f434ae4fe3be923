"""OData v2 query options as Exact Online reads them: $filter, $select, $top, $skip, $orderby.

$filter is parsed into a small expression tree and evaluated against stored records. The grammar
(lowest precedence first)::

    expr    := or
    or      := and ('or' and)*
    and     := unary ('and' unary)*
    unary   := 'not' unary | compare
    compare := term (('eq'|'ne'|'gt'|'ge'|'lt'|'le') term)?
    term    := literal | name | function '(' args ')' | '(' expr ')'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mocks.exact.edm import EdmError, date_literal
from mocks.exact.errors import BadRequest, NotImplementedHere

__all__ = ["SYSTEM_OPTIONS", "Filter", "parse_filter", "parse_orderby", "parse_select", "unknown_option"]

SYNTAX_ERROR = "Bad Request - Error in query syntax."

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<guid>guid'(?P<guidval>[0-9a-fA-F-]{36})')
    | (?P<dt>datetime'(?P<dtval>[^']*)')
    | (?P<str>'(?P<strval>(?:[^']|'')*)')
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<suffix>[LlMmDdFf])?
    | (?P<lp>\()
    | (?P<rp>\))
    | (?P<comma>,)
    | (?P<name>[A-Za-z_][A-Za-z0-9_/]*)
    )""",
    re.VERBOSE,
)

_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"trim", "substringof", "startswith", "endswith", "tolower", "toupper", "length", "indexof"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: Any
    pos: int
    edm: str | None = None  # a literal's type, so a comparison can refuse a literal of the wrong type


Evaluator = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Filter:
    """A parsed $filter: the fields it names and a predicate over a stored record."""

    fields: frozenset[str]
    predicate: Evaluator

    def __call__(self, record: Mapping[str, Any]) -> bool:
        return bool(self.predicate(record))


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise BadRequest(SYNTAX_ERROR)
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        if m.group("guid"):
            tokens.append(_Tok("lit", m.group("guidval").lower(), start, "Edm.Guid"))
        elif m.group("dt") is not None:
            try:
                tokens.append(_Tok("lit", date_literal(m.group("dtval")), start, "Edm.DateTime"))
            except EdmError as exc:
                raise BadRequest(SYNTAX_ERROR) from exc
        elif m.group("str") is not None:
            tokens.append(_Tok("lit", m.group("strval").replace("''", "'"), start, "Edm.String"))
        elif m.group("num"):
            raw = m.group("num")
            suffix = (m.group("suffix") or "").upper()
            is_int = re.fullmatch(r"-?\d+", raw) is not None and suffix not in ("M", "D", "F")
            tokens.append(_Tok("lit", int(raw) if is_int else float(raw), start,
                                  "Edm.Int64" if is_int else "Edm.Double"))
        elif m.group("lp"):
            tokens.append(_Tok("(", None, start))
        elif m.group("rp"):
            tokens.append(_Tok(")", None, start))
        elif m.group("comma"):
            tokens.append(_Tok(",", None, start))
        else:
            word = m.group("name")
            low = word.lower()
            if low in ("true", "false"):
                tokens.append(_Tok("lit", low == "true", start, "Edm.Boolean"))
            elif low == "null":
                tokens.append(_Tok("lit", None, start))
            elif low in _COMPARE or low in ("and", "or", "not"):
                tokens.append(_Tok("op", low, start))
            else:
                tokens.append(_Tok("name", word, start))
        pos = m.end()
    return tokens


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, datetime) or isinstance(b, datetime):
        return a, b
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, int | float) and isinstance(b, str):
        try:
            return a, float(b)
        except ValueError:
            return str(a), b
    if isinstance(a, str) and isinstance(b, int | float):
        try:
            return float(a), b
        except ValueError:
            return a, str(b)
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return bool(a == b) if not (isinstance(a, str) and isinstance(b, str)) else a == b
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    a, b = _comparable(a, b)
    try:
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


_NUMBERS = frozenset({"Edm.Byte", "Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Decimal",
                      "Edm.Single"})


def _family(edm: str) -> str:
    """Types that compare with each other: all numbers, the two date kinds; the rest only with themselves."""
    if edm in _NUMBERS:
        return "number"
    return "date" if edm in ("Edm.DateTime", "Edm.DateTimeOffset") else edm


class _Parser:
    def __init__(self, tokens: list[_Tok], known: Callable[[str], bool], type_name: str,
                 types: Mapping[str, str] | None = None) -> None:
        self.types = types or {}
        self.tokens = tokens
        self.i = 0
        self.known = known
        self.type_name = type_name
        self.fields: set[str] = set()

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise BadRequest(SYNTAX_ERROR)
        self.i += 1
        return tok

    def expect(self, kind: str) -> None:
        tok = self.take()
        if tok.kind != kind:
            raise BadRequest(SYNTAX_ERROR)

    def parse(self) -> Evaluator:
        expr = self.or_()
        if self.peek() is not None:
            raise BadRequest(SYNTAX_ERROR)
        return expr

    def or_(self) -> Evaluator:
        left = self.and_()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.value == "or":
            self.take()
            right = self.and_()
            left = (lambda a, b: lambda rec: bool(a(rec)) or bool(b(rec)))(left, right)
        return left

    def and_(self) -> Evaluator:
        left = self.unary()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.value == "and":
            self.take()
            right = self.unary()
            left = (lambda a, b: lambda rec: bool(a(rec)) and bool(b(rec)))(left, right)
        return left

    def unary(self) -> Evaluator:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value == "not":
            self.take()
            inner = self.unary()
            return lambda rec: not bool(inner(rec))
        return self.compare()

    def _operand_type(self, start: int) -> str | None:
        """The Edm type of an operand that is one property or one literal (None for anything else)."""
        if self.i != start + 1:
            return None
        tok = self.tokens[start]
        return tok.edm if tok.kind == "lit" else self.types.get(tok.value) if tok.kind == "name" else None

    def compare(self) -> Evaluator:
        start = self.i
        left = self.term()
        left_type = self._operand_type(start)
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value in _COMPARE:
            self.take()
            start = self.i
            right = self.term()
            right_type = self._operand_type(start)
            op = tok.value
            if left_type and right_type and _family(left_type) != _family(right_type):
                raise BadRequest(f"Bad Request - Operator '{op}' incompatible with operand types "
                                      f"'{left_type}' and '{right_type}' at position {tok.pos}.")
            return lambda rec: _compare(op, left(rec), right(rec))
        return left

    def term(self) -> Evaluator:
        tok = self.take()
        if tok.kind == "lit":
            value = tok.value
            return lambda rec: value
        if tok.kind == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if tok.kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "(":
                return self.function(tok.value)
            name = tok.value
            if not self.known(name):
                raise BadRequest(f"Could not find a property named '{name}' on type '{self.type_name}'."
                )
            self.fields.add(name)
            return lambda rec: rec.get(name)
        raise BadRequest(SYNTAX_ERROR)

    def function(self, name: str) -> Evaluator:
        fname = name.lower()
        if fname not in _FUNCTIONS:
            raise NotImplementedHere(f"Unknown function '{name}'.")
        self.expect("(")
        args = [self.or_()]
        while (tok := self.peek()) is not None and tok.kind == ",":
            self.take()
            args.append(self.or_())
        self.expect(")")

        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        def call(rec: Mapping[str, Any]) -> Any:
            vals = [text(a(rec)) for a in args]
            if fname in ("trim", "tolower", "toupper", "length"):
                if len(vals) != 1:
                    raise BadRequest(SYNTAX_ERROR)
                v = vals[0]
                if v is None:
                    return None
                return {"trim": v.strip(), "tolower": v.lower(), "toupper": v.upper(), "length": len(v)}[fname]
            if len(vals) != 2:
                raise BadRequest(SYNTAX_ERROR)
            a, b = vals
            if a is None or b is None:
                return False if fname != "indexof" else -1
            if fname == "substringof":
                return a in b
            if fname == "startswith":
                return a.startswith(b)
            if fname == "endswith":
                return a.endswith(b)
            return a.find(b)

        return call


def parse_filter(text: str, known: Callable[[str], bool], type_name: str,
                 types: Mapping[str, str] | None = None) -> Filter:
    """Parse a $filter; `known` says whether a property name exists on the entity type, and `types` gives
    the properties' Edm types, so that `ID eq 'abc'` or `Name eq 5` is refused as Exact refuses it."""
    if not text.strip():
        raise BadRequest(SYNTAX_ERROR)
    parser = _Parser(_tokenize(text), known, type_name, types)
    predicate = parser.parse()
    return Filter(frozenset(parser.fields), predicate)


def parse_select(text: str | None, known: Callable[[str], bool], type_name: str) -> list[str] | None:
    """Parse $select into property names (None: all properties)."""
    if text is None or text.strip() in ("", "*"):
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        base = name.split("/")[0]
        if not known(base):
            raise BadRequest(f"Could not find a property named '{base}' on type '{type_name}'.")
    return names


def parse_orderby(text: str | None, known: Callable[[str], bool], type_name: str) -> list[tuple[str, bool]]:
    """Parse $orderby into (property, descending) pairs."""
    if text is None or not text.strip():
        return []
    out: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise BadRequest(SYNTAX_ERROR)
        if not known(words[0]):
            raise BadRequest(f"Could not find a property named '{words[0]}' on type '{type_name}'.")
        out.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return out


SYSTEM_OPTIONS = frozenset({"$filter", "$select", "$expand", "$top", "$skip", "$skiptoken", "$orderby",
                            "$inlinecount", "$format"})


def unknown_option(query: list[tuple[str, str]]) -> str | None:
    """Why OData refuses these query parameters: a system option ($…) it does not know, or a value outside
    an option's set; None when they are acceptable."""
    for name, value in query:
        if name.startswith("$") and name not in SYSTEM_OPTIONS:
            return (f"Bad Request - The query parameter '{name}' begins with a system-reserved '$' character but "
                    "is not recognized.")
        if name == "$inlinecount" and value not in ("allpages", "none"):
            return (f"Bad Request - Invalid value '{value}' for $inlinecount query option found. Valid values are "
                    "'allpages' and 'none'.")
        if name == "$format" and value not in ("json", "application/json"):
            return f"Bad Request - The $format value '{value}' is not supported; use json."
    return None
