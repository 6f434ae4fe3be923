"""The checklist's own reading of both APIs' values, kept apart from the engine's.

Values are compared by this reading, not by the engine's conversions, so a conversion bug in the engine
cannot agree with itself: Exact's ``/Date(ms)/`` as Amsterdam wall time, doubles as floats, references as
lower-case ids, an empty value (or Exact's missing boolean) as what Customcrm shows for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conformance.sandbox import AMSTERDAM, exact_wall

__all__ = ["exact_wire", "expect_from_crm", "expect_from_exact"]


def expect_from_exact(value: Any, kind: str) -> Any:
    """Exact's wire value as the Customcrm value it must equal (dates in Amsterdam time)."""
    if value is None or value == "":
        return False if kind == "bool" else None
    if kind in ("date", "datetime") and isinstance(value, str) and value.startswith("/Date("):
        wall = exact_wall(value)
        if kind == "date":
            return wall.date().isoformat()
        instant = wall.replace(tzinfo=AMSTERDAM).astimezone(UTC)
        return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind == "double":
        return float(value)
    if kind == "ref":
        return str(value).lower()
    return value


def expect_from_crm(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return False if kind == "bool" else None
    if kind == "double":
        return float(value)
    return value


def exact_wire(value: Any, kind: str) -> Any:
    """A Customcrm-form value as a user would type it into Exact (local Amsterdam time)."""
    if value is None:
        return None
    if kind == "date":
        return f"{value}T00:00:00"
    if kind == "datetime":
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(AMSTERDAM)
        return instant.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return value
