"""Test data built from the parsed flows: realistic values from Faker mixed with Hypothesis edge cases.

Faker is seeded from a drawn integer, so shrinking and ``--seed`` replays stay deterministic. Limits
come from both mocks' own readings of their APIs: a value is generated only within what both systems
accept (the smaller maximum length wins). References and lines are drawn from records the check has
already linked (see ``FlowContext``).
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import importlib.util
import itertools
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from faker.config import DEFAULT_LOCALE
from faker.generator import Generator
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from mocks.customcrm.models import RESOURCES as CRM_RESOURCES
from mocks.customcrm.models import LineFields
from mocks.exact.properties import TABLES as EXACT_TABLES
from sync.dataflow import Flow, PropertyRow
from sync.systems.exact import entity_for

__all__ = ["ENUMERATED", "LOCALES", "PROVIDERS", "distinct_value", "exact_table", "field_limits", "next_unique",
           "reset_unique", "unique_number", "value_strategy"]

LOCALES = ("nl_NL", "en_GB", "de_DE", "fr_FR", "no_NO")
# The providers `_makers` uses. Faker loads every provider of a locale unless told which: a quarter of a
# second for the five locales, at the start of every run (before its workers start). The values are the
# same either way: a provider's values come from the generator's own seeded random.
PROVIDERS = tuple(f"faker.providers.{name}" for name in (
    "address", "barcode", "company", "internet", "job", "lorem", "person", "phone_number", "ssn"))


def _generator(locale: str) -> Any:
    """What `Faker(locale, providers=PROVIDERS)` builds, without its search for each provider's locales: Faker
    lists a provider's locale folders from disk once for every locale asked of it (45 listings of a hundred
    folders: a fifth of a second at the start of every run, before its workers start). Here each provider is
    taken in the locale's own form where Faker has one, else in the provider's default locale, as Faker does;
    `tests/conformance/test_faker_providers.py` holds every maker to what a Faker of its own makes."""
    config: dict[str, Any] = {"locale": locale, "use_weighting": True}
    generator = Generator(**config)  # its provider methods are added as it runs: typed as Any where used
    for path in PROVIDERS:
        package = importlib.import_module(path)
        lang: str | None = None
        module = package
        if getattr(package, "localized", False):
            lang = locale if importlib.util.find_spec(f"{path}.{locale}") is not None else \
                (getattr(package, "default_locale", "") or DEFAULT_LOCALE)
            module = importlib.import_module(f"{path}.{lang}")
        provider = module.Provider(generator)
        provider.__use_weighting__ = True
        provider.__provider__ = path
        provider.__lang__ = lang
        generator.add_provider(provider)
    return generator


_fakers: dict[str, Any] = {locale: _generator(locale) for locale in LOCALES}


def _pin_hypothesis_constants() -> None:
    """Keep the literals of loaded code out of the data. Hypothesis now and then draws a literal it found in
    the source of a module loaded from outside site-packages, and it reads them again whenever the set of
    loaded modules grows. The checklist's data would then depend on what code is loaded (an editable install
    or a wheel, a plugin, an edited wording in the report), not on the seed alone; and every process would
    parse the project's source again (a tenth of a second) and keep a cache of it in the directory it runs
    in. Hypothesis's own constants (the edge values of each type) still come up."""
    try:
        from hypothesis.internal.conjecture import providers as hypothesis_providers
    except ImportError:  # another Hypothesis, which draws no literals of loaded code
        return
    local = getattr(hypothesis_providers, "_get_local_constants", None)
    if local is None or getattr(local, "pinned", False):  # another Hypothesis, or pinned already
        return
    empty = type(hypothesis_providers._local_constants)()

    def no_local_constants() -> Any:
        return empty

    no_local_constants.pinned = True  # type: ignore[attr-defined]
    hypothesis_providers._get_local_constants = no_local_constants


_pin_hypothesis_constants()
# Fields whose values come from a short list both systems accept (Country draws from Faker's codes, but a
# check needing another valid code takes one of these).
ENUMERATED: dict[str, list[str]] = {"Currency": ["EUR", "USD", "GBP", "NOK", "SEK", "DKK"],
                                    "VatCode": ["1", "2", "3", "5"], "Unit": ["pc", "kg", "m", "h", "box"],
                                    "Country": ["NL", "GB", "DE", "FR", "NO", "BE"]}
# Numbers that keep e-mails, codes and order numbers unique. They start again with every example
# (`reset_unique`), so the same choices give the same data in any process, whatever ran before (replay), and
# a shrunk example is still valid. Per thread of execution (a context variable). When examples of many checks
# share the systems (a batch), each check has a slot and each example its ordinal, and the numbers are unique
# across all of them without any shared counter, so the data still depends on the seed alone.
_unique: contextvars.ContextVar[tuple[itertools.count[int], int | None, int]] = \
    contextvars.ContextVar("talkcheck_unique")
SLOTS = 1024  # checks in one batch, at most
PER_EXAMPLE = 256  # unique numbers one example takes, at most
# Faker instances are shared; seeding one and drawing from it is one step no other thread may split.
_faker_lock = threading.Lock()


def unique_number(slot: int, example: int, k: int) -> int:
    """The k-th unique number of an example of the check in `slot`: distinct for distinct (slot, example, k)
    while slot < SLOTS and k < PER_EXAMPLE (a mixed-radix number)."""
    if not 0 <= slot < SLOTS or not 0 <= k < PER_EXAMPLE:
        raise ValueError(f"unique number out of range: slot {slot}, number {k}")
    return (example * PER_EXAMPLE + k) * SLOTS + slot


def reset_unique(slot: int | None = None, example: int = 0) -> None:
    """A new example begins: its unique numbers start again (from 1 alone, or in its slot of a batch)."""
    _unique.set((itertools.count(1), slot, example))


def next_unique() -> int:
    state = _unique.get(None)
    if state is None:
        reset_unique()
        state = _unique.get()
    counter, slot, example = state
    k = next(counter)
    return k if slot is None else unique_number(slot, example, k)


def distinct_value(value: Any, n: int, max_length: int | None = None) -> Any:
    """A merge-key value made unique by the unique number `n`, keeping its kind: an e-mail keeps its domain
    (``t<n>.`` before it), other text keeps its start and ends in ``~<n>``. Distinct numbers give distinct
    values, compared as the engines compare keys (the number is read from the last ``~``, or from the e-mail's
    prefix; an e-mail has no ``~``); a value that is not text is kept."""
    if not isinstance(value, str) or not value:
        return value
    limit = max_length or 200
    if "@" in value and "~" not in value:
        tagged = f"t{n}.{value}"
        return tagged if len(tagged) <= limit else f"t{n}@example.com"
    tag = f"~{n}"
    if len(tag) > limit:
        raise ValueError(f"no room for a unique value in {limit} characters")
    return value[:limit - len(tag)] + tag


_TEXT = st.characters(blacklist_categories=("Cs", "Cc"))


def exact_table(path: str) -> str:
    """The name Exact's documentation gives an entity's property table: the last part of its REST path
    (``salesorder/SalesOrders`` -> ``SalesOrders``), so a new entity needs no entry here."""
    return path.rsplit("/", 1)[-1]


def _crm_model(type_name: str) -> Any:
    for resource in CRM_RESOURCES.values():
        if resource.name.lower() == type_name.lower():
            return resource.model
    return None


def _max_length(info: Any) -> int | None:
    for meta in getattr(info, "metadata", []):
        if getattr(meta, "max_length", None) is not None:
            return int(meta.max_length)
    return None


def _crm_field(flow: Flow, row: PropertyRow) -> Any:
    """Customcrm's contract for the row's field (a line's field for ``Lines.<name>``), or None."""
    model, name = _crm_model(flow.source_type), row.source
    if name.startswith("Lines."):
        model, name = LineFields, name[len("Lines."):]
    return model.model_fields.get(name) if model is not None else None


def lengths(flow: Flow, row: PropertyRow) -> tuple[int | None, int | None]:
    """(the longest value Customcrm takes, the longest Exact takes) for the row; None: no limit."""
    info = _crm_field(flow, row)
    entity = entity_for(flow.target_type)
    lines = None if entity is None else entity.lines
    path = (lines.path if lines is not None else "") if row.target.count(".") else (entity.path if entity else "")
    table = exact_table(path)
    target = row.target.split(".")[-1]
    exact = next((n for prop, _e, _a, _m, n in EXACT_TABLES.get(table, ()) if prop == target), None)
    return (_max_length(info) if info is not None else None), exact


def field_limits(flow: Flow, row: PropertyRow) -> tuple[int | None, bool]:
    """(maximum length both systems accept, whether Customcrm requires a value)."""
    info = _crm_field(flow, row)
    limits = [n for n in lengths(flow, row) if n is not None]
    return (min(limits) if limits else None), bool(info is not None and info.is_required())


@functools.lru_cache(maxsize=len(LOCALES))
def _makers(locale: str) -> dict[str, Callable[[], Any]]:
    """Realistic values by Customcrm field name, in one locale; unique ones stay unique within a run."""
    fake = _fakers[locale]
    return {
        "Email": lambda: f"{next_unique()}.{fake.email()}",
        "ContactEmail": lambda: f"{next_unique()}.{fake.email()}",
        "OrganisationNumber": lambda: f"{fake.random_number(digits=8, fix_len=True)}",
        "VatNumber": lambda: _fakers["nl_NL"].vat_id(),
        "Website": fake.url,
        "ZipCode": fake.postcode,
        "Country": fake.country_code,
        "City": fake.city,
        "StreetAddress1": fake.street_address,
        "StreetAddress2": lambda: f"{fake.building_number()} {fake.street_suffix()}",
        "Phone": fake.phone_number,
        "Mobile": fake.phone_number,
        "Fax": fake.phone_number,
        "ContactPhone": fake.phone_number,
        "Name": fake.company,
        "FirstName": fake.first_name,
        "ContactFirstName": fake.first_name,
        "LastName": fake.last_name,
        "ContactLastName": fake.last_name,
        "JobTitle": fake.job,
        "Description": fake.sentence,
        "Notes": fake.sentence,
        "Remarks": fake.sentence,
        "Code": lambda: f"P-{next_unique():05d}",
        "OrderNumber": lambda: f"SO-{next_unique():06d}",
        "QuoteNumber": lambda: f"Q-{next_unique():06d}",
        "Unit": lambda: fake.random_element(ENUMERATED["Unit"]),
        "Barcode": lambda: fake.ean13(),
        "VatCode": lambda: fake.random_element(ENUMERATED["VatCode"]),
        "Currency": lambda: fake.random_element(ENUMERATED["Currency"]),
        "FullName": fake.name,
    }


# Fields whose values the Customcrm contract constrains (formats, uniqueness): realistic values only.
_CONSTRAINED = {"Email", "ContactEmail", "Country", "Website", "Code", "OrderNumber", "QuoteNumber", "Currency",
                "VatCode", "Unit"}


# What users type and engines get wrong, one value per class. Beside the random draws, every property is given
# each class of its kind in turn (`catalogue_pick`), so a run covers them all for certain, not by luck, and
# smoke catches what ci catches.
TEXT_CLASSES: tuple[tuple[str, str], ...] = (
    ("leading space", " Leading space"),
    ("trailing space", "Trailing space "),
    ("line break", "Two\nlines"),
    ("tab", "Tab\tseparated"),
    ("outside the BMP", "Party \U0001f389 and \U0001d11e"),
    ("non-ASCII letters", "Zo\u00eb \u00c5ngstr\u00f6m-\u00d8deg\u00e5rd"),
    ("decomposed letters", "Zoe\u0308 Ange\u0301lique"),
    ("mixed case", "MiXeD cAsE"),
    ("carriage return", "Windows\r\nline"),
    ("right-to-left", "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"),
    ("doubled spaces", "Two  spaces  inside"),
    ("markup characters", "Tom & Jerry <b>\"quoted\" 'single'</b>"),
)
EMAIL_CLASSES: tuple[tuple[str, str], ...] = (
    ("mixed case", "Mixed.Case@Example.COM"),
    ("plus-addressing", "first.last+tag@example.com"),
    ("internationalised domain", "user@b\u00fccher.example"),
)
DOUBLE_CLASSES: tuple[tuple[str, float], ...] = (
    ("fraction", 0.5), ("binary rounding", 2.675), ("many decimals", 1234.5678), ("large", 1e9 + 0.25),
    ("zero", 0.0), ("negative", -3.25), ("tenth", 0.1),
)
DATE_CLASSES: tuple[tuple[str, str], ...] = (
    ("29 February", "2024-02-29"), ("summer time starts", "2024-03-31"), ("summer time ends", "2024-10-27"),
    ("before 1970", "1969-12-31"), ("year end", "1999-12-31"), ("year start", "2000-01-01"),
)
_EMAIL_FIELDS = {"Email", "ContactEmail"}


def catalogue(flow: Flow, row: PropertyRow, kind: str) -> tuple[tuple[str, Any], ...]:
    """The classes of values this property is given in turn: (class, value), each one the property accepts on
    both sides (its length, Customcrm's contract); a property whose values the contract constrains to a list
    or a format has none."""
    return _catalogue(flow, row, kind)


@functools.lru_cache(maxsize=1024)
def _catalogue(flow: Flow, row: PropertyRow, kind: str) -> tuple[tuple[str, Any], ...]:
    name = row.source.split(".")[-1]
    max_length, _required = field_limits(flow, row)
    if kind == "date":
        classes: tuple[tuple[str, Any], ...] = DATE_CLASSES
    elif kind == "double":
        classes = DOUBLE_CLASSES
    elif kind != "string" or (name in _CONSTRAINED and name not in _EMAIL_FIELDS):
        return ()
    else:
        classes = EMAIL_CLASSES if name in _EMAIL_FIELDS else TEXT_CLASSES
    if kind == "string" and classes is TEXT_CLASSES and max_length is not None and max_length >= 2:
        classes = (*classes, ("at the maximum length", ("\u00c5" + "x" * max_length)[:max_length - 1] + "Z"))
    accepts = _accepted_by_customcrm(flow, row)
    return tuple((c, v) for c, v in classes
                 if (max_length is None or not isinstance(v, str) or len(v) <= max_length) and accepts(v))


def _accepted_by_customcrm(flow: Flow, row: PropertyRow) -> Callable[[Any], bool]:
    """Whether Customcrm's contract takes a value for this field (its bounds: a price is never negative)."""
    info = _crm_field(flow, row)
    if info is None:
        return lambda _value: True
    adapter = TypeAdapter(info.rebuild_annotation())

    def accepts(value: Any) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True
    return accepts


# Every class of a kind in one value, where one value can hold them: a property check gives it at create, so
# a defect of any class in that property fails the property's own row (the rotation above spreads single
# classes over the other checks). Shorter forms for short fields.
_TEXT_SINKS = (" Zoe\u0308 \u00c5ngstr\u00f6m\tMiXeD\r\nTwo \U0001f389 ", " a\tB\nc\U0001f389e\u0301 ")
_EMAIL_SINK = "First.Last+Tag@B\u00fccher.example"
_DOUBLE_SINKS = (-123456789.0625, 123456789.0625, 0.0625)  # fraction, 4 decimals, past float32, sign
_DATE_SINK = "1968-02-29"  # a leap day before 1970


@functools.lru_cache(maxsize=1024)
def sink(flow: Flow, row: PropertyRow, kind: str) -> Any:
    """One value with every class of its kind that fits the property, or None where there is none."""
    name = row.source.split(".")[-1]
    max_length, _required = field_limits(flow, row)
    accepts = _accepted_by_customcrm(flow, row)
    if kind == "date":
        candidates: tuple[Any, ...] = (_DATE_SINK,)
    elif kind == "double":
        candidates = _DOUBLE_SINKS
    elif kind != "string" or (name in _CONSTRAINED and name not in _EMAIL_FIELDS):
        return None
    else:
        candidates = (_EMAIL_SINK,) if name in _EMAIL_FIELDS else _TEXT_SINKS
    return next((v for v in candidates if (max_length is None or not isinstance(v, str) or len(v) <= max_length)
                 and accepts(v)), None)


def catalogue_turn(slot: int, nth: int, size: int) -> int | None:
    """Which class (an index below `size`) the nth draw of a property in an example of the check in `slot`
    takes, or None for a random draw. Most turns are classes, rotating with the check's place in the
    document, so that the checks of a flow give every property every class; it depends on nothing else, so
    that Hypothesis replays an example exactly."""
    if size == 0:
        return None
    turn = (slot + nth) % cycle(size)
    return turn if turn < size else None


def cycle(size: int) -> int:
    """Turns before the classes come round again: every class once, and a third as many random draws."""
    return size + max(1, size // 3)


def value_strategy(flow: Flow, row: PropertyRow, kind: str, *, allow_empty: bool = True) -> st.SearchStrategy[Any]:
    """One value for a property, in Customcrm's terms (the canonical form both sides are compared in). Built
    once per row and kind: a strategy is validated when first drawn from, and the checks draw thousands."""
    return _value_strategy(flow, row, kind, allow_empty)


@functools.lru_cache(maxsize=4096)
def _value_strategy(flow: Flow, row: PropertyRow, kind: str, allow_empty: bool) -> st.SearchStrategy[Any]:
    return _values(flow, row, kind, allow_empty=allow_empty)


# Faker's values come from this many seeds per locale and field: variety enough, and each value is made once
# per process (a seeded Faker call costs a tenth of a millisecond or more, and the checks draw thousands).
FAKER_SEEDS = 1024
# Made with a unique number of the run in them: made afresh each time.
_UNIQUE_MADE = frozenset({"Email", "ContactEmail", "Code", "OrderNumber", "QuoteNumber"})


def _make(locale: str, name: str, faker_seed: int) -> str:
    fake = _fakers[locale]
    with _faker_lock:
        fake.seed_instance(faker_seed)
        return str(_makers(locale)[name]())


@functools.lru_cache(maxsize=1 << 16)
def _made(locale: str, name: str, faker_seed: int) -> str:
    return _make(locale, name, faker_seed)


# Built once: a strategy is validated when first drawn from, and a new one each draw costs that again.
_AMOUNTS = st.one_of(st.integers(0, 10_000_000).map(float),
                     st.floats(0, 1e9, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2)))
_DATES = st.dates(min_value=date(1950, 1, 1), max_value=date(2035, 12, 31))


@functools.lru_cache(maxsize=256)
def _free_text(max_length: int | None) -> st.SearchStrategy[str]:
    """Free text, or text of the field's full length when it has one (built once per length)."""
    limit = max_length or 200
    return st.one_of(_text(limit, False), _text(limit, True) if max_length else st.nothing())


@functools.lru_cache(maxsize=256)
def _text(limit: int, exact: bool) -> st.SearchStrategy[str]:
    """Free text up to 40 characters, or (`exact`) of the field's full length."""
    return st.text(_TEXT, min_size=limit, max_size=limit) if exact else st.text(_TEXT, min_size=1,
                                                                                 max_size=min(limit, 40))


@st.composite
def _values(draw: st.DrawFn, flow: Flow, row: PropertyRow, kind: str, *, allow_empty: bool = True) -> Any:
    max_length, required = field_limits(flow, row)
    name = row.source.split(".")[-1]
    if kind == "bool":
        return draw(st.booleans())
    if kind == "double":
        if name == "Discount":
            return draw(st.integers(0, 50)) / 100
        if name == "Quantity":
            return float(draw(st.integers(1, 500)))
        return draw(_AMOUNTS)
    if kind == "int":
        return draw(st.integers(0, 2**31 - 1))
    if allow_empty and not required and draw(st.integers(0, 9)) == 0:
        return None
    if kind == "date":
        return draw(_DATES).isoformat()
    if name in _makers(LOCALES[0]) and (name in _CONSTRAINED or draw(st.integers(0, 3)) > 0):
        # The locale and Faker's seed in one draw (each draw costs what it costs, and records draw many).
        locale_and_seed = draw(st.integers(0, len(LOCALES) * FAKER_SEEDS - 1))
        locale, faker_seed = LOCALES[locale_and_seed % len(LOCALES)], locale_and_seed // len(LOCALES)
        value = _made(locale, name, faker_seed) if name not in _UNIQUE_MADE else _make(locale, name, faker_seed)
    else:
        value = draw(_free_text(max_length))
        if not value.strip():
            value = "x" + value[1:]
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value
