"""The sync engine under test, behind one small interface: reset it, and run one pass."""

from __future__ import annotations

from typing import Any, Protocol

from conformance.systems import Systems
from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector, ExactTokens
from sync.dataflow import Dataflow
from sync.engine import Engine, SyncReport
from sync.http import HttpPolicy
from sync.store import LinkStore

__all__ = ["BuiltinEngine", "EngineDriver"]


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
        tokens = self.systems.exact_actor().authorize()
        self.store = LinkStore(":memory:")
        crm = CustomcrmConnector(self._crm_client, self.systems.api_key, self.policy)
        exact = ExactConnector(self._exact_client, self.systems.division,
                               ExactTokens(tokens.client_id, tokens.client_secret, tokens.refresh_token,
                                           access_token=tokens.access_token, issued_at=_now()),
                               self.policy)
        self.engine = self.engine_class(self.doc, crm, exact, self.store, **self.engine_options)

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


def _now() -> float:
    import time

    return time.time()
