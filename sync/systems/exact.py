"""What the engine knows about Exact Online that the dataflow document cannot say.

Per entity set named in the document: its URL, key, sync endpoint, deletion code, the properties a
create cannot do without (groups: at least one of each), which properties refer to other sets, its line
collection, the properties Exact refuses to change, and the merge keys Sesam Talk links on (ordered
alternatives: the first whose Customcrm values are filled is used; `merge_scope` narrows the search).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["USERS", "ExactUsers", "ENTITIES", "ExactEntity", "ExactLines", "entity_for"]


@dataclass(frozen=True)
class ExactLines:
    nav: str  # "SalesOrderLines"
    path: str  # "salesorder/SalesOrderLines"
    key: str  # "ID"
    parent_key: str  # "OrderID"
    sync_path: str
    deleted_type: int
    order_by: str = "LineNumber"
    references: tuple[tuple[str, str], ...] = (("Item", "Items"),)


@dataclass(frozen=True)
class ExactEntity:
    type_name: str
    path: str
    key: str
    sync_path: str
    deleted_type: int
    mandatory: tuple[tuple[str, ...], ...] = ()
    merge_keys: tuple[tuple[str, ...], ...] = ()
    merge_scope: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)  # property -> Exact set it points at
    immutable: tuple[str, ...] = ()
    lines: ExactLines | None = None
    modified: str = "Modified"


ENTITIES: dict[str, ExactEntity] = {
    "accounts": ExactEntity(
        type_name="Accounts", path="crm/Accounts", key="ID", sync_path="sync/CRM/Accounts", deleted_type=2,
        mandatory=(("Name",),), merge_keys=(("ChamberOfCommerce",), ("Email",)),
    ),
    "contacts": ExactEntity(
        type_name="Contacts", path="crm/Contacts", key="ID", sync_path="sync/CRM/Contacts", deleted_type=5,
        mandatory=(("Account",), ("FirstName", "LastName")), merge_keys=(("Email",),), merge_scope=("Account",),
        references={"Account": "Accounts"},
    ),
    "items": ExactEntity(
        type_name="Items", path="logistics/Items", key="ID", sync_path="sync/Logistics/Items", deleted_type=9,
        mandatory=(("Code",), ("Description",)), merge_keys=(("Code",),),
    ),
    "salesorders": ExactEntity(
        type_name="Salesorders", path="salesorder/SalesOrders", key="OrderID",
        sync_path="sync/SalesOrder/SalesOrderHeaders", deleted_type=32, mandatory=(("OrderedBy",),),
        merge_keys=(("YourRef",),), references={"OrderedBy": "Accounts", "Salesperson": "Users"},
        immutable=("OrderedBy",),
        lines=ExactLines("SalesOrderLines", "salesorder/SalesOrderLines", "ID", "OrderID",
                         "sync/SalesOrder/SalesOrderLines", 33),
    ),
    "quotations": ExactEntity(
        type_name="Quotations", path="crm/Quotations", key="QuotationID", sync_path="sync/CRM/QuotationHeaders",
        deleted_type=34, mandatory=(("OrderAccount",),), merge_keys=(("YourRef",),),
        references={"OrderAccount": "Accounts", "SalesPerson": "Users"},
        lines=ExactLines("QuotationLines", "crm/QuotationLines", "ID", "QuotationID", "sync/CRM/QuotationLines", 35),
    ),
}


@dataclass(frozen=True)
class ExactUsers:
    """The division's users (the targets of a Salesperson): read, never written (the API cannot)."""

    path: str = "users/Users"
    key: str = "UserID"
    email: str = "Email"
    name: str = "FullName"
    set_name: str = "Users"  # as the entities' `references` name it


USERS = ExactUsers()


def entity_for(type_name: str) -> ExactEntity | None:
    return ENTITIES.get(type_name.lower())
