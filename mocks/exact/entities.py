"""The entity sets the mock serves, built from the property tables in ``properties.py``.

Each set names its URL, key, OData type, sync endpoint, deletion code and mandatory-filter fields;
the per-property facts (type, access, mandatory, length) come from the table, so the mock and the
test that checks it read one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mocks.exact.properties import TABLES

__all__ = ["ENTITY_SETS", "EntitySetDef", "PropertyDef", "entity_set_for_path", "sync_set_for_path"]


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
class EntitySetDef:
    name: str
    service: str
    key: str
    type_name: str
    sync_path: str | None = None
    deleted_type: int | None = None
    mandatory_filter: frozenset[str] = frozenset()
    properties: dict[str, PropertyDef] = field(default_factory=dict)

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

ENTITY_SETS: dict[str, EntitySetDef] = {
    "Accounts": EntitySetDef(
        name="Accounts",
        service="crm",
        key="ID",
        type_name="Exact.Web.Api.Models.Account",
        sync_path="CRM/Accounts",
        deleted_type=2,
        mandatory_filter=_ACCOUNT_FILTER_FIELDS,
        properties=_properties("Accounts"),
    ),
}


def entity_set_for_path(service: str, name: str) -> EntitySetDef | None:
    """Look a set up by its URL segments; Exact's paths are matched without regard to case."""
    for entity_set in ENTITY_SETS.values():
        if entity_set.service.lower() == service.lower() and entity_set.name.lower() == name.lower():
            return entity_set
    return None


def sync_set_for_path(path: str) -> EntitySetDef | None:
    for entity_set in ENTITY_SETS.values():
        if entity_set.sync_path and entity_set.sync_path.lower() == path.lower():
            return entity_set
    return None
