"""Running the checklist against real sandboxes: what may be reached, how many calls, and what to clean up.

A sandbox is shared and cannot be reset, so a run there keeps to safe mode:

- every request goes through :class:`Guard`, which refuses any host the config does not name and stops the
  checks when the stated call budget is spent (a reserve is kept for the clean-up);
- records are told apart by a :class:`Scope`: the run notes where each Exact sync collection and the
  Customcrm change feed stood when it began, so "every record" means "every record changed since then",
  and records already there are never compared, edited or deleted;
- every record the checklist creates carries the run id in its merge key (e-mail, code, order or quote
  number), so it can never be linked to a record already in the sandbox, and anyone can find it;
- after each example, the records it created (on either side, including those the engine created in Exact
  for them) are deleted again; what cannot be deleted is listed in the report.
"""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from conformance.manifest import RunManifest, RunRecord
from sync.config import ExactConfig, SyncConfig, exact_app, load_config
from sync.errors import ConfigError

__all__ = ["BudgetExhausted", "Guard", "HostRefused", "SandboxSettings", "Scope", "load_sandbox"]

DEFAULT_CALL_BUDGET = 5000


class HostRefused(httpx.TransportError):
    """A request to a host the sandbox config does not name (a link in a response, a typo, a redirect)."""


class BudgetExhausted(BaseException):  # noqa: N818 - a BaseException, so Hypothesis stops at once
    """The run has made as many calls as the config allows: the check in progress and every later one are
    reported as skipped, with this reason."""


@dataclass(frozen=True)
class SandboxSettings:
    """The systems to run against (the `talkcheck sync` config format) and the run's limits."""

    config: SyncConfig
    call_budget: int = DEFAULT_CALL_BUDGET
    source: str = ""
    # The engine under test's own Exact app ([engine_exact]), as in production: its calls do not count
    # against the checklist's limits. None: the engine is handed the checklist's app.
    engine_exact: ExactConfig | None = None

    @property
    def hosts(self) -> frozenset[tuple[str, str, int]]:
        return frozenset(_origin(url) for url in (self.config.exact.base_url, self.config.customcrm.base_url))

    @property
    def secrets(self) -> list[str]:
        own = self.engine_exact
        extra = [own.client_secret, own.refresh_token or "", own.access_token or ""] if own is not None else []
        return [*self.config.secrets, *(v for v in extra if v)]


def load_sandbox(path: str | Path) -> SandboxSettings:
    """The sandbox config: the `talkcheck sync --config` file, plus an optional ``[checklist]`` section."""
    config = load_config(path)
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    checklist = data.get("checklist", {})
    budget = checklist.get("call_budget", DEFAULT_CALL_BUDGET)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 100:
        raise ConfigError(f"{path}: [checklist] call_budget must be a whole number of at least 100")
    if not config.exact.access_token and not config.exact.refresh_token:
        raise ConfigError(f"{path}: [exact] needs access_token_env or refresh_token_env, so the checklist can act "
                          "as a user in Exact")
    engine_exact = None
    if "engine_exact" in data:
        engine_exact = exact_app(data, "engine_exact", Path(path), config.exact)
        if engine_exact.client_id == config.exact.client_id:
            raise ConfigError(f"{path}: [engine_exact] names the checklist's own Exact app; give the engine its own "
                              "app (client id), or leave the section out")
    return SandboxSettings(config, budget, str(path), engine_exact)


def _origin(url: str | httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in: what the config names, and what a call
    may go to."""
    parts = urlsplit(str(url))
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class Guard(httpx.BaseTransport):
    """Counts every call the checklist makes, refuses unnamed hosts, and enforces the call budget.

    The checks may spend the budget less a reserve; the clean-up may spend the reserve, so a run that
    used up its budget still removes what it created.
    """

    def __init__(self, inner: httpx.BaseTransport, hosts: frozenset[tuple[str, str, int]], budget: int,
                 calls: dict[str, int], system: str, lock: threading.Lock) -> None:
        self.inner = inner
        self.hosts = hosts
        self.budget = budget
        self.calls = calls
        self.system = system
        self.lock = lock
        self.cleaning = False
        self.spent = False  # the checks hit the budget: from now on only the final clean-up may call
        # What removing the run's records will cost so far: checks side by side create many before any is
        # removed, so the reserve grows with them.
        self.owed: Callable[[], int] = lambda: 0

    @property
    def reserve(self) -> int:
        return max(50, self.budget // 10, self.owed())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scheme, host, port = _origin(request.url)
        if (scheme, host, port) not in self.hosts:
            raise HostRefused(f"refused a call to {scheme}://{host}:{port}: the sandbox config does not name this "
                              "host", request=request)
        with self.lock:
            used = sum(self.calls.values())
            limit = self.budget if self.cleaning else self.budget - self.reserve
            if used >= limit:
                self.spent = self.spent or not self.cleaning
                raise BudgetExhausted(f"the call budget is used up ({used} of {self.budget} calls, "
                                      f"{self.reserve} of them kept for the clean-up)")
            self.calls[self.system] = self.calls.get(self.system, 0) + 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def read_sync(client: httpx.Client, url: str, headers: Callable[[], dict[str, str]], after: int,
              seen: Callable[[httpx.Response], None] | None = None) -> list[dict[str, Any]]:
    """Every row of an Exact sync collection above a Timestamp, following the `__next` pages."""
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    params: dict[str, str] | None = {"$filter": f"Timestamp gt {after}L"}
    while next_url:
        response = client.get(next_url, params=params, headers=headers())
        response.raise_for_status()
        if seen is not None:
            seen(response)
        body = response.json()["d"]
        rows.extend(body["results"])
        next_url, params = body.get("__next"), None
    return rows


def read_changes(client: httpx.Client, headers: dict[str, str], after: str) -> tuple[list[dict[str, Any]], str]:
    """The Customcrm change feed after a cursor, every page of it, and the cursor to continue from."""
    out: list[dict[str, Any]] = []
    cursor = after
    while True:
        response = client.get("/api/v1/changes", params={"limit": 1000} | ({"after": cursor} if cursor else {}),
                              headers=headers)
        response.raise_for_status()
        body = response.json()
        out.extend(body["changes"])
        cursor = str(body.get("next_cursor") or cursor)
        if not body.get("has_more"):
            return out, cursor


class Scope:
    """What this run may see and must clean up in a sandbox.

    `exact_marks` is the highest row Timestamp of each sync collection when the run began; `crm_cursor`
    the Customcrm change feed's position then. `created` lists the Customcrm records the checklist
    created (the engine creates none there), by collection; in Exact, the records created since the run
    began are its own or the engine's answer to its own.
    """

    def __init__(self, run_id: str, exact_client: httpx.Client, exact_headers: Callable[[], dict[str, str]],
                 division: int, crm_client: httpx.Client, crm_headers: dict[str, str]) -> None:
        self.run_id = run_id
        self.exact_client = exact_client
        self.exact_headers = exact_headers
        self.division = division
        self.crm_client = crm_client
        self.crm_headers = crm_headers
        self.exact_marks: dict[str, int] = {}
        self.started = datetime.now(UTC)
        self.crm_cursor = ""
        self.crm_records: dict[str, dict[str, dict[str, Any]]] = {}
        self.created: dict[str, list[str]] = {}
        self.exact_created = 0
        self.removed = 0
        self.left: list[str] = []
        self._numbers = itertools.count(1)
        self._server_date: datetime | None = None
        self.manifest: RunManifest | None = None  # on disk, so `talkcheck cleanup` can finish a killed run

    # ------------------------------------------------------------------ tags

    def tag(self, value: Any, max_length: int | None = None) -> Any:
        """A merge-key value made unique to this run (and recognisable as talkcheck's)."""
        if not isinstance(value, str) or not value:
            return value
        n = next(self._numbers)
        if "@" in value:  # an e-mail stays one, where it fits (text that merely holds an "@" may be short)
            mail = f"tc.{self.run_id}.{n}@example.com"
            if max_length is None or len(mail) <= max_length:
                return mail
        tagged = f"TC-{self.run_id}-{n}"
        if max_length is not None and len(tagged) > max_length:
            tagged = f"{self.run_id}{n}"[-max_length:]
        return tagged

    # ------------------------------------------------------------------ where the collections stand

    def exact_changes(self, path: str, after: int) -> list[dict[str, Any]]:
        """The rows of a sync collection changed after a Timestamp (every page)."""
        return read_sync(self.exact_client, f"/api/v1/{self.division}/{path}", self.exact_headers, after,
                         self._note_server_date)

    def _note_server_date(self, response: httpx.Response) -> None:
        if self._server_date is None and "date" in response.headers:
            self._server_date = email.utils.parsedate_to_datetime(response.headers["date"]).astimezone(UTC)

    def crm_changes(self, after: str) -> tuple[list[dict[str, Any]], str]:
        """The Customcrm change feed after a cursor (every page), and the cursor to continue from."""
        return read_changes(self.crm_client, self.crm_headers, after)

    def begin(self, sync_paths: list[str]) -> None:
        """Note where every collection stands (again, after the engine settled): later reads see only what
        changed since."""
        self._server_date = None
        marks = {path: self.exact_marks.get(path, 0) for path in sync_paths}
        cursor = [self.crm_cursor]
        self.changed(marks, cursor)
        self.exact_marks.update(marks)
        self.crm_cursor = cursor[0]
        self.crm_records = {}
        self.started = self._server_date or datetime.now(UTC)
        if self.manifest is not None:
            self.manifest.begin(self.started.isoformat(), dict(self.exact_marks), self.crm_cursor)

    def restore(self, record: RunRecord) -> None:
        """Take up a run from its manifest (to clean up after it): its starting points and what it created."""
        self.exact_marks = dict(record.exact_marks)
        self.crm_cursor = record.crm_cursor
        self.started = datetime.fromisoformat(record.started)
        for system, collection, record_id in record.created:
            if system == "customcrm":
                self._add_created(collection, record_id)

    def changed(self, marks: dict[str, int], cursor: list[str]) -> bool:
        """Whether anything changed in these collections since `marks` and `cursor[0]` (both advanced)."""
        changed = False
        for path, mark in marks.items():
            rows = self.exact_changes(path, mark)
            if rows:
                marks[path] = max(int(r["Timestamp"]) for r in rows)
                changed = True
        changes, cursor[0] = self.crm_changes(cursor[0])
        return changed or bool(changes)

    # ------------------------------------------------------------------ Customcrm: records changed during the run

    def crm_all(self, path: str, *, refresh: bool = True) -> list[dict[str, Any]]:
        """The records of a collection created or changed during the run, as they are now (as last read, when
        not `refresh`)."""
        changes, self.crm_cursor = self.crm_changes(self.crm_cursor) if refresh else ([], self.crm_cursor)
        for change in changes:
            records = self.crm_records.setdefault(change["resource"], {})
            if change["op"] == "deleted":
                records.pop(change["id"], None)
            else:
                records[change["id"]] = change["record"]
            if change["op"] == "created":  # the engine creates nothing in Customcrm: this is the run's own
                self._add_created(change["resource"], str(change["id"]))
        return list(self.crm_records.get(path, {}).values())

    def exact_all(self, path: str) -> list[dict[str, Any]]:
        if path not in self.exact_marks:
            raise KeyError(f"{path} was not marked when the run began")
        return self.exact_changes(path, self.exact_marks[path])

    def _add_created(self, path: str, record_id: str) -> bool:
        known = self.created.setdefault(path, [])
        if record_id in known:
            return False
        known.append(record_id)
        return True

    def note_created(self, path: str, record_id: str) -> None:
        """A Customcrm record the checklist created: to be deleted again (noted in the manifest first)."""
        if self._add_created(path, record_id) and self.manifest is not None:
            self.manifest.created("customcrm", path, record_id)

    def cleanup_cost(self) -> int:
        """The calls the clean-up will need for what the run created so far: a delete for each record (and
        for the Exact record the engine made of each Customcrm one), and the reads that find them."""
        return 2 * sum(len(ids) for ids in self.created.values()) + self.exact_created + 20

    def note_exact_created(self, path: str, record_id: str) -> None:
        """An Exact record the checklist created (the clean-up finds it, and the engine's, by when it was made)."""
        self.exact_created += 1
        if self.manifest is not None:
            self.manifest.created("exact", path, record_id)

    def created_during_run(self, row: dict[str, Any]) -> bool:
        raw = row.get("Created")
        created = exact_instant(raw) if isinstance(raw, str) else None
        return created is not None and created >= self.started.replace(microsecond=0)


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def exact_wall(raw: str) -> datetime:
    """Exact's ``/Date(ms)/`` as the Amsterdam wall-clock time it writes as if it were UTC (naive). This is
    the checklist's own reading of the wire format, not the engine's; a malformed value is a ValueError."""
    ms = int(raw[len("/Date("):].split(")")[0].split("+")[0])
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def exact_instant(raw: str) -> datetime | None:
    """Exact's ``/Date(ms)/`` as the instant it stands for (None when it is not one)."""
    if not raw.startswith("/Date("):
        return None
    try:
        return exact_wall(raw).replace(tzinfo=AMSTERDAM).astimezone(UTC)
    except ValueError:
        return None


def wait_quiet(fingerprint: Callable[[], bool], *, quiet: float, deadline: float,
               interval: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Wait until `fingerprint` (True when something changed since its last call) stays False for `quiet`
    seconds, or until `deadline` (a monotonic time). True when the systems went quiet in time."""
    last_change = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last_change >= quiet:
            return True
        if now >= deadline:
            return False
        sleep(min(interval, max(0.0, deadline - now)))
        if fingerprint():
            last_change = time.monotonic()
