"""What the engine knows about Customcrm that the dataflow document cannot say.

One entry per Customcrm type named in the document: its collection in the API, the kind of each field
(so values compare correctly), which fields refer to records of another type, its line collection, and
when a record has a counterpart at all. The document decides *which* fields are synchronized; a new table
row for a field listed here needs no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RESOURCES", "CustomcrmResource", "resource_for"]


@dataclass(frozen=True)
class CustomcrmResource:
    type_name: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> kind; "ref:<Type>" refers to another record
    line_fields: dict[str, str] = field(default_factory=dict)  # the fields of one line, for "Lines.<name>" rows
    # Per Exact target type: groups of fields of which at least one must be filled for a counterpart to exist
    # (a product has an Exact contact person only when it names a supplier and a contact).
    counterpart_when: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    key: str = "Id"
    modified: str = "ModifiedAt"
    version: str = "Version"
    lines: str = "Lines"  # the field that holds a record's lines
    line_key: str = "Id"  # a line's own id
    # Line fields Customcrm fills itself when a line leaves them out: an empty value is left out, not sent.
    line_defaults: tuple[str, ...] = ()
    # The field a record of this type is matched to its Exact counterpart by, when it is not created in Exact
    # but found there (a user, by e-mail).
    match_field: str = ""

    def kind(self, name: str) -> str | None:
        if name.startswith("Lines."):
            return self.line_fields.get(name.split(".", 1)[1])
        return self.fields.get(name)


_LINE = {"ProductId": "ref:Product", "Quantity": "double", "UnitPrice": "double", "Discount": "double",
         "Description": "string"}
_LINE_DEFAULTS = ("Quantity", "Discount")  # Customcrm makes a left-out quantity 1 and discount 0

RESOURCES: dict[str, CustomcrmResource] = {
    "customer": CustomcrmResource("Customer", "customers", {
        "Name": "string", "OrganisationNumber": "string", "VatNumber": "string", "Description": "string",
        "Website": "string", "Email": "string", "Phone": "string", "Fax": "string", "StreetAddress1": "string",
        "StreetAddress2": "string", "ZipCode": "string", "City": "string", "Country": "string",
        "CreditLimit": "double", "Blocked": "bool"}),
    "contact": CustomcrmResource("Contact", "contacts", {
        "CustomerId": "ref:Customer", "FirstName": "string", "LastName": "string", "Email": "string",
        "Phone": "string", "Mobile": "string", "JobTitle": "string", "BirthDate": "date", "Notes": "string"}),
    "product": CustomcrmResource("Product", "products", {
        "Code": "string", "Name": "string", "Description": "string", "Unit": "string", "Price": "double",
        "Barcode": "string", "VatCode": "string", "Notes": "string", "SupplierId": "ref:Customer",
        "ContactFirstName": "string", "ContactLastName": "string", "ContactEmail": "string",
        "ContactPhone": "string"},
        counterpart_when={"contacts": (("SupplierId",), ("ContactFirstName", "ContactLastName"))}),
    "order": CustomcrmResource("Order", "orders", {
        "OrderNumber": "string", "CustomerId": "ref:Customer", "OwnerId": "ref:User", "OrderDate": "date",
        "DeliveryDate": "date", "Currency": "string", "Description": "string", "Remarks": "string"},
        line_fields=_LINE, line_defaults=_LINE_DEFAULTS),
    "quote": CustomcrmResource("Quote", "quotes", {
        "QuoteNumber": "string", "CustomerId": "ref:Customer", "OwnerId": "ref:User", "QuoteDate": "date",
        "ValidUntil": "date", "DeliveryDate": "date", "Currency": "string", "Description": "string",
        "Remarks": "string"},
        line_fields=_LINE, line_defaults=_LINE_DEFAULTS),
    "user": CustomcrmResource("User", "users", {"FullName": "string", "Email": "string", "Active": "bool"},
                              match_field="Email"),
}


def resource_for(type_name: str) -> CustomcrmResource | None:
    return RESOURCES.get(type_name.lower())
