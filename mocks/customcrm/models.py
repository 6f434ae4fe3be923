"""The Customcrm contract's resource models: what a record may hold, with types, limits and references.

Customcrm is Sesam Talk's generic "custom CRM"; its contract is talkcheck's to define. Models are strict:
a number where a string belongs, an unknown field or an over-long value is refused, never coerced.
Dates are ISO calendar dates (``2026-03-01``); money and quantities are JSON numbers.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "RESOURCES",
    "ContactFields",
    "CustomerFields",
    "LineFields",
    "OrderFields",
    "ProductFields",
    "QuoteFields",
    "Resource",
    "UserFields",
]


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return value  # stored as given: the contract does not normalise case


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


EmailAddress = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)]
Number = Annotated[float, AfterValidator(_finite)]
NonNegative = Annotated[float, Field(ge=0), AfterValidator(_finite)]
def _iso_date(value: object) -> object:
    if not isinstance(value, str | date):
        raise ValueError("a date is written as an ISO string, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_date), Field(strict=False, description="ISO calendar date, YYYY-MM-DD")]
RecordId = Annotated[str, Field(min_length=1, max_length=64, description="The Id of another record")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Text = Annotated[str, Field(max_length=2000)]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CustomerFields(_Fields):
    """A customer: an organisation (or a private person) that buys."""

    Name: str = Field(min_length=1, max_length=100)
    OrganisationNumber: str | None = Field(default=None, max_length=20,
                                           description="Chamber of commerce / organisation number")
    VatNumber: str | None = Field(default=None, max_length=20)
    Description: Text | None = None
    Website: str | None = Field(default=None, max_length=200)
    Email: EmailAddress | None = None
    Phone: str | None = Field(default=None, max_length=40)
    Fax: str | None = Field(default=None, max_length=40)
    StreetAddress1: str | None = Field(default=None, max_length=100)
    StreetAddress2: str | None = Field(default=None, max_length=100)
    ZipCode: str | None = Field(default=None, max_length=20)
    City: str | None = Field(default=None, max_length=60)
    Country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    CreditLimit: NonNegative | None = None
    Blocked: bool = False


class ContactFields(_Fields):
    """A person at a customer."""

    CustomerId: RecordId
    FirstName: str | None = Field(default=None, max_length=50)
    LastName: str = Field(min_length=1, max_length=50)
    Email: EmailAddress | None = None
    Phone: str | None = Field(default=None, max_length=40)
    Mobile: str | None = Field(default=None, max_length=40)
    JobTitle: str | None = Field(default=None, max_length=100)
    BirthDate: Day | None = None
    Notes: Text | None = None


class ProductFields(_Fields):
    """Something a customer can buy; optionally supplied by a customer, with a contact person there."""

    Code: str = Field(min_length=1, max_length=30, description="Unique per tenant")
    Name: str = Field(min_length=1, max_length=60)
    Description: Text | None = None
    Unit: str | None = Field(default=None, max_length=10)
    Price: NonNegative | None = None
    Barcode: str | None = Field(default=None, max_length=40)
    VatCode: str | None = Field(default=None, max_length=10)
    Notes: Text | None = None
    SupplierId: RecordId | None = Field(default=None, description="The customer that supplies the product")
    ContactFirstName: str | None = Field(default=None, max_length=50)
    ContactLastName: str | None = Field(default=None, max_length=50)
    ContactEmail: EmailAddress | None = None
    ContactPhone: str | None = Field(default=None, max_length=40)


class LineFields(_Fields):
    """A line of an order or a quote. A line keeps its Id across updates; a new line gets one."""

    Id: str | None = Field(default=None, max_length=64, description="Server-assigned; send it back to keep the line")
    ProductId: RecordId
    Quantity: Number = 1.0
    UnitPrice: NonNegative | None = None
    Discount: Number = Field(default=0.0, ge=0, le=1, description="A fraction: 0.1 is 10%")
    Description: str | None = Field(default=None, max_length=200)


class OrderFields(_Fields):
    """A sales order."""

    OrderNumber: str = Field(min_length=1, max_length=30, description="Unique per tenant")
    CustomerId: RecordId
    OwnerId: RecordId | None = Field(default=None, description="The user who owns the order")
    OrderDate: Day | None = None
    DeliveryDate: Day | None = None
    Currency: CurrencyCode | None = "EUR"
    Description: str | None = Field(default=None, max_length=200)
    Remarks: Text | None = None
    Lines: list[LineFields] = Field(default_factory=list, max_length=500)


class QuoteFields(_Fields):
    """A quote (an offer to a customer)."""

    QuoteNumber: str = Field(min_length=1, max_length=30, description="Unique per tenant")
    CustomerId: RecordId
    OwnerId: RecordId | None = None
    QuoteDate: Day | None = None
    ValidUntil: Day | None = None
    DeliveryDate: Day | None = None
    Currency: CurrencyCode | None = "EUR"
    Description: str | None = Field(default=None, max_length=200)
    Remarks: Text | None = None
    Lines: list[LineFields] = Field(default_factory=list, max_length=500)


class UserFields(_Fields):
    """A user of the CRM; owns orders and quotes."""

    FullName: str = Field(min_length=1, max_length=100)
    Email: EmailAddress
    Active: bool = True


class Resource:
    """One collection of the API: its URL segment, model, references and unique fields."""

    def __init__(self, name: str, path: str, model: type[_Fields], *, references: dict[str, str] | None = None,
                 unique: tuple[str, ...] = (), has_lines: bool = False) -> None:
        self.name = name
        self.path = path
        self.model = model
        self.references = references or {}
        self.unique = unique
        self.has_lines = has_lines

    @property
    def fields(self) -> list[str]:
        return list(self.model.model_fields)

    @property
    def filterable(self) -> list[str]:
        return [name for name in self.fields if name != "Lines"]


RESOURCES: dict[str, Resource] = {
    "customers": Resource("Customer", "customers", CustomerFields),
    "contacts": Resource("Contact", "contacts", ContactFields, references={"CustomerId": "customers"}),
    "products": Resource("Product", "products", ProductFields, references={"SupplierId": "customers"},
                         unique=("Code",)),
    "orders": Resource("Order", "orders", OrderFields, unique=("OrderNumber",), has_lines=True,
                       references={"CustomerId": "customers", "OwnerId": "users", "Lines.ProductId": "products"}),
    "quotes": Resource("Quote", "quotes", QuoteFields, unique=("QuoteNumber",), has_lines=True,
                       references={"CustomerId": "customers", "OwnerId": "users", "Lines.ProductId": "products"}),
    "users": Resource("User", "users", UserFields, unique=("Email",)),
}
