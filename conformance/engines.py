"""The sync engine under test, behind one small interface: reset it, and run one pass."""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx

from conformance.systems import Systems
from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector, ExactTokens
from sync.dataflow import Dataflow
from sync.engine import Engine, SyncReport
from sync.http import HttpPolicy
from sync.store import LinkStore

__all__ = ["BuiltinEngine", "EngineDriver", "EngineKilled", "connect_engine"]


class EngineKilled(BaseException):
    """The engine was stopped mid-pass, as by SIGKILL: nothing in the engine may catch this."""


class EngineDriver(Protocol):
    name: str

    def reset(self) -> None: ...

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        """One sync pass; with `interrupt_after`, the engine is killed after that many requests (or, for an
        external command, that many tens of milliseconds) and the pass does not finish."""
        ...

    def close(self) -> None: ...


class _KillSwitch(httpx.BaseTransport):
    """Counts an engine's requests and, when armed, kills the engine at the n-th one (before it is sent)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.remaining: int | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.remaining is not None:
            if self.remaining <= 0:
                raise EngineKilled()
            self.remaining -= 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class BuiltinEngine:
    """talkcheck's reference engine, run in this process with a fresh link store per example.

    `engine_class` lets a test swap in a variant of the engine (the planted bugs).
    """

    name = "builtin"

    def __init__(self, doc: Dataflow, systems: Systems, engine_class: type[Engine] = Engine,
                 **engine_options: Any) -> None:
        self.doc = doc
        self.systems = systems
        self.engine_class = engine_class
        self.engine_options = engine_options
        self.policy = HttpPolicy(attempts=4, base_delay=0.01, max_delay=0.2)
        self._switches: list[_KillSwitch] = []
        self._crm_client = systems.client("customcrm", wrap=self._switch)
        self._exact_client = systems.client("exact", wrap=self._switch)
        self.engine: Engine | None = None
        self.store: LinkStore | None = None

    def _switch(self, inner: httpx.BaseTransport) -> httpx.BaseTransport:
        switch = _KillSwitch(inner)
        self._switches.append(switch)
        return switch

    def reset(self) -> None:
        if self.store is not None:
            self.store.close()
        self.store = None
        self._start()

    def _start(self) -> None:
        """A new engine process, as it were: fresh memory, the same link store (when there is one)."""
        self.engine = connect_engine(self.doc, self.systems, self._crm_client, self._exact_client,
                                     policy=self.policy, engine_class=self.engine_class, store=self.store,
                                     **self.engine_options)
        self.store = self.engine.store

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        """One pass over `flows` (the flows chosen at construction when None)."""
        if self.engine is None:
            self.reset()
        assert self.engine is not None
        if flows is not None:
            self.engine.selected = flows
        for switch in self._switches:
            switch.remaining = interrupt_after
        try:
            return self.engine.run_pass()
        except EngineKilled:
            selected = self.engine.selected
            self._start()  # restarted after the kill, with what the store had committed
            self.engine.selected = selected
            return None
        finally:
            for switch in self._switches:
                switch.remaining = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def connect_engine(doc: Dataflow, systems: Systems, crm_client: httpx.Client, exact_client: httpx.Client, *,
                   policy: HttpPolicy, engine_class: type[Engine] = Engine, store: LinkStore | None = None,
                   **options: Any) -> Engine:
    """An engine with a fresh in-memory link store, wired to both systems through the given clients; the app
    is authorised in Exact first, as a person connecting it would."""
    tokens = systems.exact_actor().authorize()
    crm = CustomcrmConnector(crm_client, systems.api_key, policy)
    exact = ExactConnector(exact_client, systems.division,
                           ExactTokens(tokens.client_id, tokens.client_secret, tokens.refresh_token,
                                       access_token=tokens.access_token, issued_at=time.time()), policy)
    return engine_class(doc, crm, exact, store if store is not None else LinkStore(":memory:"), **options)
