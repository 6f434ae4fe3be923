"""What Exact does with a record on write, one rule object per entity set (moto's per-model split).

Reading a body (`decode`: unknown names refused, read-only ones ignored, types and lengths checked) is the
same for every set; what is mandatory (`require`), what Exact computes (`derive`: codes, numbers, names,
statuses, amounts) and what a line copies from its header (`copy_to_line`) differ per set, and each set's
rules are one class here rather than a branch of a chain of set names. Free of HTTP and of the store: a
rule reads what it needs of its division through `Writing`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mocks.exact.edm import EdmError, from_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import BadRequest, Refused

__all__ = ["Rules", "Writing", "blank", "decode", "rules_for"]


@dataclass
class Writing:
    """What a write may read and move on in its division."""

    highest: dict[str, int]  # the highest number used, per "Set.Field" (numbers are never reused)
    item_codes: dict[str, str]  # Items' Code -> ID (codes are unique)
    items: dict[str, dict[str, Any]]  # Items by ID
    now: Callable[[], datetime]
    rows: Callable[[EntitySetDef], dict[str, dict[str, Any]]]

    def next_number(self, entity_set: EntitySetDef, field_name: str) -> int:
        """The highest number used so far plus one (Exact's numbering: numbers are not reused)."""
        counter = f"{entity_set.name}.{field_name}"
        if counter not in self.highest:
            numbers = [int(str(r[field_name]).strip()) for r in self.rows(entity_set).values()
                       if str(r.get(field_name) or "").strip().isdigit()]
            self.highest[counter] = max(numbers, default=0)
        self.highest[counter] += 1
        return self.highest[counter]

    def note_number(self, entity_set: EntitySetDef, field_name: str, value: Any) -> None:
        """A number given by the caller: numbering goes on above it."""
        counter = f"{entity_set.name}.{field_name}"
        if str(value).strip().isdigit() and counter in self.highest:
            self.highest[counter] = max(self.highest[counter], int(str(value).strip()))


def decode(entity_set: EntitySetDef, body: dict[str, Any], *, allow_nav: bool = False) -> dict[str, Any]:
    """Read a request body: unknown names are refused, read-only ones ignored, types checked."""
    values: dict[str, Any] = {}
    for name, raw in body.items():
        prop = entity_set.prop(name)
        if prop is None:
            raise BadRequest(f"Error processing request stream. The property name '{name}' specified for type "
                             f"'{entity_set.type_name}' is not valid.")
        if prop.is_collection:
            if not allow_nav and entity_set.lines is not None and name == entity_set.lines.nav:
                raise BadRequest(f"{name} cannot be changed through the header; use "
                                 f"{entity_set.service}/{entity_set.lines.set_name}.")
            continue
        if not prop.writable:
            continue
        try:
            value = from_wire(raw, prop.edm_type)
        except EdmError as exc:
            raise BadRequest(f"Error processing request stream. The property '{name}' has an invalid value: "
                             f"{exc}.") from exc
        if isinstance(value, str) and prop.max_length is not None and len(value) > prop.max_length:
            raise Refused(f"{name}: the value is too long (maximum {prop.max_length} characters)")
        values[name] = value
    return values


def blank(entity_set: EntitySetDef) -> dict[str, Any]:
    """A record before anything is given: every value empty, booleans false."""
    return {name: (False if prop.edm_type == "Edm.Boolean" else None)
            for name, prop in entity_set.properties.items() if not prop.is_collection}


def _empty(record: dict[str, Any], name: str) -> bool:
    value = record.get(name)
    return value is None or (isinstance(value, str) and not value.strip())


class Rules:
    """The rules of a set with nothing of its own: its mandatory properties, nothing derived."""

    def __init__(self, entity_set: EntitySetDef) -> None:
        self.entity_set = entity_set

    def require(self, record: dict[str, Any]) -> None:
        parent_key = None
        if self.entity_set.parent is not None:
            header_lines = ENTITY_SETS[self.entity_set.parent].lines
            parent_key = header_lines.parent_key if header_lines else None
        for prop in self.entity_set.properties.values():
            # A line's header key is set by the header when lines are posted inline; create() checks it otherwise.
            if prop.mandatory and not prop.is_collection and prop.name != parent_key and _empty(record, prop.name):
                raise Refused(f"{prop.name}: Mandatory")

    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        """Values Exact computes on write."""

    def copy_to_line(self, header: dict[str, Any], line: dict[str, Any]) -> None:
        """What a line shows of its header."""


class AccountRules(Rules):
    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        code = record.get("Code")
        if code is None or not str(code).strip():
            code = str(writing.next_number(self.entity_set, "Code"))
        else:
            writing.note_number(self.entity_set, "Code", code)
        code = str(code).strip()
        if len(code) > 18:
            raise Refused("Code: the value is too long (maximum 18 characters)")
        record["Code"] = code.rjust(18)
        record["Type"] = "A"


class ContactRules(Rules):
    def require(self, record: dict[str, Any]) -> None:
        # The docs flag both names mandatory, but their text asks for at least one of them.
        if _empty(record, "Account"):
            raise Refused("Account: Mandatory")
        if _empty(record, "FirstName") and _empty(record, "LastName"):
            raise Refused("FirstName or LastName: Mandatory")

    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        parts = [record.get("FirstName"), record.get("MiddleName"), record.get("LastName")]
        record["FullName"] = " ".join(p for p in parts if p) or None


class ItemRules(Rules):
    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        code = str(record.get("Code") or "")
        owner = writing.item_codes.get(code)
        if owner is not None and owner != record.get("ID"):
            raise Refused(f"Code: Data already exists ({code})")
        if created and record.get("IsSalesItem") is False and "IsSalesItem" not in record.get("_given", ()):
            record["IsSalesItem"] = True


class _DocumentRules(Rules):
    """A sales order or a quotation: on create, the next number when none is given, an opening status and
    today's date when none is given (the rest per set in `created_values`)."""

    number: str
    status: tuple[int, str]
    date: str

    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        if not created:
            return
        if record.get(self.number) is None:
            record[self.number] = writing.next_number(self.entity_set, self.number)
        record.update(self.created_values(record))
        record["Status"], record["StatusDescription"] = self.status
        record[self.date] = record.get(self.date) or writing.now()

    def created_values(self, record: dict[str, Any]) -> dict[str, Any]:
        return {}


class SalesOrderRules(_DocumentRules):
    number, status, date = "OrderNumber", (12, "Open"), "OrderDate"

    def created_values(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"DeliverTo": record.get("DeliverTo") or record.get("OrderedBy"),
                "InvoiceTo": record.get("InvoiceTo") or record.get("OrderedBy")}

    def copy_to_line(self, header: dict[str, Any], line: dict[str, Any]) -> None:
        line["OrderNumber"] = header.get("OrderNumber")


class QuotationRules(_DocumentRules):
    number, status, date = "QuotationNumber", (20, "Draft"), "QuotationDate"

    def created_values(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"VersionNumber": 1}

    def copy_to_line(self, header: dict[str, Any], line: dict[str, Any]) -> None:
        line["QuotationNumber"] = header.get("QuotationNumber")
        line["VersionNumber"] = header.get("VersionNumber")


class LineRules(Rules):
    """A sales order's or a quotation's line: its price from the item when not given, its net price and
    amount from quantity, price and discount."""

    def derive(self, writing: Writing, record: dict[str, Any], created: bool) -> None:
        quantity = float(record.get("Quantity") or 0)
        discount = float(record.get("Discount") or 0)
        unit = record.get("UnitPrice")
        if unit is None:
            item = writing.items.get(str(record.get("Item")).lower(), {})
            unit = item.get("StandardSalesPrice") or 0.0
            record["UnitPrice"] = unit
        if record.get("NetPrice") is None or "NetPrice" not in record.get("_given", ()):
            record["NetPrice"] = round(float(unit) * (1 - discount), 6)
        if self.entity_set.name == "QuotationLines" or "AmountFC" not in record.get("_given", ()):
            record["AmountFC"] = round(quantity * float(record["NetPrice"]), 2)
        record["AmountDC"] = record["AmountFC"]


_RULES: dict[str, type[Rules]] = {
    "Accounts": AccountRules, "Contacts": ContactRules, "Items": ItemRules, "SalesOrders": SalesOrderRules,
    "Quotations": QuotationRules, "SalesOrderLines": LineRules, "QuotationLines": LineRules,
}
_BY_SET: dict[str, Rules] = {}


def rules_for(entity_set: EntitySetDef) -> Rules:
    """The write rules of a set (those of a set with nothing of its own when it has none)."""
    found = _BY_SET.get(entity_set.name)
    if found is None:
        found = _BY_SET[entity_set.name] = _RULES.get(entity_set.name, Rules)(entity_set)
    return found
