"""Test data built from the parsed flows: realistic values from Faker mixed with Hypothesis edge cases.

Faker is seeded from a drawn integer, so shrinking and ``--seed`` replays stay deterministic. Limits
come from both mocks' own readings of their APIs: a value is generated only within what both systems
accept (the smaller maximum length wins).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from faker import Faker
from hypothesis import strategies as st

from mocks.customcrm.models import RESOURCES as CRM_RESOURCES
from mocks.exact.properties import TABLES as EXACT_TABLES
from sync.dataflow import Flow, PropertyRow

__all__ = ["LOCALES", "field_limits", "record_strategy", "value_strategy"]

LOCALES = ("nl_NL", "en_GB", "de_DE", "fr_FR", "no_NO")
_fakers = {locale: Faker(locale) for locale in LOCALES}
_unique = itertools.count(1)

_TEXT = st.characters(blacklist_categories=("Cs", "Cc"))


def _crm_model(flow: Flow) -> Any:
    for resource in CRM_RESOURCES.values():
        if resource.name.lower() == flow.source_type.lower():
            return resource.model
    return None


def field_limits(flow: Flow, row: PropertyRow) -> tuple[int | None, bool]:
    """(maximum length both systems accept, whether Customcrm requires a value)."""
    limits: list[int] = []
    required = False
    model = _crm_model(flow)
    if model is not None and row.source in model.model_fields:
        info = model.model_fields[row.source]
        required = info.is_required()
        for meta in info.metadata:
            if getattr(meta, "max_length", None) is not None:
                limits.append(int(meta.max_length))
    for table in EXACT_TABLES.values():
        for name, _edm, _access, _mandatory, max_length in table:
            if name == row.target and max_length is not None and table is EXACT_TABLES.get(_exact_table(flow)):
                limits.append(max_length)
    return (min(limits) if limits else None), required


def _exact_table(flow: Flow) -> str:
    return {"salesorders": "SalesOrders"}.get(flow.target_type.lower(), flow.target_type)


def _faker_value(name: str, fake: Faker) -> str | None:
    lowered = name.lower()
    makers: list[tuple[str, Callable[[], str]]] = [
        ("email", lambda: f"{next(_unique)}.{fake.email()}"),
        ("organisationnumber", lambda: f"{fake.random_number(digits=8, fix_len=True)}"),
        ("vatnumber", lambda: _fakers["nl_NL"].vat_id()),
        ("website", lambda: fake.url()),
        ("zipcode", lambda: fake.postcode()),
        ("country", lambda: fake.country_code()),
        ("city", lambda: fake.city()),
        ("streetaddress", lambda: fake.street_address()),
        ("phone", lambda: fake.phone_number()),
        ("fax", lambda: fake.phone_number()),
        ("name", lambda: fake.company()),
        ("description", lambda: fake.sentence()),
    ]
    for key, make in makers:
        if key in lowered:
            return make()
    return None


_CONSTRAINED = ("email", "country", "website")


@st.composite
def value_strategy(draw: st.DrawFn, flow: Flow, row: PropertyRow, kind: str, *, allow_empty: bool = True) -> Any:
    """One value for a property, in Customcrm's terms (the canonical form both sides are compared in)."""
    max_length, required = field_limits(flow, row)
    if kind == "bool":
        return draw(st.booleans())
    if kind == "double":
        return draw(st.one_of(st.integers(0, 10_000_000).map(float),
                              st.floats(0, 1e9, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2))))
    if kind == "int":
        return draw(st.integers(0, 2**31 - 1))
    if allow_empty and not required and draw(st.integers(0, 9)) == 0:
        return None
    fake = _fakers[draw(st.sampled_from(LOCALES))]
    fake.seed_instance(draw(st.integers(0, 2**32 - 1)))
    realistic = _faker_value(row.source, fake)
    constrained = any(key in row.source.lower() for key in _CONSTRAINED)
    if realistic is not None and (constrained or draw(st.integers(0, 3)) > 0):
        value = realistic
    else:
        limit = max_length or 200
        value = draw(st.one_of(
            st.text(_TEXT, min_size=1, max_size=min(limit, 40)),
            st.text(_TEXT, min_size=limit, max_size=limit) if max_length else st.nothing(),
        ))
        if not value.strip():
            value = "x" + value[1:]
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value


@st.composite
def record_strategy(draw: st.DrawFn, flow: Flow, kinds: dict[str, str]) -> dict[str, Any]:
    """A Customcrm record for a flow: a value for every mapped property, required ones always filled."""
    record: dict[str, Any] = {}
    for row in flow.properties:
        value = draw(value_strategy(flow, row, kinds[row.source]))
        if value is not None:
            record[row.source] = value
    return record
