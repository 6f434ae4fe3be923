"""The Customcrm contract's resource models: what a record may hold, with types and limits.

Customcrm is Sesam Talk's generic "custom CRM"; its contract is talkcheck's to define. Models are strict:
a number where a string belongs, an unknown field or an over-long value is refused, never coerced.
"""

from __future__ import annotations

import math
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["RESOURCES", "CustomerFields", "Resource"]


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return value  # stored as given: the contract does not normalise case


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_email)]
Money = Annotated[float, AfterValidator(_finite)]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CustomerFields(_Fields):
    """A customer: an organisation (or a private person) that buys."""

    Name: str = Field(min_length=1, max_length=100)
    OrganisationNumber: str | None = Field(default=None, max_length=20,
                                           description="Chamber of commerce / organisation number")
    VatNumber: str | None = Field(default=None, max_length=20)
    Description: str | None = Field(default=None, max_length=2000)
    Website: str | None = Field(default=None, max_length=200)
    Email: EmailAddress | None = None
    Phone: str | None = Field(default=None, max_length=40)
    Fax: str | None = Field(default=None, max_length=40)
    StreetAddress1: str | None = Field(default=None, max_length=100)
    StreetAddress2: str | None = Field(default=None, max_length=100)
    ZipCode: str | None = Field(default=None, max_length=20)
    City: str | None = Field(default=None, max_length=60)
    Country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    CreditLimit: Money | None = Field(default=None, ge=0)
    Blocked: bool = False


class Resource:
    """One collection of the API: its URL segment, its model and the fields one may filter on."""

    def __init__(self, name: str, path: str, model: type[_Fields]) -> None:
        self.name = name
        self.path = path
        self.model = model

    @property
    def fields(self) -> list[str]:
        return list(self.model.model_fields)


RESOURCES: dict[str, Resource] = {
    "customers": Resource("Customer", "customers", CustomerFields),
}
