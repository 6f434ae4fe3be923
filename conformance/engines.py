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

__all__ = ["BuiltinEngine", "EngineDriver", "connect_engine"]


class EngineDriver(Protocol):
    name: str

    def reset(self) -> None: ...

    def sync(self, flows: list[str] | None = None) -> SyncReport | None: ...

    def close(self) -> None: ...


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
        self._crm_client = systems.client("customcrm")
        self._exact_client = systems.client("exact")
        self.engine: Engine | None = None
        self.store: LinkStore | None = None

    def reset(self) -> None:
        if self.store is not None:
            self.store.close()
        self.engine = connect_engine(self.doc, self.systems, self._crm_client, self._exact_client,
                                     policy=self.policy, engine_class=self.engine_class, **self.engine_options)
        self.store = self.engine.store

    def sync(self, flows: list[str] | None = None) -> SyncReport:
        """One pass over `flows` (the flows chosen at construction when None)."""
        if self.engine is None:
            self.reset()
        assert self.engine is not None
        if flows is not None:
            self.engine.selected = flows
        return self.engine.run_pass()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def connect_engine(doc: Dataflow, systems: Systems, crm_client: httpx.Client, exact_client: httpx.Client, *,
                   policy: HttpPolicy, engine_class: type[Engine] = Engine, **options: Any) -> Engine:
    """An engine with a fresh in-memory link store, wired to both systems through the given clients; the app
    is authorised in Exact first, as a person connecting it would."""
    tokens = systems.exact_actor().authorize()
    crm = CustomcrmConnector(crm_client, systems.api_key, policy)
    exact = ExactConnector(exact_client, systems.division,
                           ExactTokens(tokens.client_id, tokens.client_secret, tokens.refresh_token,
                                       access_token=tokens.access_token, issued_at=time.time()), policy)
    return engine_class(doc, crm, exact, LinkStore(":memory:"), **options)
