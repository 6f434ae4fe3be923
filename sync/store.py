"""The engine's memory, in SQLite: links with their last synced snapshot, cursors, intents, retired links.

Every change is committed at once, so a killed engine restarts from what it had finished. Links of a
flow are one to one (primary key on the Customcrm side, unique on the Exact side).

Example::

    store = LinkStore("talkcheck-sync.sqlite3")
    store.put_link("customer-accounts", crm_id, exact_id, {"Name": "Acme"})
    store.link_by_crm("customer-accounts", crm_id)
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sync.errors import EngineBusy, LinkConflict, StateError

__all__ = ["Link", "LinkStore"]

MAX_RETRY_AFTER = 64


def retry_after(tries: int) -> int:
    """After a record's `tries`-th refusal, the passes until it is tried again unless it changes: 1, 2, 4, ...
    up to 64. What the other system refused (a value too long, say) is refused again until someone edits the
    record, and an edit brings it back at once (it is in the change feed); retrying every pass spent calls of
    Exact's 60 a minute on answers known in advance. The backing off keeps what may clear by itself (a
    record it refers to, fixed elsewhere) coming back."""
    return int(min(MAX_RETRY_AFTER, 2 ** max(0, tries - 1)))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    flow TEXT NOT NULL, crm_id TEXT NOT NULL, exact_id TEXT NOT NULL, snapshot TEXT NOT NULL,
    PRIMARY KEY (flow, crm_id), UNIQUE (flow, exact_id));
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    flow TEXT NOT NULL, crm_id TEXT NOT NULL, conditions TEXT NOT NULL, PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS retired (
    flow TEXT NOT NULL, crm_id TEXT NOT NULL, exact_id TEXT NOT NULL, deleted_in TEXT NOT NULL,
    PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS pending (flow TEXT NOT NULL, crm_id TEXT NOT NULL, PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS held (flow TEXT NOT NULL, crm_id TEXT NOT NULL, PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS refused (
    flow TEXT NOT NULL, crm_id TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS refused_retry (
    flow TEXT NOT NULL, crm_id TEXT NOT NULL, tries INTEGER NOT NULL, due INTEGER NOT NULL,
    PRIMARY KEY (flow, crm_id));
CREATE TABLE IF NOT EXISTS exact_keys (flow TEXT NOT NULL, exact_id TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS exact_keys_by_key ON exact_keys (flow, key);
CREATE INDEX IF NOT EXISTS exact_keys_by_id ON exact_keys (flow, exact_id);
"""


@dataclass(frozen=True)
class Link:
    flow: str
    crm_id: str
    exact_id: str
    snapshot: dict[str, Any]


class LinkStore:
    """Links, cursors and crash-recovery intents; ``":memory:"`` for a throwaway store."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        if path != ":memory:":
            # The state holds the Exact refresh token. SQLite gives its -wal and -shm files the database's mode.
            for name in (path, f"{path}.lock", f"{path}.run.lock"):
                _private(name)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL") if path != ":memory:" else None
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"the state file {path} is damaged or is not a talkcheck state file ({exc}): move it "
                             "aside, then run `talkcheck sync --relink` to link the records both systems already "
                             "hold by their merge keys") from exc
        self._lock = threading.Lock()

    def knows_nothing_of(self, flow: str) -> bool:
        """Nothing of this flow synced yet: no link, intent, retired or held record, and no cursor."""
        prefix = f"{flow}:"  # the flow's cursors are named "<flow>:<what>"
        row = self._one("SELECT (SELECT COUNT(*) FROM links WHERE flow=?) + (SELECT COUNT(*) FROM retired WHERE flow=?)"
                        " + (SELECT COUNT(*) FROM held WHERE flow=?) + (SELECT COUNT(*) FROM intents WHERE flow=?)"
                        " + (SELECT COUNT(*) FROM cursors WHERE substr(name, 1, ?) = ?)",
                        flow, flow, flow, flow, len(prefix), prefix)
        return row is None or int(row[0]) == 0

    def linked_exact_ids(self) -> set[str]:
        """Every Exact key some flow links (a set shared by two flows, such as Contacts, counts for both)."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT exact_id FROM links").fetchall()}

    @contextmanager
    def running(self, wait: float, sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
        """Hold the state file for one pass; another engine on the same file waits up to `wait` seconds for it,
        then gives up with EngineBusy (two passes at once would both create the same records)."""
        if self.path == ":memory:":
            yield
            return
        handle = open(f"{self.path}.run.lock", "a+")  # noqa: SIM115 - held across the yield
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise EngineBusy(f"another engine ({holder}) is running a pass on {self.path}; waited "
                                         f"{wait:.0f} s. Nothing was done.") from None
                    sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def close(self) -> None:
        self._db.close()

    def exclusive(self, action: Callable[[], None]) -> None:
        """Run `action` while holding a lock every process using this state file respects."""
        if self.path == ":memory:":
            action()
            return
        with open(f"{self.path}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                action()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def _run(self, sql: str, *args: Any) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # ------------------------------------------------------------------ links

    def link_by_crm(self, flow: str, crm_id: str) -> Link | None:
        row = self._one("SELECT exact_id, snapshot FROM links WHERE flow=? AND crm_id=?", flow, crm_id)
        return Link(flow, crm_id, row[0], json.loads(row[1])) if row else None

    def link_by_exact(self, flow: str, exact_id: str) -> Link | None:
        row = self._one("SELECT crm_id, snapshot FROM links WHERE flow=? AND exact_id=?", flow, exact_id)
        return Link(flow, row[0], exact_id, json.loads(row[1])) if row else None

    def links(self, flow: str) -> list[Link]:
        with self._lock:
            rows = self._db.execute("SELECT crm_id, exact_id, snapshot FROM links WHERE flow=?", (flow,)).fetchall()
        return [Link(flow, r[0], r[1], json.loads(r[2])) for r in rows]

    def put_link(self, flow: str, crm_id: str, exact_id: str, snapshot: dict[str, Any]) -> None:
        """Create a link (and drop its intent) in one transaction; refuses to break one-to-one."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.execute("INSERT INTO links VALUES (?, ?, ?, ?)",
                                 (flow, crm_id, exact_id, json.dumps(snapshot, sort_keys=True)))
                self._db.execute("DELETE FROM intents WHERE flow=? AND crm_id=?", (flow, crm_id))
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise LinkConflict(f"{flow}: a link for Customcrm {crm_id} or Exact {exact_id} exists") from exc

    def drop_link(self, flow: str, crm_id: str) -> None:
        """Forget a link without remembering it as retired (a line removed on purpose)."""
        self._run("DELETE FROM links WHERE flow=? AND crm_id=?", flow, crm_id)

    def count_links(self, flow: str) -> int:
        row = self._one("SELECT COUNT(*) FROM links WHERE flow=?", flow)
        return int(row[0]) if row else 0

    def update_snapshot(self, flow: str, crm_id: str, snapshot: dict[str, Any]) -> None:
        self._run("UPDATE links SET snapshot=? WHERE flow=? AND crm_id=?",
                  json.dumps(snapshot, sort_keys=True), flow, crm_id)

    def retire(self, flow: str, crm_id: str, exact_id: str, deleted_in: str) -> None:
        """A side was deleted: the link ends, and the pair is remembered so nothing is re-created."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM links WHERE flow=? AND crm_id=?", (flow, crm_id))
            self._db.execute("INSERT OR REPLACE INTO retired VALUES (?, ?, ?, ?)", (flow, crm_id, exact_id, deleted_in))
            self._db.execute("COMMIT")

    def retired(self, flow: str, crm_id: str) -> str | None:
        row = self._one("SELECT deleted_in FROM retired WHERE flow=? AND crm_id=?", flow, crm_id)
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ the merge-key index of Exact records

    def index_exact(self, flow: str, rows: list[tuple[str, list[str]]]) -> None:
        """Remember the merge keys of Exact records read from the sync feed (replacing what was known)."""
        with self._lock:
            self._db.execute("BEGIN")
            for exact_id, keys in rows:
                self._db.execute("DELETE FROM exact_keys WHERE flow=? AND exact_id=?", (flow, exact_id))
                self._db.executemany("INSERT INTO exact_keys VALUES (?, ?, ?)", [(flow, exact_id, k) for k in keys])
            self._db.execute("COMMIT")

    def unindex_exact(self, flow: str, exact_id: str) -> None:
        self._run("DELETE FROM exact_keys WHERE flow=? AND exact_id=?", flow, exact_id)

    def lookup_exact(self, flow: str, key: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT exact_id FROM exact_keys WHERE flow=? AND key=?", (flow, key)).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ cursors, intents, retries

    def cursor(self, name: str) -> str | None:
        row = self._one("SELECT value FROM cursors WHERE name=?", name)
        return str(row[0]) if row else None

    def set_cursor(self, name: str, value: str) -> None:
        self._run("INSERT OR REPLACE INTO cursors VALUES (?, ?)", name, value)

    def add_intent(self, flow: str, crm_id: str, conditions: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO intents VALUES (?, ?, ?)", flow, crm_id, json.dumps(conditions))

    def intents(self, flow: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT crm_id, conditions FROM intents WHERE flow=?", (flow,)).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def drop_intent(self, flow: str, crm_id: str) -> None:
        self._run("DELETE FROM intents WHERE flow=? AND crm_id=?", flow, crm_id)

    def add_pending(self, flow: str, crm_id: str) -> None:
        self._run("INSERT OR IGNORE INTO pending VALUES (?, ?)", flow, crm_id)

    def pending(self, flow: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT crm_id FROM pending WHERE flow=?", (flow,)).fetchall()]

    def drop_pending(self, flow: str, crm_id: str) -> None:
        self._run("DELETE FROM pending WHERE flow=? AND crm_id=?", flow, crm_id)

    # ------------------------------------------------------------------ held after a relink

    def hold(self, flow: str, crm_id: str) -> None:
        """A record a relink could not match: it is not created until a person releases it."""
        self._run("INSERT OR IGNORE INTO held VALUES (?, ?)", flow, crm_id)

    def is_held(self, flow: str, crm_id: str) -> bool:
        return self._one("SELECT 1 FROM held WHERE flow=? AND crm_id=?", flow, crm_id) is not None

    def unhold(self, flow: str, crm_id: str) -> None:
        self._run("DELETE FROM held WHERE flow=? AND crm_id=?", flow, crm_id)

    # ------------------------------------------------------------------ refused by a system, reported once

    def refusal(self, flow: str, crm_id: str) -> str | None:
        """What a system said when it last refused this record's write (None: it did not)."""
        row = self._one("SELECT message FROM refused WHERE flow=? AND crm_id=?", flow, crm_id)
        return None if row is None else str(row[0])

    def note_refusal(self, flow: str, crm_id: str, message: str) -> None:
        self._run("INSERT OR REPLACE INTO refused VALUES (?, ?, ?)", flow, crm_id, message)

    def forget_refusal(self, flow: str, crm_id: str) -> None:
        self._run("DELETE FROM refused WHERE flow=? AND crm_id=?", flow, crm_id)
        self._run("DELETE FROM refused_retry WHERE flow=? AND crm_id=?", flow, crm_id)

    def passes(self) -> int:
        """The passes this state has seen (counted by the engine as each begins)."""
        return int(self.cursor("engine:passes") or 0)

    def count_pass(self) -> int:
        """A pass begins: its number."""
        number = self.passes() + 1
        self.set_cursor("engine:passes", str(number))
        return number

    def note_refused_try(self, flow: str, crm_id: str) -> int:
        """The other system refused this record again: when (which pass) to try it next, unless it changes."""
        row = self._one("SELECT tries FROM refused_retry WHERE flow=? AND crm_id=?", flow, crm_id)
        tries = (int(row[0]) if row else 0) + 1
        due = self.passes() + retry_after(tries)
        self._run("INSERT OR REPLACE INTO refused_retry VALUES (?, ?, ?, ?)", flow, crm_id, tries, due)
        return due

    def retry_due(self, flow: str, crm_id: str) -> int | None:
        """The pass from which a refused record is tried again (None: it was not refused)."""
        row = self._one("SELECT due FROM refused_retry WHERE flow=? AND crm_id=?", flow, crm_id)
        return None if row is None else int(row[0])

    def release_held(self) -> int:
        """Let every held record be created on the next pass; returns how many there were."""
        with self._lock:
            count = int(self._db.execute("SELECT COUNT(*) FROM held").fetchone()[0])
            self._db.execute("DELETE FROM held")
        return count


def _private(path: str) -> None:
    """Create the file readable by its owner only, or make an existing one so."""
    if os.path.exists(path):
        os.chmod(path, 0o600)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
