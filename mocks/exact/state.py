"""Everything the Exact mock remembers, and the rules that change it. Nothing here knows about HTTP.

One ``ExactState`` holds the apps (OAuth clients), users, divisions and their records. Every insert and
update takes the division's next row version (``Timestamp``), like the SQL rowversion behind Exact's
sync API; deletions go to a deletion log that ``sync/Deleted`` reads.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from mocks.common.clock import MockClock
from mocks.common.faults import Faults
from mocks.common.journal import Journal
from mocks.exact.division import Division
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Refused
from mocks.exact.limits import RateLimits
from mocks.exact.oauth import OAuthServer, TokenError
from mocks.exact.reads import Reader
from mocks.exact.rules import Writing, blank, decode, rules_for

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_DIVISION",
    "DEFAULT_REDIRECT_URI",
    "ExactState",
    "TokenError",
]

DEFAULT_CLIENT_ID = "b81a5f4c-7d2e-4c7a-9c55-2f1d3e4a6b70"
DEFAULT_CLIENT_SECRET = "talkcheck-local-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"
DEFAULT_DIVISION = 499156
DEFAULT_USER_EMAIL = "qa.lead@example.com"



@dataclass
class User:
    user_id: str
    email: str
    full_name: str
    divisions: list[int]
    current_division: int

    def record(self) -> dict[str, Any]:
        """The user as users/Users and system/Users show it."""
        first, _, last = self.full_name.partition(" ")
        return {"UserID": self.user_id, "UserName": self.email, "FullName": self.full_name, "FirstName": first,
                "LastName": last or None, "Email": self.email, "StartDivision": self.current_division,
                "HasTwoStepVerification": False, "HasRegisteredForTwoStepVerification": False}


class ExactState:
    """The state of one mock server: apps, users, tokens and divisions."""

    def __init__(self, clock: MockClock | None = None, seed: int | None = None) -> None:
        self.clock = clock or MockClock()
        self.journal = Journal()
        self.faults = Faults()
        self.rate_limits = RateLimits()
        self.lock = threading.RLock()
        self._random = random.Random()
        # Ids come from a seeded generator once the admin plane seeds it, and a reset starts it again, so
        # the same client calls after a reset give the same ids (a run replays by its seed alone).
        self._seed = seed
        self.reset()

    # ------------------------------------------------------------------ admin plane

    def reset(self) -> None:
        with self.lock:
            if self._seed is not None:
                self._random.seed(self._seed)
            self.oauth = OAuthServer(self.clock, self.lock)
            self.oauth.register(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, [DEFAULT_REDIRECT_URI])
            user = User(self.new_id(), DEFAULT_USER_EMAIL, "QA Lead", [DEFAULT_DIVISION], DEFAULT_DIVISION)
            self.users: dict[str, User] = {user.user_id: user}
            self.divisions: dict[int, Division] = {DEFAULT_DIVISION: Division(DEFAULT_DIVISION)}
            self.journal.clear()
            self.faults.clear()
            self.rate_limits.clear()

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Seed randomness (``{"seed": 7}``), register apps, or insert records per set."""
        with self.lock:
            if "seed" in payload:
                self._seed = int(payload["seed"])
                self._random.seed(self._seed)
            if "rate_limits" in payload:
                self.rate_limits.configure(**payload["rate_limits"])
            for client in payload.get("clients", []):
                self.oauth.register(str(client["client_id"]), str(client["secret"]),
                                    list(client.get("redirect_uris", [])))
            seeded_users: list[str] = []
            for raw in payload.get("users", []):
                new_user = User(self.new_id(), str(raw["Email"]), str(raw.get("FullName") or raw["Email"]),
                                [DEFAULT_DIVISION], DEFAULT_DIVISION)
                self.users[new_user.user_id] = new_user
                seeded_users.append(new_user.user_id)
            created: dict[str, list[str]] = {}
            division = int(payload.get("division", DEFAULT_DIVISION))
            for set_name, rows in payload.get("records", {}).items():
                entity_set = ENTITY_SETS[set_name]
                for row in rows:
                    record = self.create(division, entity_set, dict(row), self.default_user())
                    created.setdefault(set_name, []).append(record[entity_set.key])
            return {"created": created, "users": [u.user_id for u in self.users.values()],
                    "seeded_users": seeded_users}

    def dump(self) -> dict[str, Any]:
        with self.lock:
            divisions = {str(number): division.dump() for number, division in self.divisions.items()}
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

    # ------------------------------------------------------------------ OAuth (`oauth`)

    def authorize(self, client_id: str, redirect_uri: str) -> str:
        return self.oauth.authorize(client_id, redirect_uri, self.default_user().user_id)

    def exchange_code(self, client_id: str, secret: str, code: str, redirect_uri: str) -> dict[str, str]:
        return self.oauth.exchange_code(client_id, secret, code, redirect_uri)

    def refresh(self, client_id: str, secret: str, refresh_token: str) -> dict[str, str]:
        return self.oauth.refresh(client_id, secret, refresh_token)

    def app_for_token(self, token: str) -> str | None:
        """The client id behind a valid access token, for rate limiting per app."""
        return self.oauth.app_for_token(token)

    def user_for_token(self, token: str) -> User:
        return self.users[self.oauth.user_for_token(token)]

    # ------------------------------------------------------------------ records

    def _rows(self, division: int, entity_set: EntitySetDef) -> dict[str, dict[str, Any]]:
        return self.division(division).rows(entity_set)

    def _set(self, name: str) -> EntitySetDef:
        return ENTITY_SETS[name]

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

    def _writing(self, division: int) -> Writing:
        """What the write rules of a set may read of one division: its numbering, its item codes, its items."""
        data = self.division(division)
        return Writing(data.highest, data.item_codes, self._rows(division, self._set("Items")), self.clock.now,
                       lambda entity_set: self._rows(division, entity_set))

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
        values = decode(entity_set, body, allow_nav=True)
        record = blank(entity_set)
        record.update(values)
        record["_given"] = tuple(values)
        rules_for(entity_set).require(record)
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
            rules_for(entity_set).derive(self._writing(division), record, created=True)
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                for number, line in enumerate(line_records, start=1):
                    line[entity_set.lines.parent_key] = record[entity_set.key]
                    line["LineNumber"] = number
                    line[line_set.key] = self.new_id()
                    rules_for(entity_set).copy_to_line(record, line)
                    rules_for(line_set).derive(self._writing(division), line, created=True)
            self._stamp(division, entity_set, record, user, created=True)
            self.division(division).put(entity_set, record)
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                for line in line_records:
                    self._stamp(division, line_set, line, user, created=True)
                    self.division(division).put(line_set, line)
                self._refresh_header(division, entity_set, record[entity_set.key], user)
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                header = self._rows(division, header_set)[str(record[header_set.lines.parent_key]).lower()]
                rows = self._rows(division, entity_set)
                keys = self.division(division).header_lines(entity_set.name, header[header_set.key])
                siblings = [rows[k] for k in keys if k in rows and rows[k] is not record]
                record["LineNumber"] = max((int(r.get("LineNumber") or 0) for r in siblings), default=0) + 1
                rules_for(header_set).copy_to_line(header, record)
                self._refresh_header(division, header_set, header[header_set.key], user)
            return record

    def get(self, division: int, entity_set: EntitySetDef, key: str) -> dict[str, Any]:
        with self.lock:
            if entity_set.name == "Users":
                user = self.users.get(key.lower())
                if user is None:
                    raise NotFound("Not found")
                return user.record()
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
            values = decode(entity_set, body)
            for name in entity_set.immutable:
                if name in values and values[name] != record.get(name):
                    raise Refused(f"{name}: For an existing record this value can not be changed")
            self._check_references(division, entity_set, values)
            candidate = dict(record)
            candidate.update(values)
            candidate["_given"] = tuple(set(record.get("_given", ())) | set(values))
            rules_for(entity_set).require(candidate)
            rules_for(entity_set).derive(self._writing(division), candidate, created=False)
            self._stamp(division, entity_set, candidate, user, created=False)
            self.division(division).remove(entity_set, str(record[entity_set.key]), keep_row=True)
            record.clear()
            record.update(candidate)
            self.division(division).put(entity_set, record)
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                self._refresh_header(division, header_set, str(record[header_set.lines.parent_key]), user)

    def delete(self, division: int, entity_set: EntitySetDef, key: str, user: User) -> None:
        with self.lock:
            if entity_set.read_only:
                raise MethodNotAllowed("Method not allowed")
            record = self.get(division, entity_set, key)
            record_key = str(record[entity_set.key])
            used_by = self.division(division).in_use(entity_set, record_key)
            if used_by is not None:
                raise Refused(f"This record is in use ({used_by}) and cannot be deleted")
            self.division(division).remove(entity_set, record_key)
            self.division(division).log_delete(entity_set, record_key, self.new_id(), user.user_id, self.clock.now())
            if entity_set.lines is not None:
                line_set = self._set(entity_set.lines.set_name)
                lines = self._rows(division, line_set)
                for line_key in [k for k, r in lines.items() if r.get(entity_set.lines.parent_key) == record_key]:
                    self.division(division).remove(line_set, line_key)
                    self.division(division).log_delete(line_set, line_key, self.new_id(), user.user_id,
                                                       self.clock.now())
            if entity_set.parent is not None:
                header_set = self._set(entity_set.parent)
                assert header_set.lines is not None
                self._refresh_header(division, header_set, str(record[header_set.lines.parent_key]), user)

    def rows(self, division: int, entity_set: EntitySetDef) -> list[dict[str, Any]]:
        with self.lock:
            if entity_set.name == "Users":
                return [u.record() for u in self.users.values()]
            return list(self._rows(division, entity_set).values())

    def rows_after(self, division: int, entity_set: EntitySetDef, after: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.division(division).rows_after(entity_set, after)

    def deleted_after(self, division: int, after: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.division(division).deleted_after(after)

    def lines_of(self, division: int, entity_set: EntitySetDef, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return self.division(division).lines_of(entity_set, key)

    def reader(self, division: int) -> Reader:
        """A division's records as GET shows them (`reads`)."""

        def user_name(user_id: str) -> str | None:
            user = self.users.get(user_id)
            return user.full_name if user is not None else None

        return Reader(self.division(division), user_name)
