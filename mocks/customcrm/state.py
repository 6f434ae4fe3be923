"""Everything the Customcrm mock remembers, per tenant, and the rules that change it. No HTTP here.

Every committed write appends one entry to the tenant's change feed (creates, updates, deletes in
commit order), so a sync engine can read only what changed since its cursor.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mocks.common.clock import MockClock
from mocks.common.faults import Faults
from mocks.common.journal import Journal
from mocks.customcrm.errors import Problem
from mocks.customcrm.limits import TenantRateLimit
from mocks.customcrm.models import RESOURCES, Resource

__all__ = ["DEFAULT_API_KEY", "DEFAULT_TENANT", "CustomcrmState", "Tenant", "iso"]

DEFAULT_TENANT = "default"
DEFAULT_API_KEY = "customcrm-local-key"
_META = ("Id", "CreatedAt", "ModifiedAt", "Version")


def iso(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Tenant:
    name: str
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    feed: list[dict[str, Any]] = field(default_factory=list)

    def rows(self, resource: Resource) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(resource.path, {})


def _matches(value: Any, text: str) -> bool:
    """A stored value against a query-string filter value."""
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    if value is None:
        return text == ""
    return str(value) == text


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        out.append({"field": loc, "message": message})
    return out


class CustomcrmState:
    """The state of one mock server: tenants, their API keys, records and change feeds."""

    def __init__(self, clock: MockClock | None = None, seed: int | None = None) -> None:
        self.clock = clock or MockClock()
        self.journal = Journal()
        self.faults = Faults()
        self.rate_limit = TenantRateLimit()
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
            self.api_keys: dict[str, str] = {DEFAULT_API_KEY: DEFAULT_TENANT}
            self.tenants: dict[str, Tenant] = {DEFAULT_TENANT: Tenant(DEFAULT_TENANT)}
            self.journal.clear()
            self.faults.clear()
            self.rate_limit.clear()

    def seed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Seed randomness, add tenants (``{"tenants": {"acme": "key"}}``) or insert records."""
        with self.lock:
            if "seed" in payload:
                self._seed = int(payload["seed"])
                self._random.seed(self._seed)
            if "rate_limit" in payload:
                self.rate_limit.configure(**payload["rate_limit"])
            for name, key in payload.get("tenants", {}).items():
                self.tenants.setdefault(str(name), Tenant(str(name)))
                self.api_keys[str(key)] = str(name)
            tenant = self.tenant(str(payload.get("tenant", DEFAULT_TENANT)))
            created: dict[str, list[str]] = {}
            for path, rows in payload.get("records", {}).items():
                resource = RESOURCES[path]
                for row in rows:
                    created.setdefault(path, []).append(self.create(tenant, resource, dict(row))["Id"])
            return {"created": created}

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "clock": self.clock.describe(),
                "tenants": {
                    name: {"records": {p: list(rows.values()) for p, rows in t.records.items()},
                           "feed_length": len(t.feed)}
                    for name, t in self.tenants.items()
                },
            }

    # ------------------------------------------------------------------ tenants

    def tenant_for_key(self, key: str) -> Tenant:
        with self.lock:
            name = self.api_keys.get(key)
            if name is None:
                raise Problem(401, "The API key is not valid.", headers={"WWW-Authenticate": "Bearer"})
            return self.tenants[name]

    def tenant_name_for_key(self, key: str) -> str | None:
        with self.lock:
            return self.api_keys.get(key)

    def tenant(self, name: str) -> Tenant:
        found = self.tenants.get(name)
        if found is None:
            raise KeyError(f"no tenant {name!r}")
        return found

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    # ------------------------------------------------------------------ records

    def _validate(self, tenant: Tenant, resource: Resource, values: dict[str, Any], record_id: str | None,
                  old_lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Check a whole record: fields, references, unique values and line ids. Raises before any write."""
        try:
            model = resource.model.model_validate(values)
        except ValidationError as exc:
            raise Problem(422, f"The {resource.name.lower()} is not valid.", _field_errors(exc)) from exc
        clean = model.model_dump(mode="json")
        errors: list[dict[str, str]] = []
        for field_name, target in resource.references.items():
            target_rows = tenant.rows(RESOURCES[target])
            if field_name.startswith("Lines."):
                inner = field_name.split(".", 1)[1]
                for index, line in enumerate(clean.get("Lines", [])):
                    if line.get(inner) is not None and line[inner] not in target_rows:
                        errors.append({"field": f"Lines.{index}.{inner}",
                                       "message": f"no {RESOURCES[target].name.lower()} with id {line[inner]}"})
            elif clean.get(field_name) is not None and clean[field_name] not in target_rows:
                errors.append({"field": field_name,
                               "message": f"no {RESOURCES[target].name.lower()} with id {clean[field_name]}"})
        if errors:
            raise Problem(422, f"The {resource.name.lower()} refers to records that do not exist.", errors)
        for field_name in resource.unique:
            value = clean.get(field_name)
            for other in tenant.rows(resource).values():
                if other["Id"] != record_id and value is not None and other.get(field_name) == value:
                    raise Problem(409, f"Another {resource.name.lower()} ({other['Id']}) has {field_name} {value!r}.",
                                  [{"field": field_name, "message": "already used"}])
        if resource.has_lines:
            known = {line["Id"] for line in old_lines or []}
            for index, line in enumerate(clean["Lines"]):
                if line.get("Id") is None:
                    line["Id"] = self.new_id()
                elif line["Id"] not in known:
                    raise Problem(422, "A line Id must be one the server issued.",
                                  [{"field": f"Lines.{index}.Id", "message": f"unknown line {line['Id']}"}])
            ids = [line["Id"] for line in clean["Lines"]]
            if len(ids) != len(set(ids)):
                raise Problem(422, "A line appears twice.", [{"field": "Lines", "message": "duplicate line Id"}])
        return clean

    def _users_of(self, tenant: Tenant, resource: Resource, record_id: str) -> str | None:
        """Which record still refers to this one (a delete must not leave dangling references)."""
        for other in RESOURCES.values():
            for field_name, target in other.references.items():
                if target != resource.path:
                    continue
                for row in tenant.rows(other).values():
                    if field_name.startswith("Lines."):
                        inner = field_name.split(".", 1)[1]
                        if any(line.get(inner) == record_id for line in row.get("Lines", [])):
                            return f"{other.name.lower()} {row['Id']}"
                    elif row.get(field_name) == record_id:
                        return f"{other.name.lower()} {row['Id']}"
        return None

    def _record_change(self, tenant: Tenant, resource: Resource, op: str, record: dict[str, Any]) -> None:
        tenant.feed.append({
            "seq": len(tenant.feed) + 1,
            "resource": resource.path,
            "id": record["Id"],
            "op": op,
            "version": record["Version"],
            "at": record["ModifiedAt"],
            "record": None if op == "deleted" else dict(record),
        })

    def create(self, tenant: Tenant, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            meta = [k for k in body if k in _META]
            if meta:
                raise Problem(422, "Read-only fields cannot be written.",
                              [{"field": k, "message": "read-only"} for k in meta])
            values = self._validate(tenant, resource, body, None)
            now = iso(self.clock.now())
            record = {"Id": self.new_id(), **values, "CreatedAt": now, "ModifiedAt": now, "Version": 1}
            tenant.rows(resource)[record["Id"]] = record
            self._record_change(tenant, resource, "created", record)
            return dict(record)

    def get(self, tenant: Tenant, resource: Resource, record_id: str) -> dict[str, Any]:
        with self.lock:
            record = tenant.rows(resource).get(record_id)
            if record is None:
                raise Problem(404, f"No {resource.name.lower()} with id {record_id}.")
            return dict(record)

    def update(self, tenant: Tenant, resource: Resource, record_id: str, patch: dict[str, Any],
               if_match: int | None) -> dict[str, Any]:
        """Merge-patch semantics: fields present are set (null clears), absent ones stay."""
        with self.lock:
            record = tenant.rows(resource).get(record_id)
            if record is None:
                raise Problem(404, f"No {resource.name.lower()} with id {record_id}.")
            meta = [k for k in patch if k in _META]
            if meta:
                raise Problem(422, "Read-only fields cannot be written.",
                              [{"field": k, "message": "read-only"} for k in meta])
            merged = {k: v for k, v in record.items() if k not in _META}
            merged.update(patch)
            values = self._validate(tenant, resource, merged, record_id, record.get("Lines"))
            # The version is compared after the body is validated: an invalid change is refused as invalid,
            # whatever version it was based on.
            if if_match is not None and if_match != record["Version"]:
                raise Problem(412, f"The {resource.name.lower()} has changed: version {record['Version']} is "
                                   f"current, the request was based on version {if_match}.")
            record.update(values)
            record["ModifiedAt"] = iso(self.clock.now())
            record["Version"] += 1
            self._record_change(tenant, resource, "updated", record)
            return dict(record)

    def delete(self, tenant: Tenant, resource: Resource, record_id: str, if_match: int | None) -> None:
        with self.lock:
            record = tenant.rows(resource).get(record_id)
            if record is None:
                raise Problem(404, f"No {resource.name.lower()} with id {record_id}.")
            if if_match is not None and if_match != record["Version"]:
                raise Problem(412, f"The {resource.name.lower()} has changed since version {if_match}.")
            user = self._users_of(tenant, resource, record_id)
            if user is not None:
                raise Problem(409, f"The {resource.name.lower()} is still used by {user}; delete or change that first.")
            del tenant.rows(resource)[record_id]
            tombstone = dict(record)
            tombstone["ModifiedAt"] = iso(self.clock.now())
            tombstone["Version"] += 1
            self._record_change(tenant, resource, "deleted", tombstone)

    def list_records(self, tenant: Tenant, resource: Resource, filters: dict[str, Any], after: str | None,
             limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Records in id order after a cursor (the last id of the previous page)."""
        with self.lock:
            rows = sorted(tenant.rows(resource).values(), key=lambda r: str(r["Id"]))
            chosen = [r for r in rows if all(_matches(r.get(k), v) for k, v in filters.items())]
            if after:
                chosen = [r for r in chosen if str(r["Id"]) > after]
            page = [dict(r) for r in chosen[:limit]]
            more = len(chosen) > limit
            return page, (page[-1]["Id"] if more and page else None)

    def changes(self, tenant: Tenant, after: int, resources: set[str] | None,
                limit: int) -> tuple[list[dict[str, Any]], int, bool]:
        with self.lock:
            entries = [e for e in tenant.feed[after:] if resources is None or e["resource"] in resources]
            page = entries[:limit]
            last = page[-1]["seq"] if page else len(tenant.feed)
            if len(entries) <= limit:
                last = len(tenant.feed)
            return [dict(e) for e in page], last, len(entries) > limit
