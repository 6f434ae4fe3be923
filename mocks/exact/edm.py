"""Edm values on the wire, as Exact Online's OData v2 JSON writes and reads them.

DateTime is the odd one: ``/Date(ms)/`` carries Amsterdam wall-clock time counted as if it were UTC
(reference §2.4), so 10:00 in Amsterdam in summer is written as the milliseconds of 10:00Z.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["AMSTERDAM", "EdmError", "date_literal", "from_wire", "to_wire"]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_EPOCH = datetime(1970, 1, 1)
_DATE_JSON = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
INT_RANGES = {"Edm.Byte": (0, 255), "Edm.Int16": (-(2**15), 2**15 - 1), "Edm.Int32": (-(2**31), 2**31 - 1),
               "Edm.Int64": (-(2**63), 2**63 - 1)}


class EdmError(ValueError):
    """A value that does not fit its Edm type."""


def _wall_ms(instant: datetime) -> int:
    wall = instant.astimezone(AMSTERDAM).replace(tzinfo=None)
    return (wall - _EPOCH) // timedelta(milliseconds=1)


def _from_wall_ms(ms: int) -> datetime:
    wall = _EPOCH + timedelta(milliseconds=ms)
    return wall.replace(tzinfo=AMSTERDAM).astimezone(UTC)


def date_literal(text: str) -> datetime:
    """Parse an input date-time: ISO without offset is Amsterdam local time, with offset is absolute."""
    m = _DATE_JSON.match(text)
    if m:
        try:
            return _from_wall_ms(int(m.group(1)))
        except (OverflowError, ValueError) as exc:
            raise EdmError(f"'{text}' is outside the dates Exact stores") from exc
    candidate = text.strip()
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = datetime.strptime(candidate, "%m/%d/%Y %H:%M:%S")
        except ValueError as exc:
            raise EdmError(f"'{text}' is not a valid date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=AMSTERDAM)
    try:
        instant = parsed.astimezone(UTC)
        _wall_ms(instant)  # it must be written back as Exact's wall-clock /Date()/ too
        return instant
    except (OverflowError, ValueError) as exc:
        raise EdmError(f"'{text}' is outside the dates Exact stores") from exc


def to_wire(value: Any, edm_type: str) -> Any:
    """Python value -> JSON value."""
    if value is None:
        return None
    if edm_type == "Edm.DateTime":
        return f"/Date({_wall_ms(value)})/"
    if edm_type == "Edm.Int64":
        return str(value)
    if edm_type == "Edm.Guid":
        return str(value).lower()
    return value


def from_wire(value: Any, edm_type: str) -> Any:
    """JSON value from a request body -> Python value; raises EdmError when it does not fit."""
    if value is None:
        return None
    if edm_type == "Edm.String":
        if isinstance(value, str):
            return value
        raise EdmError("a string is expected")
    if edm_type == "Edm.Guid":
        if not isinstance(value, str):
            raise EdmError("a GUID string is expected")
        try:
            return str(uuid.UUID(value.strip("{}")))
        except ValueError as exc:
            raise EdmError(f"'{value}' is not a valid GUID") from exc
    if edm_type == "Edm.Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise EdmError("true or false is expected")
    if edm_type in INT_RANGES:
        if isinstance(value, bool):
            raise EdmError("a whole number is expected")
        try:
            number = int(value) if isinstance(value, int | str) else None
        except ValueError:
            number = None
        if number is None:
            raise EdmError("a whole number is expected")
        low, high = INT_RANGES[edm_type]
        if not low <= number <= high:
            raise EdmError(f"{number} is out of range for {edm_type}")
        return number
    if edm_type == "Edm.Double":
        if isinstance(value, bool):
            raise EdmError("a number is expected")
        try:
            number_f = float(value)
        except (TypeError, ValueError) as exc:
            raise EdmError("a number is expected") from exc
        if number_f != number_f or number_f in (float("inf"), float("-inf")):
            raise EdmError("a finite number is expected")
        return number_f
    if edm_type == "Edm.DateTime":
        if not isinstance(value, str):
            raise EdmError("a date-time string is expected")
        return date_literal(value)
    if edm_type == "Edm.Binary":
        if not isinstance(value, str):
            raise EdmError("base64 text is expected")
        return value
    raise EdmError(f"values of type {edm_type} cannot be written")
