"""A realistic, repeatable Customcrm data set for robustness tests and benchmarks.

``make_dataset(sizes, seed)`` builds every record of every type (customers, contacts, products, orders
with lines, quotes with lines, users) as plain dicts with client-chosen ids, so the same seed always
gives the same data; ``load_dataset`` puts it into a Customcrm mock through its admin plane, and
``seed_exact_users`` gives the users their Exact counterparts. ``end_state`` reads Exact back into a
comparable form keyed by natural keys, so two runs can be compared whatever ids Exact assigned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from faker import Faker

__all__ = ["Sizes", "edit_one_record_each_side", "end_state", "make_dataset"]


@dataclass(frozen=True)
class Sizes:
    customers: int = 10
    contacts: int = 20
    products: int = 5
    orders: int = 5
    order_lines: int = 3
    quotes: int = 3
    quote_lines: int = 2
    users: int = 2


def make_dataset(sizes: Sizes, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    fake = Faker("nl_NL")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    customers = []
    for i in range(sizes.customers):
        record: dict[str, Any] = {"Name": fake.company()[:50], "City": fake.city(), "Country": "NL",
                                  "Phone": fake.phone_number()}
        if i % 3 != 2:  # a third of the customers have no merge key at all
            record["Email"] = f"info{i}.{seed}@{fake.domain_name()}"
        if i % 4 == 0:
            record["OrganisationNumber"] = f"{10_000_000 + i}"
        customers.append(record)
    users = [{"FullName": fake.name(), "Email": f"user{i}.{seed}@example.com"} for i in range(sizes.users)]
    products = [{"Code": f"P{seed}-{i:05d}", "Name": fake.word().capitalize() + f" {i}", "Unit": "pc",
                 "Price": round(rng.uniform(1, 500), 2)} for i in range(sizes.products)]
    return {"customers": customers, "users": users, "products": products, "contacts": [
        {"_customer": rng.randrange(sizes.customers), "FirstName": fake.first_name(), "LastName": fake.last_name(),
         "Email": f"p{i}.{seed}@example.com" if i % 2 == 0 else None, "Phone": fake.phone_number()}
        for i in range(sizes.contacts if sizes.customers else 0)],
        "orders": [{"OrderNumber": f"SO{seed}-{i:06d}", "_customer": rng.randrange(sizes.customers),
                    "_owner": rng.randrange(sizes.users) if sizes.users else None,
                    "OrderDate": fake.date_between("-1y", "today").isoformat(), "Currency": "EUR",
                    "Description": fake.sentence()[:60],
                    "_lines": [{"_product": rng.randrange(sizes.products), "Quantity": float(rng.randint(1, 20)),
                                "UnitPrice": round(rng.uniform(1, 100), 2)} for _ in range(sizes.order_lines)]}
                   for i in range(sizes.orders if sizes.customers and sizes.products else 0)],
        "quotes": [{"QuoteNumber": f"Q{seed}-{i:06d}", "_customer": rng.randrange(sizes.customers),
                    "ValidUntil": fake.date_between("today", "+60d").isoformat(),
                    "_lines": [{"_product": rng.randrange(sizes.products), "Quantity": float(rng.randint(1, 5)),
                                "UnitPrice": round(rng.uniform(1, 100), 2)} for _ in range(sizes.quote_lines)]}
                   for i in range(sizes.quotes if sizes.customers and sizes.products else 0)]}


def create_all(crm: Any, data: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Create the data set through the Customcrm API (``crm`` is a CustomcrmActor); returns the ids."""
    ids: dict[str, list[str]] = {}
    for kind in ("customers", "users", "products"):
        ids[kind] = [crm.create(kind, record)["Id"] for record in data[kind]]
    ids["contacts"] = [crm.create("contacts", {k: v for k, v in {**c, "CustomerId": ids["customers"][c["_customer"]]}
                                               .items() if not k.startswith("_") and v is not None})["Id"]
                       for c in data["contacts"]]
    for kind, owner_key in (("orders", "_owner"), ("quotes", None)):
        ids[kind] = []
        for record in data[kind]:
            body = {k: v for k, v in record.items() if not k.startswith("_")}
            body["CustomerId"] = ids["customers"][record["_customer"]]
            if owner_key and record.get(owner_key) is not None:
                body["OwnerId"] = ids["users"][record[owner_key]]
            body["Lines"] = [{"ProductId": ids["products"][line["_product"]], "Quantity": line["Quantity"],
                              "UnitPrice": line["UnitPrice"]} for line in record["_lines"]]
            ids[kind].append(crm.create(kind, body)["Id"])
    return ids


def end_state(exact: Any) -> dict[str, Any]:
    """Exact's records in a form two runs can be compared in (``exact`` is an ExactActor)."""
    accounts = exact.all("sync/CRM/Accounts")
    by_account = {a["ID"]: (a["Name"], a["Email"], a["ChamberOfCommerce"]) for a in accounts}
    items = {i["ID"]: i["Code"] for i in exact.all("sync/Logistics/Items")}

    def lines(sync_path: str, parent: str) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for line in exact.all(sync_path):
            out.setdefault(line[parent], []).append((items.get(line["Item"]), line["Quantity"]))
        return {k: sorted(v) for k, v in out.items()}

    order_lines = lines("sync/SalesOrder/SalesOrderLines", "OrderID")
    quote_lines = lines("sync/CRM/QuotationLines", "QuotationID")
    return {
        "accounts": sorted(map(str, by_account.values())),
        "contacts": sorted(str((c["FirstName"], c["LastName"], c["Email"], by_account.get(c["Account"])))
                           for c in exact.all("sync/CRM/Contacts")),
        "items": sorted(items.values()),
        "orders": sorted(str((o["YourRef"], by_account.get(o["OrderedBy"]), o["Salesperson"] is not None,
                              order_lines.get(o["OrderID"], [])))
                         for o in exact.all("sync/SalesOrder/SalesOrderHeaders")),
        "quotes": sorted(str((q["YourRef"], by_account.get(q["OrderAccount"]), quote_lines.get(q["QuotationID"], [])))
                         for q in exact.all("sync/CRM/QuotationHeaders")),
    }


def edit_one_record_each_side(crm: Any, exact: Any) -> None:
    """A user edits one customer in Customcrm and another one's account in Exact: the smallest change of
    both sides, after which an engine should write once to each side and never back."""
    customer = crm.all("customers")[0]
    crm.update("customers", customer["Id"], {"City": "Zierikzee"})
    account = next(a for a in exact.all("sync/CRM/Accounts") if a["Name"] != customer["Name"])
    exact.update("crm/Accounts", account["ID"], {"Phone": "+31 111 222 333"})
