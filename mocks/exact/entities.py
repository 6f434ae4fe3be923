"""The entity sets the mock serves, built from the property tables in ``properties.py``.

Each set names its URL, key, OData type, sync endpoint, deletion code and mandatory-filter fields;
the per-property facts (type, access, mandatory, length) come from the table, so the mock and the
test that checks it read one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from mocks.exact.properties import TABLES

__all__ = ["ENTITY_SETS", "EntitySetDef", "LinesDef", "PropertyDef"]


@dataclass(frozen=True)
class PropertyDef:
    name: str
    edm_type: str
    access: str  # "key", "RW" or "R"
    mandatory: bool
    max_length: int | None

    @property
    def writable(self) -> bool:
        return self.access == "RW"

    @property
    def is_collection(self) -> bool:
        return self.edm_type == "Collection"


@dataclass(frozen=True)
class LinesDef:
    """A line collection posted inline with its header and served by its own set."""

    nav: str  # the navigation property on the header, e.g. "SalesOrderLines"
    set_name: str  # the line set, e.g. "SalesOrderLines"
    parent_key: str  # the line property holding the header's key, e.g. "OrderID"


@dataclass(frozen=True)
class EntitySetDef:
    name: str
    service: str
    key: str
    type_name: str
    sync_path: str | None = None
    bulk_path: str | None = None
    deleted_type: int | None = None
    mandatory_filter: frozenset[str] = frozenset()
    properties: dict[str, PropertyDef] = field(default_factory=dict)
    lines: LinesDef | None = None
    parent: str | None = None  # for a line set: the header set
    references: dict[str, str] = field(default_factory=dict)  # property -> set it points at ("users" for users)
    immutable: frozenset[str] = frozenset()  # refused on update
    needs_division: bool = True
    read_only: bool = False
    sync_extra: tuple[str, ...] = ()  # properties only the sync endpoint has (besides Timestamp)

    @cached_property
    def plain(self) -> tuple[tuple[str, str], ...]:
        """(name, Edm type) of every property that holds a value (not a collection), in table order: what a
        record is written as, worked out once rather than on every row of every page."""
        return tuple((p.name, p.edm_type) for p in self.properties.values() if not p.is_collection)

    @cached_property
    def collections(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties.values() if p.is_collection)

    @property
    def edm_types(self) -> dict[str, str]:
        """Each property's Edm type (a $filter compares a property only with a literal of its type)."""
        return {name: prop.edm_type for name, prop in self.properties.items()}

    @property
    def path(self) -> str:
        return f"{self.service}/{self.name}"

    def prop(self, name: str) -> PropertyDef | None:
        return self.properties.get(name)


def _properties(table: str) -> dict[str, PropertyDef]:
    return {row[0]: PropertyDef(*row) for row in TABLES[table]}


_ACCOUNT_FILTER_FIELDS = frozenset(
    [
        "Accountant", "AccountManager", "AddressLine1", "AddressLine2", "AddressLine3", "Blocked", "BRIN",
        "BSN", "ChamberOfCommerce", "City", "Classification1", "Classification2", "Classification3",
        "Classification4", "Classification5", "Classification6", "Classification7", "Classification8",
        "Classification", "Code", "CodeAtSupplier", "Country", "Created", "Email", "EndDate", "Fax", "ID",
        "InvoiceAccount", "IsAccountant", "IsReseller", "IsSales", "IsSupplier", "MainContact", "Modified",
        "Name", "Parent", "Phone", "Postcode", "PriceList", "Reseller", "RSIN", "SearchCode", "StartDate",
        "Status", "Type", "VATNumber"
    ]
)

_ITEM_FILTER_FIELDS = frozenset(
    ["Barcode", "Code", "CostPriceNew", "Created", "Description", "EndDate", "ExtraDescription", "ID",
     "IsSalesItem", "IsStockItem", "ItemGroup", "Modified", "SearchCode", "StartDate", "Unit"]
    + [f"Class_{i:02d}" for i in range(1, 11)] + [f"FreeBoolField_{i:02d}" for i in range(1, 6)]
    + [f"FreeDateField_{i:02d}" for i in range(1, 6)] + [f"FreeNumberField_{i:02d}" for i in range(1, 9)]
    + [f"FreeTextField_{i:02d}" for i in range(1, 11)]
)

_USER_PROPERTIES: dict[str, PropertyDef] = {
    name: PropertyDef(name, edm, "key" if name == "UserID" else "R", False, None)
    for name, edm in [
        ("UserID", "Edm.Guid"), ("UserName", "Edm.String"), ("FullName", "Edm.String"), ("FirstName", "Edm.String"),
        ("MiddleName", "Edm.String"), ("LastName", "Edm.String"), ("Initials", "Edm.String"), ("Title", "Edm.String"),
        ("Email", "Edm.String"), ("Phone", "Edm.String"), ("PhoneExtension", "Edm.String"), ("Mobile", "Edm.String"),
        ("Gender", "Edm.String"), ("Language", "Edm.String"), ("Nationality", "Edm.String"), ("Notes", "Edm.String"),
        ("ProfileCode", "Edm.String"), ("BirthName", "Edm.String"), ("BirthDate", "Edm.DateTime"),
        ("StartDate", "Edm.DateTime"), ("EndDate", "Edm.DateTime"), ("LastLogin", "Edm.DateTime"),
        ("Customer", "Edm.Guid"), ("CustomerName", "Edm.String"), ("StartDivision", "Edm.Int32"),
        ("HasTwoStepVerification", "Edm.Boolean"), ("HasRegisteredForTwoStepVerification", "Edm.Boolean"),
        ("IsAnonymised", "Edm.Byte"), ("UserTypesList", "Edm.String"), ("Created", "Edm.DateTime"),
        ("Creator", "Edm.Guid"), ("CreatorFullName", "Edm.String"), ("Modified", "Edm.DateTime"),
        ("Modifier", "Edm.Guid"), ("ModifierFullName", "Edm.String"),
    ]
}

ENTITY_SETS: dict[str, EntitySetDef] = {
    "Accounts": EntitySetDef(
        name="Accounts", service="crm", key="ID", type_name="Exact.Web.Api.Models.Account",
        sync_path="CRM/Accounts", bulk_path="CRM/Accounts", deleted_type=2,
        mandatory_filter=_ACCOUNT_FILTER_FIELDS, properties=_properties("Accounts"),
        references={"MainContact": "Contacts", "Parent": "Accounts", "InvoiceAccount": "Accounts",
                    "AccountManager": "users"},
    ),
    "Contacts": EntitySetDef(
        name="Contacts", service="crm", key="ID", type_name="Exact.Web.Api.Models.Contact",
        sync_path="CRM/Contacts", bulk_path="CRM/Contacts", deleted_type=5, properties=_properties("Contacts"),
        references={"Account": "Accounts"},
    ),
    "Items": EntitySetDef(
        name="Items", service="logistics", key="ID", type_name="Exact.Web.Api.Models.Logistics.Item",
        sync_path="Logistics/Items", bulk_path="Logistics/Items", deleted_type=9,
        mandatory_filter=_ITEM_FILTER_FIELDS, properties=_properties("Items"),
    ),
    "SalesOrders": EntitySetDef(
        name="SalesOrders", service="salesorder", key="OrderID", type_name="Exact.Web.Api.Models.SalesOrder",
        sync_path="SalesOrder/SalesOrderHeaders", bulk_path="SalesOrder/SalesOrders", deleted_type=32,
        properties=_properties("SalesOrders"), lines=LinesDef("SalesOrderLines", "SalesOrderLines", "OrderID"),
        references={"OrderedBy": "Accounts", "DeliverTo": "Accounts", "InvoiceTo": "Accounts",
                    "OrderedByContactPerson": "Contacts", "DeliverToContactPerson": "Contacts",
                    "InvoiceToContactPerson": "Contacts", "Salesperson": "users"},
        immutable=frozenset({"OrderedBy", "DeliverTo", "InvoiceTo"}), sync_extra=("ID",),
    ),
    "SalesOrderLines": EntitySetDef(
        name="SalesOrderLines", service="salesorder", key="ID", type_name="Exact.Web.Api.Models.SalesOrderLine",
        sync_path="SalesOrder/SalesOrderLines", bulk_path="SalesOrder/SalesOrderLines", deleted_type=33,
        properties=_properties("SalesOrderLines"), parent="SalesOrders",
        references={"Item": "Items", "OrderID": "SalesOrders"}, immutable=frozenset({"OrderID"}),
    ),
    "Quotations": EntitySetDef(
        name="Quotations", service="crm", key="QuotationID", type_name="Exact.Web.Api.Models.Quotation",
        sync_path="CRM/QuotationHeaders", bulk_path="CRM/Quotations", deleted_type=34,
        properties=_properties("Quotations"), lines=LinesDef("QuotationLines", "QuotationLines", "QuotationID"),
        references={"OrderAccount": "Accounts", "DeliveryAccount": "Accounts", "InvoiceAccount": "Accounts",
                    "OrderAccountContact": "Contacts", "SalesPerson": "users"},
        sync_extra=("ID",),
    ),
    "QuotationLines": EntitySetDef(
        name="QuotationLines", service="crm", key="ID", type_name="Exact.Web.Api.Models.QuotationLine",
        sync_path="CRM/QuotationLines", bulk_path="CRM/QuotationLines", deleted_type=35,
        properties=_properties("QuotationLines"), parent="Quotations",
        references={"Item": "Items", "QuotationID": "Quotations"}, immutable=frozenset({"QuotationID"}),
    ),
    "Users": EntitySetDef(
        name="Users", service="users", key="UserID", type_name="Exact.Web.Api.Models.User",
        properties=_USER_PROPERTIES, read_only=True,
    ),
    "SystemUsers": EntitySetDef(
        name="Users", service="system", key="UserID", type_name="Exact.Web.Api.Models.System.User",
        properties=_USER_PROPERTIES, read_only=True, needs_division=False,
    ),
}
