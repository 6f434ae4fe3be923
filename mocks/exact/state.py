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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mocks.common.admin import Journal
from mocks.common.clock import MockClock
from mocks.exact.edm import EdmError, from_wire, to_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import ExactError

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

    def next_version(self) -> int:
        self.row_version += 1
        return self.row_version


class ExactState:
    """The state of one mock server: apps, users, tokens and divisions."""

    def __init__(self, clock: MockClock | None = None) -> None:
        self.clock = clock or MockClock()
        self.journal = Journal()
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
            self.journal.clear()

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Seed randomness (``{"seed": 7}``), register apps, or insert records per set."""
        with self.lock:
            if "seed" in payload:
                self._random.seed(int(payload["seed"]))
            for client in payload.get("clients", []):
                self.clients[str(client["client_id"])] = Client(
                    str(client["client_id"]), str(client["secret"]), list(client.get("redirect_uris", []))
                )
            created: dict[str, list[str]] = {}
            division = int(payload.get("division", DEFAULT_DIVISION))
            for set_name, rows in payload.get("records", {}).items():
                entity_set = ENTITY_SETS[set_name]
                for row in rows:
                    record = self.create(division, entity_set, dict(row), self.default_user())
                    created.setdefault(set_name, []).append(record[entity_set.key])
            return {"created": created}

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
            raise ExactError(403, "Forbidden: no access to this division")
        return found

    # ------------------------------------------------------------------ OAuth

    def authorize(self, client_id: str, redirect_uri: str) -> str:
        with self.lock:
            client = self.clients.get(client_id)
            if client is None or redirect_uri not in client.redirect_uris:
                raise ExactError(400, "invalid_request")
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

    def user_for_token(self, token: str) -> User:
        with self.lock:
            grant = self.access_tokens.get(token)
            if grant is None:
                raise ExactError(401, "Unauthorized", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if grant.expires_at <= self.clock.now():
                raise ExactError(
                    401, "Unauthorized",
                    {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="access token expired"'},
                )
            return self.users[grant.user_id]

    # ------------------------------------------------------------------ records

    def _rows(self, division: int, entity_set: EntitySetDef) -> dict[str, dict[str, Any]]:
        return self.division(division).records.setdefault(entity_set.name, {})

    def _decode(self, entity_set: EntitySetDef, body: dict[str, Any]) -> dict[str, Any]:
        """Read a request body: unknown names are refused, read-only ones ignored, types checked."""
        values: dict[str, Any] = {}
        for name, raw in body.items():
            prop = entity_set.prop(name)
            if prop is None:
                raise ExactError(
                    400,
                    f"Error processing request stream. The property name '{name}' specified for type "
                    f"'{entity_set.type_name}' is not valid.",
                )
            if not prop.writable or prop.is_collection:
                continue
            try:
                value = from_wire(raw, prop.edm_type)
            except EdmError as exc:
                raise ExactError(
                    400, f"Error processing request stream. The property '{name}' has an invalid value: {exc}."
                ) from exc
            if isinstance(value, str) and prop.max_length is not None and len(value) > prop.max_length:
                raise ExactError(500, f"{name}: the value is too long (maximum {prop.max_length} characters)")
            values[name] = value
        return values

    def _blank(self, entity_set: EntitySetDef) -> dict[str, Any]:
        return {
            name: (False if prop.edm_type == "Edm.Boolean" else None)
            for name, prop in entity_set.properties.items()
            if not prop.is_collection
        }

    def _stamp(self, division: int, record: dict[str, Any], user: User, created: bool) -> None:
        now = self.clock.now()
        if created:
            record["Created"] = now
            record["Creator"] = user.user_id
            record["CreatorFullName"] = user.full_name
        record["Modified"] = now
        record["Modifier"] = user.user_id
        record["ModifierFullName"] = user.full_name
        record["Division"] = division
        record["_timestamp"] = self.division(division).next_version()

    def _derive(self, division: int, entity_set: EntitySetDef, record: dict[str, Any]) -> None:
        if entity_set.name == "Accounts":
            rows = self._rows(division, entity_set)
            code = record.get("Code")
            if code is None or not str(code).strip():
                numbers = [int(r["Code"]) for r in rows.values() if r.get("Code") and r["Code"].strip().isdigit()]
                code = str(max(numbers, default=0) + 1)
            code = str(code).strip()
            if len(code) > 18:
                raise ExactError(500, "Code: the value is too long (maximum 18 characters)")
            record["Code"] = code.rjust(18)
            record["Type"] = "A"

    def _require(self, entity_set: EntitySetDef, record: dict[str, Any]) -> None:
        for prop in entity_set.properties.values():
            if prop.mandatory and not prop.is_collection:
                value = record.get(prop.name)
                if value is None or (isinstance(value, str) and not value.strip()):
                    raise ExactError(500, f"{prop.name}: Mandatory")

    def create(self, division: int, entity_set: EntitySetDef, body: dict[str, Any], user: User) -> dict[str, Any]:
        with self.lock:
            values = self._decode(entity_set, body)
            record = self._blank(entity_set)
            record.update(values)
            self._require(entity_set, record)
            self._derive(division, entity_set, record)
            record[entity_set.key] = self.new_id()
            self._stamp(division, record, user, created=True)
            self._rows(division, entity_set)[record[entity_set.key]] = record
            return record

    def get(self, division: int, entity_set: EntitySetDef, key: str) -> dict[str, Any]:
        with self.lock:
            record = self._rows(division, entity_set).get(key.lower())
            if record is None:
                raise ExactError(404, "Not found")
            return record

    def update(self, division: int, entity_set: EntitySetDef, key: str, body: dict[str, Any], user: User) -> None:
        """Partial update: only the properties in the body change (reference §2.8)."""
        with self.lock:
            record = self.get(division, entity_set, key)
            values = self._decode(entity_set, body)
            candidate = dict(record)
            candidate.update(values)
            self._require(entity_set, candidate)
            if "Code" in values:
                self._derive(division, entity_set, candidate)
            self._stamp(division, candidate, user, created=False)
            record.clear()
            record.update(candidate)

    def delete(self, division: int, entity_set: EntitySetDef, key: str, user: User) -> None:
        with self.lock:
            record = self.get(division, entity_set, key)
            rows = self._rows(division, entity_set)
            del rows[record[entity_set.key]]
            if entity_set.deleted_type is not None:
                self.division(division).deleted.append(
                    {
                        "_timestamp": self.division(division).next_version(),
                        "ID": self.new_id(),
                        "EntityKey": record[entity_set.key],
                        "EntityType": entity_set.deleted_type,
                        "DeletedBy": user.user_id,
                        "DeletedDate": self.clock.now(),
                        "Division": division,
                    }
                )

    def rows(self, division: int, entity_set: EntitySetDef) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._rows(division, entity_set).values())

    def deleted(self, division: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.division(division).deleted)

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
