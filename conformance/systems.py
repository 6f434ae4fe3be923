"""The two systems a checklist runs against, and the raw API actors a check uses to act as a user.

The actors speak HTTP to the vendor APIs directly, independently of the engine's connectors, so a
misunderstanding in a connector cannot hide itself. ``inproc`` runs both mocks in this process;
``server`` runs them under uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import httpx

from conformance.manifest import RunManifest, manifest_dir
from conformance.mirror import Mirror
from conformance.pacing import LimitState, Pacer
from conformance.sandbox import BudgetExhausted, Guard, SandboxSettings, Scope, read_sync
from mocks.common.transport import InProcessTransport
from mocks.customcrm.app import create_app as create_customcrm_app
from mocks.customcrm.state import DEFAULT_API_KEY, CustomcrmState
from mocks.exact.app import create_app as create_exact_app
from mocks.exact.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_DIVISION,
    DEFAULT_REDIRECT_URI,
    ExactState,
)
from sync.config import CustomcrmConfig, EngineConfig, ExactConfig, SyncConfig
from sync.cookies import HttpClient
from sync.errors import ConfigError
from sync.systems.exact import ENTITIES, ExactEntity

if TYPE_CHECKING:
    import uvicorn

__all__ = ["CustomcrmActor", "ExactActor", "Systems", "TokenSet"]

# When the checklist refreshes its Exact access token: after Exact's 570 s (an earlier refresh is refused),
# well before its 600 s run out.
REFRESH_AT_S = 580.0


@dataclass
class TokenSet:
    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str


Observer = Callable[[str, str, dict[str, Any], dict[str, Any] | None], None]


class _Actor:
    """What both systems' actors do around a write when checks run side by side: the observer notes what
    the check owns (before the call too, since a write whose answer is lost may still land), and the
    shared mirror learns that a read must look again."""

    observer: Observer | None = None  # told of every write (action, path, values, the created record)
    mirror: Mirror | None = None  # in a batch: "every record" comes from the shared mirror
    system = ""  # the mirror's name for the system this actor writes to

    def _writing(self, path: str, values: dict[str, Any], *, update: bool = False) -> None:
        if self.observer is not None:
            self.observer("write", path, values, None)
        self._written(path, deleted=False, changed=values if update else None)

    def _written(self, path: str, *, deleted: bool, changed: dict[str, Any] | None = None) -> None:
        """Before a write and again once it is answered: a read from another thread in between must not
        leave the mirror holding the state before the write as fresh. `changed`: the values of an update
        (which touches only what it names), None for any other write."""
        if self.mirror is not None:
            self.mirror.touch(self.system, deleted=deleted, sets=self._sets_changed_by(path, changed))

    def _sets_changed_by(self, path: str, changed: dict[str, Any] | None = None) -> tuple[str, ...]:
        """The sync collections a write to `path` can change (none named: all of the system's)."""
        return ()

    def _created(self, path: str, values: dict[str, Any], record: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer("create", path, values, record)

    def _deleting(self, path: str) -> None:
        self._written(path, deleted=True)


class ExactActor(_Actor):
    """A user of Exact Online: authorises an app, then reads and writes records through the REST API."""

    system = "exact"

    def _sets_changed_by(self, path: str, changed: dict[str, Any] | None = None) -> tuple[str, ...]:
        """An entity's own set and its lines' (a line's write changes its header's amounts and Timestamp; a
        header's create or delete, its lines). An update of a header that names no lines changes the header
        alone."""
        for entity in ENTITIES.values():
            lines = entity.lines
            if path.lower() == entity.path.lower() and lines is not None and changed is not None \
                    and lines.nav not in changed:
                return (entity.sync_path,)
            if path.lower() in (entity.path.lower(), "" if lines is None else lines.path.lower()):
                return (entity.sync_path,) + (() if lines is None else (lines.sync_path,))
        return ()

    def __init__(self, client: httpx.Client, division: int, client_id: str, client_secret: str,
                 redirect_uri: str, *, token_source: Callable[[], str] | None = None,
                 scope: Scope | None = None) -> None:
        self.client = client
        self.division = division
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.token_source = token_source  # a sandbox's token (no authorization dance there)
        self.scope = scope  # in a sandbox: "every record" is every record changed during the run
        self._token: str | None = None

    def authorize(self) -> TokenSet:
        """The authorization-code dance a person does once when connecting an app."""
        response = self.client.get("/api/oauth2/auth", params={
            "client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code",
            "force_login": "0"}, follow_redirects=False)
        response.raise_for_status() if response.status_code >= 400 else None
        code = parse_qs(urlparse(response.headers["location"]).query)["code"][0]
        token = self.client.post("/api/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "client_id": self.client_id, "client_secret": self.client_secret})
        token.raise_for_status()
        body = token.json()
        return TokenSet(self.client_id, self.client_secret, body["access_token"], body["refresh_token"])

    def forget_token(self) -> None:
        """After a mock reset every token is gone; authorise again on the next call."""
        self._token = None

    def _headers(self) -> dict[str, str]:
        if self.token_source is not None:
            return {"Authorization": f"Bearer {self.token_source()}", "Accept": "application/json"}
        if self._token is None:
            self._token = self.authorize().access_token
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def url(self, path: str) -> str:
        return f"/api/v1/{self.division}/{path}"

    def create(self, path: str, values: dict[str, Any]) -> dict[str, Any]:
        self._writing(path, values)
        try:
            response = self.client.post(self.url(path), json=values,
                                        headers=self._headers() | {"Prefer": "return=representation"})
        finally:
            self._written(path, deleted=False)
        response.raise_for_status()
        row: dict[str, Any] = response.json()["d"]
        if self.scope is not None:
            entity = _entity_at(path)
            key = entity.key if entity is not None else "ID"
            self.scope.note_exact_created(path, str(row.get(key, "")))
        self._created(path, values, row)
        return row

    def update(self, path: str, key: str, values: dict[str, Any]) -> None:
        self._writing(path, values, update=True)
        try:
            response = self.client.put(self.url(f"{path}(guid'{key}')"), json=values, headers=self._headers())
        finally:
            self._written(path, deleted=False, changed=values)
        response.raise_for_status()

    def delete(self, path: str, key: str) -> None:
        self._deleting(path)
        try:
            response = self.client.delete(self.url(f"{path}(guid'{key}')"), headers=self._headers())
        finally:
            self._deleting(path)
        response.raise_for_status()

    def get(self, path: str, key: str) -> dict[str, Any] | None:
        if self.mirror is not None:  # in a batch: from the mirror, which reads only what changed
            entity = _entity_at(path)
            mirrored = self.mirror.exact_get(entity.sync_path, key) if entity is not None else None
            if mirrored is not None:
                return mirrored
        response = self.client.get(self.url(f"{path}(guid'{key}')"), headers=self._headers())
        if response.status_code == 404:
            return None
        response.raise_for_status()
        row: dict[str, Any] = response.json()["d"]
        return row

    def all(self, sync_path: str) -> list[dict[str, Any]]:
        """Every record of a set with its row version, through the sync API (in a sandbox: every record
        changed since the run began)."""
        if self.mirror is not None:
            return self.mirror.exact(sync_path)
        if self.scope is not None:
            return self.scope.exact_all(sync_path)
        return read_sync(self.client, self.url(sync_path), self._headers, 0)


def _entity_at(path: str) -> ExactEntity | None:
    """The declared Exact entity whose REST path this is (any case), if any."""
    return next((e for e in ENTITIES.values() if e.path.lower() == path.lower()), None)


class CustomcrmActor(_Actor):
    """A user of Customcrm, through its REST API."""

    system = "customcrm"

    def __init__(self, client: httpx.Client, api_key: str, *, scope: Scope | None = None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.scope = scope

    def create(self, path: str, values: dict[str, Any]) -> dict[str, Any]:
        self._writing(path, values)
        try:
            response = self.client.post(f"/api/v1/{path}", json=values, headers=self.headers)
        finally:
            self._written(path, deleted=False)
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        if self.scope is not None:
            self.scope.note_created(path, str(record["Id"]))
        self._created(path, values, record)
        return record

    def find(self, path: str, **equal: str) -> list[dict[str, Any]]:
        """Records whose fields equal these values (a filtered list, one page)."""
        response = self.client.get(f"/api/v1/{path}", params={"limit": 200, **equal}, headers=self.headers)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def update(self, path: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        self._writing(path, values)
        try:
            response = self.client.patch(f"/api/v1/{path}/{record_id}", json=values, headers=self.headers)
        finally:
            self._written(path, deleted=False)
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def delete(self, path: str, record_id: str) -> None:
        self._deleting(path)
        try:
            response = self.client.delete(f"/api/v1/{path}/{record_id}", headers=self.headers)
        finally:
            self._deleting(path)
        response.raise_for_status()

    def get(self, path: str, record_id: str) -> dict[str, Any] | None:
        if self.mirror is not None:  # in a batch: from the mirror, which reads only what changed
            mirrored = self.mirror.crm_get(path, record_id)
            if mirrored is not None:
                return mirrored
        response = self.client.get(f"/api/v1/{path}/{record_id}", headers=self.headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def all(self, path: str) -> list[dict[str, Any]]:
        """Every record of a collection (in a sandbox: every record created or changed during the run)."""
        if self.mirror is not None:
            return self.mirror.crm(path)
        if self.scope is not None:
            return self.scope.crm_all(path)
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            response = self.client.get(f"/api/v1/{path}", params=params, headers=self.headers)
            response.raise_for_status()
            body = response.json()
            rows.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return rows


class _Reauthorizing(httpx.BaseTransport):
    """Exact answers 401 once an access token has expired, ten minutes after it was issued, which for a token
    from a sandbox's config may be before the run began: the token is refreshed and the call sent again, once
    (the 401 changed nothing). A run longer than a token's life never fails on it."""

    def __init__(self, inner: httpx.BaseTransport, refresh: Callable[[str], str]) -> None:
        self.inner, self.refresh = inner, refresh

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        sent = request.headers.get("authorization", "")
        if response.status_code != 401 or not sent.startswith("Bearer ") or "/oauth2/" in request.url.path:
            return response
        response.read()
        response.close()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "authorization"]
        headers.append(("Authorization", f"Bearer {self.refresh(sent.removeprefix('Bearer '))}"))
        return self.inner.handle_request(httpx.Request(request.method, request.url, headers=headers,
                                                       content=request.content))

    def close(self) -> None:
        self.inner.close()


class _Counted(httpx.BaseTransport):
    """Counts the calls of the checklist's own clients on the mocks (a sandbox's are counted by its Guard)."""

    def __init__(self, inner: httpx.BaseTransport, calls: dict[str, int], system: str, lock: threading.Lock) -> None:
        self.inner, self.calls, self.system, self.lock = inner, calls, system, lock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls[self.system] = self.calls.get(self.system, 0) + 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class _Lent(httpx.BaseTransport):
    """A transport lent to one client, which never closes it: its owner does."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass


class _Network:
    """The one network transport of a `Systems` (its TLS context, its pool of connections), lent to every
    client that reaches a system over the network. Made for each client, a transport held a TLS context of its
    own, about a megabyte, and the checks side by side hold two clients each: a sandbox run at ci grew to
    900 MB. Connections are reused by every client, and as many are opened as are asked for at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transport: httpx.HTTPTransport | None = None

    def lend(self) -> httpx.BaseTransport:
        with self._lock:
            if self._transport is None:
                self._transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=None,
                                                                          max_keepalive_connections=None))
            return _Lent(self._transport)

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None


# Dependants before what they depend on.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _Server:
    server: uvicorn.Server
    thread: threading.Thread
    url: str


def _serve(app: Any) -> _Server:
    import uvicorn  # only `--target server` runs one: the in-process mocks need none of it at start-up

    port = _free_port()
    # Checks side by side wait at the barrier for the engine pass far longer than uvicorn keeps an idle
    # connection by default (5 s): a connection closed under a waiting client is reset on its next call.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_keep_alive=300)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"mock-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the mock server on 127.0.0.1:{port} did not start")
        time.sleep(0.02)
    return _Server(server, thread, f"http://127.0.0.1:{port}")


_EXACT_CLEANUP_ORDER = tuple(ENTITIES[name] for name in ("quotations", "salesorders", "contacts", "items", "accounts"))
_CRM_CLEANUP_ORDER = ("quotes", "orders", "contacts", "products", "customers", "users")


class RunCleaner:
    """Deletes what a sandbox run created since the last clean-up, dependants first; what cannot be deleted
    is noted in `scope.left`. The clean-up may spend the budget's reserve; once the checks have spent the
    rest, only the `final` clean-up runs."""

    def __init__(self, scope: Scope, exact: ExactActor, crm: CustomcrmActor, guards: list[Guard],
                 calls: dict[str, int]) -> None:
        self.scope, self.exact, self.crm, self.guards, self.calls = scope, exact, crm, guards, calls
        self._clean_at: dict[str, int] | None = None  # the checklist's calls when a whole clean-up last finished

    def clean(self, *, final: bool = False, sets: Collection[str] | None = None) -> None:
        """`sets` (Exact type names) limits the scan to the sets an example's flows write; the final clean-up
        scans every set."""
        scope = self.scope
        if not scope.exact_marks:
            return  # the run never began (its engine failed to settle): it created nothing
        if not final and any(guard.spent for guard in self.guards):
            return
        if sets is None and self._clean_at == self.calls:
            return  # a whole clean-up just ran and no call since: nothing new to find (a scan is 5 reads)
        for guard in self.guards:
            guard.cleaning = True
        try:
            for entity in _EXACT_CLEANUP_ORDER:
                if sets is not None and not final and entity.type_name not in sets:
                    continue
                for row in scope.exact_all(entity.sync_path):
                    if scope.created_during_run(row):
                        self._remove(self.exact.delete, entity.path, str(row["ID"]), f"Exact {entity.type_name}")
            for i, path in enumerate(_CRM_CLEANUP_ORDER):  # a check may have deleted some already:
                alive = {str(r["Id"]) for r in scope.crm_all(path, refresh=i == 0)}
                for record_id in scope.created.pop(path, []):
                    if record_id in alive:
                        self._remove(self.crm.delete, path, record_id, f"Customcrm {path}")
            self._clean_at = dict(self.calls) if sets is None else None
        except BudgetExhausted as exc:
            if final:
                scope.left.append(f"the clean-up stopped: {exc}; records whose merge keys carry the run id "
                                  f"{scope.run_id} may remain")
        finally:
            for guard in self.guards:
                guard.cleaning = False

    def _remove(self, delete: Callable[[str, str], None], path: str, key: str, label: str) -> None:
        try:
            delete(path, key)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                self.scope.left.append(f"{label} {key}: {exc.response.status_code} {exc.response.text[:200]}")
            return
        self.scope.removed += 1


CUSTOMCRM_SEED_OFFSET = 7_919  # Customcrm's generator is seeded apart from Exact's, so no id exists in both


@dataclass
class Systems:
    """Both mocks for one run: how to reach them (for the engine) and how to act on them (for checks)."""

    target: str = "inproc"
    exact_url: str = "http://exact.test"
    customcrm_url: str = "http://customcrm.test"
    division: int = DEFAULT_DIVISION
    api_key: str = DEFAULT_API_KEY
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    _transports: dict[str, httpx.BaseTransport | None] = field(default_factory=dict)
    _servers: list[_Server] = field(default_factory=list)
    _clients: list[httpx.Client] = field(default_factory=list)
    _network: _Network = field(default_factory=_Network)
    _admin_clients: dict[str, httpx.Client] = field(default_factory=dict)

    exact_state: ExactState | None = None
    customcrm_state: CustomcrmState | None = None

    # A sandbox: its settings, what the run may see and must clean up, and the calls the checklist made.
    settings: SandboxSettings | None = None
    scope: Scope | None = None
    calls: dict[str, int] = field(default_factory=dict)
    _guards: list[Guard] = field(default_factory=list)
    # What each system's answers said of its rate limits (shared by all of the checklist's clients).
    limits: dict[str, LimitState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _exact_tokens: dict[str, Any] = field(default_factory=dict)
    _token_lock: threading.Lock = field(default_factory=threading.Lock)
    # On the mocks, one authorisation serves all of the checklist's actors until a reset forgets it (each
    # actor used to authorise on its first call: two calls for every check's context, a fifth of a batch's).
    _mock_token: str | None = None
    _token_actor: ExactActor | None = None
    _cleaner: RunCleaner | None = None
    mirror: Mirror | None = None
    # Held while a check finds or creates the Customcrm user matching a sandbox's Exact user (shared by all).
    users_lock: threading.RLock = field(default_factory=threading.RLock)
    # The mocks' clocks as the checks side by side share them (`Clocks`): held while a check moves them or
    # writes at one staged instant, and how many checks hold them stopped.
    clock_lock: threading.RLock = field(default_factory=threading.RLock)
    clock_holds: int = 0
    # A sandbox's Exact users, read once (the API cannot create or change any).
    exact_user_list: list[dict[str, Any]] | None = None

    @classmethod
    def sandbox(cls, settings: SandboxSettings, run_id: str,
                transports: dict[str, httpx.BaseTransport | None] | None = None) -> Systems:
        """Real systems named by a config: no admin plane, every call guarded and counted. (`transports`:
        in-process mocks standing in for them, see `simulation`.)"""
        cfg = settings.config
        systems = cls("sandbox", exact_url=cfg.exact.base_url, customcrm_url=cfg.customcrm.base_url,
                      division=cfg.exact.division, api_key=cfg.customcrm.api_key, client_id=cfg.exact.client_id,
                      client_secret=cfg.exact.client_secret, settings=settings)
        systems._transports = transports or {"exact": None, "customcrm": None}
        systems._exact_tokens = {"access": cfg.exact.access_token, "refresh": cfg.exact.refresh_token,
                                 "issued": time.time() if cfg.exact.access_token else 0.0}
        systems.scope = Scope(run_id, systems.client("exact"), systems._exact_auth, cfg.exact.division,
                              systems.client("customcrm"), {"Authorization": f"Bearer {cfg.customcrm.api_key}"})
        if settings.source:
            systems.scope.manifest = RunManifest(manifest_dir(settings.source), run_id)
        for guard in systems._guards:
            guard.owed = systems.scope.cleanup_cost
        return systems

    @classmethod
    def simulation(cls, run_id: str, seed: int | None = None) -> Systems:
        """A sandbox as the checklist sees one (safe mode, guarded, scoped), made of in-process mocks with two
        Exact users: what a sandbox run will cost is measured on it (`talkcheck run --plan`)."""
        mocks = cls.start("inproc", seed)
        mocks.admin("exact", "seed", {"users": [{"Email": "ida@sandbox.example", "FullName": "Ida de Vries"},
                                                {"Email": "ole@sandbox.example", "FullName": "Ole Nordmann"}]})
        tokens = mocks.exact_actor().authorize()
        config = SyncConfig(EngineConfig(), CustomcrmConfig(mocks.customcrm_url, mocks.api_key),
                            ExactConfig(mocks.exact_url, mocks.division, tokens.client_id, tokens.client_secret,
                                        tokens.refresh_token, tokens.access_token))
        transports = mocks._transports  # its clients stay open: closing one would close the shared transport
        systems = cls.sandbox(SandboxSettings(config, call_budget=10**9), run_id, transports)
        systems.target = "simulation"
        return systems

    @property
    def safe(self) -> bool:
        """Safe mode: a sandbox gets no negative tests, no faults and no resets."""
        return self.settings is not None

    @property
    def secrets(self) -> list[str]:
        values = [*(self.settings.secrets if self.settings else []), self._exact_tokens.get("access") or "",
                  self._exact_tokens.get("refresh") or ""]
        return [v for v in values if v]

    def begin(self) -> None:
        """Note where every Exact collection and the Customcrm feed stand (again after the engine settled)."""
        assert self.scope is not None
        paths = [p for e in ENTITIES.values() for p in (e.sync_path, e.lines.sync_path if e.lines else None) if p]
        self.scope.begin(paths)

    def exact_token(self, *, expired: str | None = None) -> str:
        """The checklist's own Exact access token in a sandbox, refreshed shortly before it expires: Exact's
        last ten minutes, and a refresh within 570 s of the previous one is refused, so between the two.
        `expired`: a token Exact has just refused (401); unless another thread has refreshed it meanwhile,
        refresh now (a token from the config may have been issued long before the run began)."""
        with self._token_lock:
            return self._current_exact_token(expired)

    def _current_exact_token(self, expired: str | None) -> str:
        tokens = self._exact_tokens
        fresh = tokens.get("access") and (not tokens.get("refresh") or time.time() - tokens["issued"] < REFRESH_AT_S)
        if expired is not None and tokens.get("access") == expired and tokens.get("refresh"):
            fresh = False
        if not fresh:
            response = self._admin_client("exact").post("/api/oauth2/token", data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh"], "client_id": self.client_id,
                "client_secret": self.client_secret})
            if response.status_code in (400, 401, 403):  # the grant itself refused: the config's to fix
                raise ConfigError(f"Exact refused to refresh the checklist's access token (HTTP "
                                  f"{response.status_code}); check the client id, secret and refresh token the "
                                  "sandbox config names, or authorise the app again")
            response.raise_for_status()
            body = response.json()
            tokens.update(access=body["access_token"], refresh=body.get("refresh_token") or tokens["refresh"],
                          issued=time.time())
        return str(tokens["access"])

    def exact_tokens(self) -> TokenSet:
        """Exact tokens to hand an engine under test: a new authorisation on the mocks (after a reset the old
        ones are gone); in a sandbox, the checklist's current ones."""
        if not self.safe:
            return self.exact_actor().authorize()
        access = self.exact_token()
        return TokenSet(self.client_id, self.client_secret, access, str(self._exact_tokens.get("refresh") or ""))

    def engine_exact_tokens(self) -> TokenSet:
        """The Exact app to hand an engine under test: in a sandbox whose config names one, the engine's own
        ([engine_exact]), whose calls do not count against the checklist's; else as `exact_tokens`."""
        own = self.settings.engine_exact if self.settings is not None else None
        if own is None:
            return self.exact_tokens()
        return TokenSet(own.client_id, own.client_secret, own.access_token or "", own.refresh_token or "")

    def _exact_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.exact_token()}", "Accept": "application/json"}

    @classmethod
    def start(cls, target: str = "inproc", seed: int | None = None) -> Systems:
        """The built-in mocks, in this process or served on loopback ports. Given the run's `seed`, the mocks
        draw their ids from it too (and again from it after each reset), so a run replays whole."""
        exact_state = ExactState(seed=seed)
        crm_state = CustomcrmState(seed=None if seed is None else seed + CUSTOMCRM_SEED_OFFSET)  # no shared ids
        exact_app, crm_app = create_exact_app(exact_state), create_customcrm_app(crm_state)
        if target == "inproc":
            systems = cls(target, exact_state=exact_state, customcrm_state=crm_state)
            systems._transports = {"exact": InProcessTransport(exact_app), "customcrm": InProcessTransport(crm_app)}
            return systems
        if target == "server":
            exact_server, crm_server = _serve(exact_app), _serve(crm_app)
            systems = cls(target, exact_url=exact_server.url, customcrm_url=crm_server.url)
            systems._servers = [exact_server, crm_server]
            systems._transports = {"exact": None, "customcrm": None}
            return systems
        raise ValueError(f"unknown target {target!r}")

    def client(self, system: str, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None, *,
               counted: bool = True) -> httpx.Client:
        """A fresh HTTP client for one system (the engine and the actors each get their own); `wrap` puts a
        transport of the caller's around the in-process one (to inject client-side faults). Calls of a
        `counted` client are the checklist's own (`calls`), and against a sandbox they are guarded and paced;
        an engine's clients (talkcheck's own, driven in this process) are not counted."""
        base = self.exact_url if system == "exact" else self.customcrm_url
        transport = self._transports.get(system) or self._network.lend()
        if wrap is not None:
            transport = wrap(transport)
        if self.settings is None and counted:
            transport = _Counted(transport, self.calls, system, self._lock)
            if system == "exact":  # the shared token may outlive its ten minutes of a mock's clock
                transport = _Reauthorizing(transport, lambda old: self._mock_exact_token(expired=old))
        if self.settings is not None and counted:
            guard = Guard(transport, self.settings.hosts, self.settings.call_budget, self.calls, system, self._lock)
            self._guards.append(guard)
            if self.scope is not None:
                guard.owed = self.scope.cleanup_cost
            state = self.limits.setdefault(system, LimitState(system))
            transport = Pacer(guard, state)  # every attempt, a 429 waited out included, is counted
            if system == "exact":
                transport = _Reauthorizing(transport, lambda old: self.exact_token(expired=old))
        client = HttpClient(base_url=base, transport=transport, timeout=30)
        self._clients.append(client)
        return client

    def transport(self, system: str) -> httpx.BaseTransport | None:
        """The in-process transport of a mock (None when it runs under uvicorn)."""
        return self._transports.get(system)

    def exact_actor(self) -> ExactActor:
        if self.safe:
            actor = ExactActor(self.client("exact"), self.division, self.client_id, self.client_secret, "",
                               token_source=self.exact_token, scope=self.scope)
        else:
            actor = ExactActor(self.client("exact"), self.division, self.client_id, self.client_secret,
                               DEFAULT_REDIRECT_URI, token_source=self._mock_exact_token)
        actor.mirror = self.mirror
        return actor

    def customcrm_actor(self) -> CustomcrmActor:
        actor = CustomcrmActor(self.client("customcrm"), self.api_key, scope=self.scope)
        actor.mirror = self.mirror
        return actor

    def start_mirror(self) -> Mirror:
        """One mirror of both systems for the checks that share them (until `stop_mirror`)."""
        exact, crm = self.exact_actor(), self.customcrm_actor()
        scope = self.scope
        self.mirror = Mirror(exact.client, exact.url, exact._headers, crm.client, crm.headers,
                             exact_marks=dict(scope.exact_marks) if scope is not None else None,
                             crm_cursor=scope.crm_cursor if scope is not None else "")
        return self.mirror

    def stop_mirror(self) -> None:
        self.mirror = None

    def cleanup(self, *, final: bool = False, sets: Collection[str] | None = None) -> None:
        """In a sandbox: delete what the run created since the last clean-up (`RunCleaner`)."""
        if self.scope is None:
            return
        if self._cleaner is None:
            self._cleaner = RunCleaner(self.scope, self.exact_actor(), self.customcrm_actor(), self._guards,
                                       self.calls)
        self._cleaner.clean(final=final, sets=sets)

    def _admin_client(self, system: str) -> httpx.Client:
        """One cached client per system, for the admin plane (or a sandbox's token refreshes); closing it
        would close the in-process transport."""
        client = self._admin_clients.get(system)
        if client is None:
            # On the mocks the admin plane is not the checklist's traffic; in a sandbox this client refreshes
            # the checklist's token, a call like any other.
            client = self._admin_clients[system] = self.client(system, counted=self.safe)
        return client

    def admin(self, system: str, action: str, payload: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> Any:
        """Call a mock's admin plane (a sandbox has none: safe mode)."""
        if self.safe:
            raise RuntimeError(f"safe mode: a sandbox has no admin plane (asked for {system} {action})")
        client = self._admin_client(system)
        if payload is None and action in ("state", "journal", "stats", "faults"):
            response = client.get(f"/_admin/{action}", params=params)
        else:
            response = client.post(f"/_admin/{action}", json=payload or {})
        response.raise_for_status()
        if action == "seed" and payload and payload.get("records") and self.mirror is not None:
            self.mirror.touch(system)  # records written past the actors, which tell the mirror of their own
        return response.json() if response.content else None

    def set_faults(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        """The same fault rules in both mocks (each mock draws from its own seeded generator)."""
        for system in ("exact", "customcrm"):
            self.admin(system, "faults", {"rules": rules, "seed": seed})

    def clear_faults(self) -> None:
        for system in ("exact", "customcrm"):
            self._admin_client(system).delete("/_admin/faults").raise_for_status()

    def reset(self) -> None:
        self.admin("exact", "reset")
        self.admin("customcrm", "reset")
        with self._token_lock:
            self._mock_token = None  # a reset forgets every token

    def _mock_exact_token(self, *, expired: str | None = None) -> str:
        """The checklist's access token on the mocks: authorised once, again after a reset or once the mock
        has refused it (`expired`)."""
        with self._token_lock:
            if self._mock_token is None or self._mock_token == expired:
                if self._token_actor is None:  # one client for every authorisation of the run (a counted one)
                    self._token_actor = ExactActor(self.client("exact"), self.division, self.client_id,
                                                   self.client_secret, DEFAULT_REDIRECT_URI)
                self._mock_token = self._token_actor.authorize().access_token
            return self._mock_token

    def journal(self, system: str, *, path_contains: str = "", methods: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """A mock's journal; narrowed on the mock's side to paths holding `path_contains` and to `methods`."""
        entries: list[dict[str, Any]] = self.admin(system, "journal", params={
            "path_contains": path_contains, "methods": ",".join(methods)})
        return entries

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        for transport in self._transports.values():
            if transport is not None:
                transport.close()
        self._network.close()
        for server in self._servers:
            server.server.should_exit = True
            server.thread.join(timeout=10)
