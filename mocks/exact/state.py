"""Everything the Exact mock remembers, and the rules that change it. Nothing here knows about HTTP.

One ``ExactState`` holds the apps (OAuth clients), users, divisions and their records. Every insert and
update takes the division's next row version (``Timestamp``), like the SQL rowversion behind Exact's
sync API; deletions go to a deletion log that ``sync/Deleted`` reads.
"""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from bisect import bisect_right
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mocks.common.clock import MockClock
from mocks.common.faults import Faults
from mocks.common.journal import Journal
from mocks.exact.edm import EdmError, from_wire, to_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import BadRequest, ExactError, Forbidden, MethodNotAllowed, NotFound, Refused, Unauthorized
from mocks.exact.limits import RateLimits
from mocks.exact.timestamps import TimestampIndex
from mocks.exact.views import derived_names, derived_values, sources
from mocks.exact.wire import RecordWriter

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_DIVISION",
    "DEFAULT_REDIRECT_URI",
    "ExactState",
]

DEFAULT_CLIENT_ID = "b81a5f4c-7d2e-4c7a-9c55-2f1d3e4a6b70"
DEFAULT_CLIENT_SECRET = "talkcheck-local-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"
DEFAULT_DIVISION = 499156
DEFAULT_USER_EMAIL = "qa.lead@example.com"

ACCESS_TOKEN_SECONDS = 600
EARLY_REFRESH_SECONDS = 570
CODE_SECONDS = 180
REFRESH_TOKEN_DAYS = 30
FIRST_ROW_VERSION = 4_133_185_000


@dataclass
class User:
    user_id: str
    email: str
    full_name: str
    divisions: list[int]
    current_division: int


@dataclass
class Client:
    client_id: str
    secret: str
    redirect_uris: list[str]


@dataclass
class _Code:
    client_id: str
    user_id: str
    redirect_uri: str
    expires_at: datetime


@dataclass
class _Access:
    user_id: str
    client_id: str
    expires_at: datetime


@dataclass
class _Refresh:
    user_id: str
    client_id: str
    access_issued_at: datetime
    expires_at: datetime


@dataclass
class Division:
    number: int
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    row_version: int = FIRST_ROW_VERSION
    deleted: list[dict[str, Any]] = field(default_factory=list)
    highest: dict[str, int] = field(default_factory=dict)  # the highest number used, per numbered field
    lines_by_header: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # line set -> header -> lines
    item_codes: dict[str, str] = field(default_factory=dict)  # Code -> Items ID (codes are unique)
    stamped: dict[str, TimestampIndex] = field(default_factory=dict)  # set -> its records by Timestamp

    def timestamps(self, set_name: str) -> TimestampIndex:
        return self.stamped.setdefault(set_name, TimestampIndex())

    def header_lines(self, line_set: str, header_key: str) -> set[str]:
        return self.lines_by_header.setdefault(line_set, {}).setdefault(header_key, set())

    def next_version(self) -> int:
        self.row_version += 1
        return self.row_version


class ExactState:
    """The state of one mock server: apps, users, tokens and divisions."""

    def __init__(self, clock: MockClock | None = None) -> None:
        self.clock = clock or MockClock()
        self.journal = Journal()
        self.faults = Faults()
        self.rate_limits = RateLimits()
        self.lock = threading.RLock()
        self._random = random.Random()
        self.reset()

    # ------------------------------------------------------------------ admin plane

    def reset(self) -> None:
        with self.lock:
            self.clients: dict[str, Client] = {
                DEFAULT_CLIENT_ID: Client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, [DEFAULT_REDIRECT_URI])
            }
            user = User(self.new_id(), DEFAULT_USER_EMAIL, "QA Lead", [DEFAULT_DIVISION], DEFAULT_DIVISION)
            self.users: dict[str, User] = {user.user_id: user}
            self.codes: dict[str, _Code] = {}
            self.access_tokens: dict[str, _Access] = {}
            self.refresh_tokens: dict[str, _Refresh] = {}
            self.divisions: dict[int, Division] = {DEFAULT_DIVISION: Division(DEFAULT_DIVISION)}
            self.writer = RecordWriter()  # records' own values as JSON, per version
            self.journal.clear()
            self.faults.clear()
            self.rate_limits.clear()

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Seed randomness (``{"seed": 7}``), register apps, or insert records per set."""
        with self.lock:
            if "seed" in payload:
                self._random.seed(int(payload["seed"]))
            if "rate_limits" in payload:
                self.rate_limits.configure(**payload["rate_limits"])
            for client in payload.get("clients", []):
                self.clients[str(client["client_id"])] = Client(
                    str(client["client_id"]), str(client["secret"]), list(client.get("redirect_uris", []))
                )
            for raw in payload.get("users", []):
                new_user = User(self.new_id(), str(raw["Email"]), str(raw.get("FullName") or raw["Email"]),
                                [DEFAULT_DIVISION], DEFAULT_DIVISION)
                self.users[new_user.user_id] = new_user
            created: dict[str, list[str]] = {}
            division = int(payload.get("division", DEFAULT_DIVISION))
            for set_name, rows in payload.get("records", {}).items():
                entity_set = ENTITY_SETS[set_name]
                for row in rows:
                    record = self.create(division, entity_set, dict(row), self.default_user())
                    created.setdefault(set_name, []).append(record[entity_set.key])
            return {"created": created, "users": [u.user_id for u in self.users.values()]}

    def dump(self) -> dict[str, Any]:
        with self.lock:
            divisions: dict[str, Any] = {}
            for number, division in self.divisions.items():
                divisions[str(number)] = {
                    "row_version": str(division.row_version),
                    "records": {
                        name: [self.public(ENTITY_SETS[name], r) for r in rows.values()]
                        for name, rows in division.records.items()
                    },
                    "deleted": division.deleted,
                }
            return {
                "clock": self.clock.describe(),
                "users": [u.__dict__ for u in self.users.values()],
                "divisions": divisions,
            }

    # ------------------------------------------------------------------ ids and users

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def default_user(self) -> User:
        return next(iter(self.users.values()))

    def division(self, number: int) -> Division:
        found = self.divisions.get(number)
        if found is None:
            raise Forbidden("Forbidden: no access to this division")
        return found

    # ------------------------------------------------------------------ OAuth

    def authorize(self, client_id: str, redirect_uri: str) -> str:
        with self.lock:
            client = self.clients.get(client_id)
            if client is None or redirect_uri not in client.redirect_uris:
                raise BadRequest("invalid_request")
            code = "XTzM!" + secrets.token_urlsafe(24)
            self.codes[code] = _Code(client_id, self.default_user().user_id, redirect_uri,
                                     self.clock.now() + timedelta(seconds=CODE_SECONDS))
            return code

    def _check_client(self, client_id: str, secret: str) -> None:
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            raise _TokenError(400, "invalid_request", None)

    def exchange_code(self, client_id: str, secret: str, code: str, redirect_uri: str) -> dict[str, str]:
        with self.lock:
            self._check_client(client_id, secret)
            grant = self.codes.pop(code, None)
            if grant is None or grant.client_id != client_id or grant.expires_at < self.clock.now():
                raise _TokenError(400, "invalid_grant",
                                  "Token is not allowed, because of invalid or empty chainId")
            if grant.redirect_uri != redirect_uri:
                raise _TokenError(400, "invalid_request", "redirect_uri does not match")
            return self._issue(grant.user_id, client_id)

    def refresh(self, client_id: str, secret: str, refresh_token: str) -> dict[str, str]:
        with self.lock:
            self._check_client(client_id, secret)
            now = self.clock.now()
            grant = self.refresh_tokens.get(refresh_token)
            if grant is None or grant.client_id != client_id:
                raise _TokenError(400, "invalid_grant",
                                  "Token is not allowed, because of invalid or empty chainId")
            if grant.expires_at < now:
                self.refresh_tokens.pop(refresh_token, None)
                raise _TokenError(
                    400, "invalid_request",
                    f"The refresh token expired at {grant.expires_at:%m/%d/%Y %I:%M:%S %p} and it is now "
                    f"{now:%m/%d/%Y %I:%M:%S %p}.",
                )
            if now - grant.access_issued_at < timedelta(seconds=EARLY_REFRESH_SECONDS):
                raise _TokenError(401, "invalid_request", "Access token not expired")
            del self.refresh_tokens[refresh_token]
            return self._issue(grant.user_id, client_id)

    def _issue(self, user_id: str, client_id: str) -> dict[str, str]:
        now = self.clock.now()
        access = "AAEAA" + secrets.token_urlsafe(32)
        refresh = "Gcp7!" + secrets.token_urlsafe(32)
        self.access_tokens[access] = _Access(user_id, client_id, now + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        self.refresh_tokens[refresh] = _Refresh(user_id, client_id, now, now + timedelta(days=REFRESH_TOKEN_DAYS))
        return {"access_token": access, "token_type": "bearer", "expires_in": str(ACCESS_TOKEN_SECONDS),
                "refresh_token": refresh}

    def app_for_token(self, token: str) -> str | None:
        """The client id behind a valid access token, for rate limiting per app."""
        with self.lock:
            grant = self.access_tokens.get(token)
            return grant.client_id if grant is not None and grant.expires_at > self.clock.now() else None

    def user_for_token(self, token: str) -> User:
        with self.lock:
            grant = self.access_tokens.get(token)
            if grant is None:
                raise Unauthorized("Unauthorized", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if grant.expires_at <= self.clock.now():
                raise Unauthorized("Unauthorized",
                    {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="access token expired"'},
                )
            return self.users[grant.user_id]

    # ------------------------------------------------------------------ records

    def _rows(self, division: int, entity_set: EntitySetDef) -> dict[str, dict[str, Any]]:
        return self.division(division).records.setdefault(entity_set.name, {})

    def _set(self, name: str) -> EntitySetDef:
        return ENTITY_SETS[name]

    def _decode(self, entity_set: EntitySetDef, body: dict[str, Any], *, allow_nav: bool = False) -> dict[str, Any]:
        """Read a request body: unknown names are refused, read-only ones ignored, types checked."""
        values: dict[str, Any] = {}
        for name, raw in body.items():
            prop = entity_set.prop(name)
            if prop is None:
                raise BadRequest(f"Error processing request stream. The property name '{name}' specified for type "
                    f"'{entity_set.type_name}' is not valid.",
                )
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
                raise BadRequest(f"Error processing request stream. The property '{name}' has an invalid value: {exc}."
                ) from exc
            if isinstance(value, str) and prop.max_length is not None and len(value) > prop.max_length:
                raise Refused(f"{name}: the value is too long (maximum {prop.max_length} characters)")
            values[name] = value
        return values

    def _blank(self, entity_set: EntitySetDef) -> dict[str, Any]:
        return {
            name: (False if prop.edm_type == "Edm.Boolean" else None)
            for name, prop in entity_set.properties.items()
            if not prop.is_collection
        }

    def _stamp(self, division: int, entity_set: EntitySetDef, record: dict[str, Any], user: User,
               created: bool) -> None:
        now = self.clock.now()
        if created:
            record["Created"] = now
            record["Creator"] = user.user_id
            record["CreatorFullName"] = user.full_name
        record["Modified"] = now
        record["Modifier"] = user.user_id
        record["ModifierFullName"] = user.full_name
        record["Division"] = division
        data = self.division(division)
        record["_timestamp"] = data.next_version()
        data.timestamps(entity_set.name).note(str(record[entity_set.key]), record["_timestamp"])

    def _exists(self, division: int, target: str, key: Any) -> bool:
        if target == "users":
            return str(key) in self.users
        return str(key).lower() in self._rows(division, self._set(target))

    def _check_references(self, division: int, entity_set: EntitySetDef, values: dict[str, Any]) -> None:
        for name, target in entity_set.references.items():
            value = values.get(name)
            if value is not None and not self._exists(division, target, value):
                what = "user" if target == "users" else target.rstrip("s").lower()
                raise Refused(f"{name}: the {what} {value} does not exist")

    def _require(self, entity_set: EntitySetDef, record: dict[str, Any]) -> None:
        def empty(name: str) -> bool:
            value = record.get(name)
            return value is None or (isinstance(value, str) and not value.strip())

        if entity_set.name == "Contacts":
            # The docs flag both names mandatory, but their text asks for at least one of them.
            if empty("Account"):
                raise Refused("Account: Mandatory")
            if empty("FirstName") and empty("LastName"):
                raise Refused("FirstName or LastName: Mandatory")
            return
        parent_key = None
        if entity_set.parent is not None:
            header_lines = self._set(entity_set.parent).lines
            parent_key = header_lines.parent_key if header_lines else None
        for prop in entity_set.properties.values():
            # A line's header key is set by the header when lines are posted inline; create() checks it otherwise.
            if prop.mandatory and not prop.is_collection and prop.name != parent_key and empty(prop.name):
                raise Refused(f"{prop.name}: Mandatory")

    def _next_number(self, division: int, entity_set: EntitySetDef, field_name: str) -> int:
        """The highest number used so far plus one (Exact's numbering: numbers are not reused)."""
        counter = f"{entity_set.name}.{field_name}"
        highest = self.division(division).highest
        if counter not in highest:
            numbers = [int(str(r[field_name]).strip()) for r in self._rows(division, entity_set).values()
                       if str(r.get(field_name) or "").strip().isdigit()]
            highest[counter] = max(numbers, default=0)
        highest[counter] += 1
        return highest[counter]

    def _note_number(self, division: int, entity_set: EntitySetDef, field_name: str, value: Any) -> None:
        counter = f"{entity_set.name}.{field_name}"
        highest = self.division(division).highest
        if str(value).strip().isdigit() and counter in highest:
            highest[counter] = max(highest[counter], int(str(value).strip()))

    def _derive(self, division: int, entity_set: EntitySetDef, record: dict[str, Any], created: bool) -> None:
        """Values Exact computes on write: codes, numbers, names, statuses."""
        name = entity_set.name
        if name == "Accounts":
            code = record.get("Code")
            if code is None or not str(code).strip():
                code = str(self._next_number(division, entity_set, "Code"))
            else:
                self._note_number(division, entity_set, "Code", code)
            code = str(code).strip()
            if len(code) > 18:
                raise Refused("Code: the value is too long (maximum 18 characters)")
            record["Code"] = code.rjust(18)
            record["Type"] = "A"
        elif name == "Contacts":
            parts = [record.get("FirstName"), record.get("MiddleName"), record.get("LastName")]
            record["FullName"] = " ".join(p for p in parts if p) or None
        elif name == "Items":
            code = str(record.get("Code") or "")
            owner = self.division(division).item_codes.get(code)
            if owner is not None and owner != record.get("ID"):
                raise Refused(f"Code: Data already exists ({code})")
            if created and record.get("IsSalesItem") is False and "IsSalesItem" not in record.get("_given", ()):
                record["IsSalesItem"] = True
        elif name == "SalesOrders":
            if created:
                if record.get("OrderNumber") is None:
                    record["OrderNumber"] = self._next_number(division, entity_set, "OrderNumber")
                record["DeliverTo"] = record.get("DeliverTo") or record.get("OrderedBy")
                record["InvoiceTo"] = record.get("InvoiceTo") or record.get("OrderedBy")
                record["Status"] = 12
                record["StatusDescription"] = "Open"
                record["OrderDate"] = record.get("OrderDate") or self.clock.now()
        elif name == "Quotations":
            if created:
                if record.get("QuotationNumber") is None:
                    record["QuotationNumber"] = self._next_number(division, entity_set, "QuotationNumber")
                record["VersionNumber"] = 1
                record["Status"] = 20
                record["StatusDescription"] = "Draft"
                record["QuotationDate"] = record.get("QuotationDate") or self.clock.now()
        elif name in ("SalesOrderLines", "QuotationLines"):
            quantity = float(record.get("Quantity") or 0)
            discount = float(record.get("Discount") or 0)
            unit = record.get("UnitPrice")
            if unit is None:
                item = self._rows(division, self._set("Items")).get(str(record.get("Item")).lower(), {})
                unit = item.get("StandardSalesPrice") or 0.0
                record["UnitPrice"] = unit
            if record.get("NetPrice") is None or "NetPrice" not in record.get("_given", ()):
                record["NetPrice"] = round(float(unit) * (1 - discount), 6)
            if name == "QuotationLines" or "AmountFC" not in record.get("_given", ()):
                record["AmountFC"] = round(quantity * float(record["NetPrice"]), 2)
            record["AmountDC"] = record["AmountFC"]

    def _put(self, division: int, entity_set: EntitySetDef, record: dict[str, Any]) -> None:
        """Store a record and keep the indexes (lines per header, item codes) in step."""
        data = self.division(division)
        key = str(record[entity_set.key])
        self._rows(division, entity_set)[key] = record
        if entity_set.parent is not None:
            header_lines = self._set(entity_set.parent).lines
            assert header_lines is not None
            data.header_lines(entity_set.name, str(record.get(header_lines.parent_key))).add(key)
        if entity_set.name == "Items" and record.get("Code"):
            data.item_codes[str(record["Code"])] = key

    def _remove(self, division: int, entity_set: EntitySetDef, key: str, *, keep_row: bool = False) -> None:
        data = self.division(division)
        rows = self._rows(division, entity_set)
        record = rows.get(key)
        if record is None:
            return
        if not keep_row:
            del rows[key]
            data.timestamps(entity_set.name).forget(key)
            self.writer.forget(division, entity_set.name, key)
        if entity_set.parent is not None:
            header_lines = self._set(entity_set.parent).lines
            assert header_lines is not None
            data.header_lines(entity_set.name, str(record.get(header_lines.parent_key))).discard(key)
        if entity_set.name == "Items" and data.item_codes.get(str(record.get("Code"))) == key:
            del data.item_codes[str(record.get("Code"))]

    def _refresh_header(self, division: int, header_set: EntitySetDef, key: str, user: User) -> None:
        """A line changed: the header's amounts change, and so do its Modified and Timestamp."""
        assert header_set.lines is not None
        header = self._rows(division, header_set).get(key)
        if header is None:
            return
        rows = self._rows(division, self._set(header_set.lines.set_name))
        lines = [rows[k] for k in self.division(division).header_lines(header_set.lines.set_name, key) if k in rows]
        total = round(sum(float(r.get("AmountFC") or 0) for r in lines), 2)
        header["AmountFC"] = header["AmountDC"] = total
        self._stamp(division, header_set, header, user, created=False)

    def _prepare(self, division: int, entity_set: EntitySetDef, body: dict[str, Any]) -> dict[str, Any]:
        values = self._decode(entity_set, body, allow_nav=True)
        record = self._blank(entity_set)
        record.update(values)
        record["_given"] = tuple(values)
        self._require(entity_set, record)
        self._check_references(division, entity_set, values)
        return record

    def create(self, division: int, entity_set: EntitySetDef, body: dict[str, Any], user: User) -> dict[str, Any]:
        """Create a record (and its inline lines): everything is validated before anything is stored."""
        with self.lock:
            if entity_set.read_only:
                raise MethodNotAllowed("Method not allowed")
            record = self._prepare(division, entity_set, body)
            line_records: list[dict[str, Any]] = []
            if entity_set.lines is not None:
                raw_lines = body.get(entity_set.lines.nav)
                if raw_lines is None or raw_lines == []:
                    raise Refused(f"{entity_set.lines.nav}: Mandatory")
                if not isinstance(raw_lines, list) or not all(isinstance(x, dict) for x in raw_lines):
                    raise BadRequest(f"Error processing request stream. {entity_set.lines.nav} must be an array "
                                          "of objects.")
                line_set = self._set(entity_set.lines.set_name)
                for raw in raw_lines:
                    line_records.append(self._prepare(division, line_set, raw))
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                parent_key = record.get(header_set.lines.parent_key)
                if parent_key is None:
                    raise Refused(f"{header_set.lines.parent_key}: Mandatory")
            record[entity_set.key] = self.new_id()
            self._derive(division, entity_set, record, created=True)
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                for number, line in enumerate(line_records, start=1):
                    line[entity_set.lines.parent_key] = record[entity_set.key]
                    line["LineNumber"] = number
                    line[line_set.key] = self.new_id()
                    self._copy_header_fields(entity_set, record, line)
                    self._derive(division, line_set, line, created=True)
            self._stamp(division, entity_set, record, user, created=True)
            self._put(division, entity_set, record)
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                for line in line_records:
                    self._stamp(division, line_set, line, user, created=True)
                    self._put(division, line_set, line)
                self._refresh_header(division, entity_set, record[entity_set.key], user)
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                header = self._rows(division, header_set)[str(record[header_set.lines.parent_key]).lower()]
                rows = self._rows(division, entity_set)
                keys = self.division(division).header_lines(entity_set.name, header[header_set.key])
                siblings = [rows[k] for k in keys if k in rows and rows[k] is not record]
                record["LineNumber"] = max((int(r.get("LineNumber") or 0) for r in siblings), default=0) + 1
                self._copy_header_fields(header_set, header, record)
                self._refresh_header(division, header_set, header[header_set.key], user)
            return record

    @staticmethod
    def _copy_header_fields(header_set: EntitySetDef, header: dict[str, Any], line: dict[str, Any]) -> None:
        if header_set.name == "SalesOrders":
            line["OrderNumber"] = header.get("OrderNumber")
        elif header_set.name == "Quotations":
            line["QuotationNumber"] = header.get("QuotationNumber")
            line["VersionNumber"] = header.get("VersionNumber")

    def get(self, division: int, entity_set: EntitySetDef, key: str) -> dict[str, Any]:
        with self.lock:
            if entity_set.name == "Users":
                user = self.users.get(key.lower())
                if user is None:
                    raise NotFound("Not found")
                return self.user_record(user)
            record = self._rows(division, entity_set).get(key.lower())
            if record is None:
                raise NotFound("Not found")
            return record

    def update(self, division: int, entity_set: EntitySetDef, key: str, body: dict[str, Any], user: User) -> None:
        """Partial update: only the properties in the body change (reference §2.8)."""
        with self.lock:
            if entity_set.read_only:
                raise MethodNotAllowed("Method not allowed")
            record = self.get(division, entity_set, key)
            values = self._decode(entity_set, body)
            for name in entity_set.immutable:
                if name in values and values[name] != record.get(name):
                    raise Refused(f"{name}: For an existing record this value can not be changed")
            self._check_references(division, entity_set, values)
            candidate = dict(record)
            candidate.update(values)
            candidate["_given"] = tuple(set(record.get("_given", ())) | set(values))
            self._require(entity_set, candidate)
            self._derive(division, entity_set, candidate, created=False)
            self._stamp(division, entity_set, candidate, user, created=False)
            self._remove(division, entity_set, str(record[entity_set.key]), keep_row=True)
            record.clear()
            record.update(candidate)
            self._put(division, entity_set, record)
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                self._refresh_header(division, header_set, str(record[header_set.lines.parent_key]), user)

    def _log_delete(self, division: int, entity_set: EntitySetDef, key: str, user: User) -> None:
        if entity_set.deleted_type is not None:
            self.division(division).deleted.append(
                {
                    "_timestamp": self.division(division).next_version(),
                    "ID": self.new_id(),
                    "EntityKey": key,
                    "EntityType": entity_set.deleted_type,
                    "DeletedBy": user.user_id,
                    "DeletedDate": self.clock.now(),
                    "Division": division,
                }
            )

    def _in_use(self, division: int, entity_set: EntitySetDef, key: str) -> str | None:
        for other in ENTITY_SETS.values():
            if other.name == entity_set.parent:
                continue
            for prop, target in other.references.items():
                if target != entity_set.name or (entity_set.lines and prop == entity_set.lines.parent_key):
                    continue
                if any(str(r.get(prop) or "").lower() == key for r in self._rows(division, other).values()):
                    return f"{other.name}.{prop}"
        return None

    def delete(self, division: int, entity_set: EntitySetDef, key: str, user: User) -> None:
        with self.lock:
            if entity_set.read_only:
                raise MethodNotAllowed("Method not allowed")
            record = self.get(division, entity_set, key)
            record_key = str(record[entity_set.key])
            used_by = self._in_use(division, entity_set, record_key)
            if used_by is not None:
                raise Refused(f"This record is in use ({used_by}) and cannot be deleted")
            self._remove(division, entity_set, record_key)
            self._log_delete(division, entity_set, record_key, user)
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                lines = self._rows(division, line_set)
                for line_key in [k for k, r in lines.items() if r.get(entity_set.lines.parent_key) == record_key]:
                    self._remove(division, line_set, line_key)
                    self._log_delete(division, line_set, line_key, user)
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                self._refresh_header(division, header_set, str(record[header_set.lines.parent_key]), user)

    def rows(self, division: int, entity_set: EntitySetDef) -> list[dict[str, Any]]:
        with self.lock:
            if entity_set.name == "Users":
                return [self.user_record(u) for u in self.users.values()]
            return list(self._rows(division, entity_set).values())

    def rows_after(self, division: int, entity_set: EntitySetDef, after: int) -> list[dict[str, Any]]:
        """The records of a set changed after a Timestamp, in Timestamp order (the sync API's read), from
        the index rather than a scan of every row."""
        with self.lock:
            rows = self._rows(division, entity_set)
            return [rows[key] for key in self.division(division).timestamps(entity_set.name).after(after)]

    def deleted_after(self, division: int, after: int) -> list[dict[str, Any]]:
        """The deletions logged after a Timestamp (the log is in Timestamp order)."""
        with self.lock:
            log = self.division(division).deleted
            return log[bisect_right(log, after, key=lambda entry: int(entry["_timestamp"])):]

    def lines_of(self, division: int, entity_set: EntitySetDef, key: str) -> list[dict[str, Any]]:
        assert entity_set.lines is not None
        with self.lock:
            line_set = self._set(entity_set.lines.set_name)
            rows = self._rows(division, line_set)
            keys = self.division(division).header_lines(line_set.name, key)
            return sorted((rows[k] for k in keys if k in rows), key=lambda r: int(r.get("LineNumber") or 0))

    def deleted(self, division: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.division(division).deleted)

    def user_record(self, user: User) -> dict[str, Any]:
        first, _, last = user.full_name.partition(" ")
        return {"UserID": user.user_id, "UserName": user.email, "FullName": user.full_name, "FirstName": first,
                "LastName": last or None, "Email": user.email, "StartDivision": user.current_division,
                "HasTwoStepVerification": False, "HasRegisteredForTwoStepVerification": False}

    def view(self, division: int, entity_set: EntitySetDef, record: dict[str, Any],
             fields: frozenset[str] | None = None) -> Mapping[str, Any]:
        """A record as GET shows it, with the values Exact derives from related records at read time (read
        only: the derived values over the stored ones, nothing copied). With `fields`, only what those need:
        a filter that names no derived value is answered from the stored record."""
        if fields is not None and not fields & derived_names(entity_set.name):
            return record
        derived = self.derived(division, entity_set, record)
        return ChainMap(derived, record) if derived else record

    def wire(self, division: int, entity_set: EntitySetDef, record: dict[str, Any],
             wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """A record's values as the JSON of a GET writes them (a new dict the caller may change), all of them
        or the `wanted` ones: its own values as kept by the writer, with the derived ones worked out now."""
        own = self.writer.own(division, entity_set, record)
        out = dict(own) if wanted is None else {name: own[name] for name in wanted if name in own}
        out.update(self.derived_wire(division, entity_set, record, wanted))
        return out

    def derived_signature(self, division: int, entity_set: EntitySetDef, record: dict[str, Any],
                          wanted: frozenset[str] | None) -> tuple[Any, ...]:
        """What the derived values of `record` (the `wanted` ones) depend on now: each related record's
        Timestamp, each related user's name. A kept copy of the written record is good while it is equal."""
        out: list[Any] = []
        for target, key in sources(entity_set, record, wanted):
            if target == "users":
                user = self.users.get(key)
                out.append(user.full_name if user is not None else None)
            else:
                out.append((self._rows(division, self._set(target)).get(key) or {}).get("_timestamp"))
        return tuple(out)

    def derived_wire(self, division: int, entity_set: EntitySetDef, record: dict[str, Any],
                     wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """The properties Exact derives at read time (the `wanted` ones), as JSON values: worked out from
        the related records now, or the stored value where there is nothing to derive from."""
        names = derived_names(entity_set.name)
        if wanted is not None:
            names = names & wanted
        if not names:
            return {}
        derived = self.derived(division, entity_set, record)
        out: dict[str, Any] = {}
        for name in sorted(names):
            prop = entity_set.properties.get(name)
            if prop is not None and not prop.is_collection:
                out[name] = to_wire(derived[name] if name in derived else record.get(name), prop.edm_type)
        return out

    def derived(self, division: int, entity_set: EntitySetDef, record: Mapping[str, Any]) -> dict[str, Any]:
        """The values Exact derives from related records at read time (`views`)."""

        def lookup(target: str, key: str) -> Mapping[str, Any]:
            if target == "users":
                user = self.users.get(key)
                return {"FullName": user.full_name} if user is not None else {}
            return self._rows(division, self._set(target)).get(key) or {}

        return derived_values(entity_set, record, lookup)

    @staticmethod
    def public(entity_set: EntitySetDef, record: dict[str, Any]) -> dict[str, Any]:
        return {
            name: to_wire(record.get(name), prop.edm_type)
            for name, prop in entity_set.properties.items()
            if not prop.is_collection
        }


class _TokenError(ExactError):
    """An OAuth token-endpoint error: ``{"error": ..., "error_description": ...}``, not the OData body."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(status, description or error)
        self.error = error
        self.description = description


TokenError = _TokenError
