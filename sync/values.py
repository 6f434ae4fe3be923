"""Canonical values: the one form in which both systems' values are compared, merged and snapshotted.

Each property has a *kind* (string, guid, double, int, bool, date, datetime). A value read from either
system is turned into its canonical form before any comparison, so "" and null, 1000 and 1000.0, or an
Exact ``/Date(ms)/`` (Amsterdam wall time) and a Customcrm ISO date all compare as a person would expect.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "AMSTERDAM",
    "KINDS",
    "canonical",
    "exact_datetime",
    "kind_for",
    "parse_crm_datetime",
    "to_customcrm",
    "to_exact",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
KINDS = ("string", "guid", "double", "int", "bool", "date", "datetime")
_EXACT_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1)
_EDM_KINDS = {
    "Edm.String": "string",
    "Edm.Guid": "guid",
    "Edm.Double": "double",
    "Edm.Int16": "int",
    "Edm.Int32": "int",
    "Edm.Int64": "int",
    "Edm.Byte": "int",
    "Edm.Boolean": "bool",
    "Edm.DateTime": "datetime",
}


def kind_for(edm_type: str | None, crm_kind: str | None) -> str:
    """The kind of a mapped property: Customcrm's own kind refines the document's Edm type.

    An Edm.DateTime mapped to a Customcrm date is compared as a calendar date in Amsterdam time.
    """
    edm_kind = _EDM_KINDS.get(edm_type or "")
    if crm_kind is None:
        return edm_kind or "string"
    if edm_kind == "datetime" and crm_kind == "date":
        return "date"
    return crm_kind


def exact_datetime(raw: str) -> datetime | None:
    """Read Exact's ``/Date(ms)/``: Amsterdam wall-clock time counted as if it were UTC."""
    m = _EXACT_DATE.match(raw)
    if not m:
        return None
    wall = _EPOCH + timedelta(milliseconds=int(m.group(1)))
    return wall.replace(tzinfo=AMSTERDAM).astimezone(UTC)


def parse_crm_datetime(raw: str) -> datetime:
    text = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _iso_ms(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical(value: Any, kind: str) -> Any:
    """Either system's value (already JSON-decoded) in canonical, JSON-serialisable form."""
    if value is None:
        return False if kind == "bool" else None
    if kind == "string":
        text = str(value)
        return text if text != "" else None
    if kind == "guid":
        return str(value).lower() or None
    if kind == "double":
        return float(value)
    if kind == "int":
        return int(value)
    if kind == "bool":
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)
    if kind in ("date", "datetime"):
        if isinstance(value, str):
            instant = exact_datetime(value)
            if instant is None:
                if kind == "date" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    return value
                instant = parse_crm_datetime(value)
        elif isinstance(value, datetime):
            instant = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, date):
            return value.isoformat()
        else:
            raise ValueError(f"cannot read {value!r} as a {kind}")
        if kind == "date":
            return instant.astimezone(AMSTERDAM).date().isoformat()
        return _iso_ms(instant)
    raise ValueError(f"unknown kind {kind!r}")


def to_exact(value: Any, kind: str) -> Any:
    """A canonical value as Exact accepts it in a POST or PUT body (dates as Amsterdam local time)."""
    if value is None:
        return None
    if kind == "date":
        return f"{value}T00:00:00"
    if kind == "datetime":
        instant = parse_crm_datetime(value).astimezone(AMSTERDAM).replace(tzinfo=None)
        return instant.isoformat(timespec="milliseconds")
    return value


def to_customcrm(value: Any, kind: str) -> Any:
    """A canonical value as Customcrm accepts it (its contract uses the canonical forms directly)."""
    return value
