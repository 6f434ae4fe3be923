"""What the engine knows about Customcrm that the dataflow document cannot say.

One entry per Customcrm type named in the document: its collection in the API and the kind of each
field (so values compare correctly). The document decides *which* fields are synchronized; a new table
row for a field listed here needs no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RESOURCES", "CustomcrmResource", "resource_for"]


@dataclass(frozen=True)
class CustomcrmResource:
    type_name: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> kind
    key: str = "Id"
    modified: str = "ModifiedAt"
    version: str = "Version"


_CUSTOMER_FIELDS = {
    "Name": "string", "OrganisationNumber": "string", "VatNumber": "string", "Description": "string",
    "Website": "string", "Email": "string", "Phone": "string", "Fax": "string", "StreetAddress1": "string",
    "StreetAddress2": "string", "ZipCode": "string", "City": "string", "Country": "string",
    "CreditLimit": "double", "Blocked": "bool",
}

RESOURCES: dict[str, CustomcrmResource] = {
    "customer": CustomcrmResource("Customer", "customers", _CUSTOMER_FIELDS),
}


def resource_for(type_name: str) -> CustomcrmResource | None:
    return RESOURCES.get(type_name.lower())
