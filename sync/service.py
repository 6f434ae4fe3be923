"""Running the reference engine between two configured systems: connectors, token storage, passes.

The Exact tokens live in the state file next to the links: every rotated refresh token is written before
it is used again, and a restarted engine reuses a still-valid access token instead of refreshing early
(Exact refuses a refresh within 570 seconds of the last one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from sync.config import SyncConfig
from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector, ExactTokens
from sync.dataflow import load_dataflow
from sync.engine import Engine, SyncReport
from sync.errors import ConfigError
from sync.http import HttpClient, HttpPolicy
from sync.store import LinkStore

__all__ = ["build_engine", "run_service", "scrub"]

_TOKEN_KEY = "exact:tokens"


def scrub(text: str, secrets: list[str]) -> str:
    """Output never shows a secret."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def build_engine(config: SyncConfig, *, policy: HttpPolicy | None = None,
                 transports: dict[str, httpx.BaseTransport] | None = None, first_sync: str = "create") -> Engine:
    doc = load_dataflow(config.engine.document) if config.engine.document else load_dataflow()
    store = LinkStore(config.engine.state)
    saved = store.cursor(_TOKEN_KEY)
    state = json.loads(saved) if saved else {}
    refresh_token = state.get("refresh_token") or config.exact.refresh_token or ""
    if not refresh_token and not config.exact.access_token:
        raise ConfigError("no Exact refresh token: set the variable named by [exact] refresh_token_env once; "
                          "rotated tokens are kept in the state file afterwards")

    def persist(tokens: ExactTokens) -> None:
        store.set_cursor(_TOKEN_KEY, json.dumps({"refresh_token": tokens.refresh_token,
                                                 "access_token": tokens.access_token,
                                                 "issued_at": tokens.issued_at}))

    def reload() -> tuple[str | None, str, float] | None:
        saved_now = store.cursor(_TOKEN_KEY)
        if not saved_now:
            return None
        data = json.loads(saved_now)
        return data.get("access_token"), str(data["refresh_token"]), float(data.get("issued_at", 0))

    if state:
        access_token, issued_at = state.get("access_token"), float(state.get("issued_at", 0))
    else:  # first run: a fresh access token handed over with the refresh token is used as it is
        access_token, issued_at = config.exact.access_token, (time.time() if config.exact.access_token else 0.0)
    tokens = ExactTokens(config.exact.client_id, config.exact.client_secret, refresh_token,
                         access_token=access_token, issued_at=issued_at)
    tokens.on_rotate = lambda _token: persist(tokens)
    if not state and access_token:
        # Keep the handed-over token with the time it was first seen, so that later runs (cron, one
        # process per pass) know its age and refresh it in time instead of each taking it as new.
        store.exclusive(lambda: None if store.cursor(_TOKEN_KEY) else persist(tokens))
    tokens.exclusive = store.exclusive
    tokens.reload = reload
    transports = transports or {}
    timeout = httpx.Timeout(config.engine.timeout)
    crm_client = HttpClient(base_url=config.customcrm.base_url, timeout=timeout, transport=transports.get("customcrm"))
    exact_client = HttpClient(base_url=config.exact.base_url, timeout=timeout, transport=transports.get("exact"))
    crm = CustomcrmConnector(crm_client, config.customcrm.api_key, policy)
    exact = ExactConnector(exact_client, config.exact.division, tokens, policy)
    flows = list(config.engine.flows) if config.engine.flows else None
    return Engine(doc, crm, exact, store, priority=config.engine.priority, flows=flows, first_sync=first_sync)


def run_service(config: SyncConfig, *, once: bool, full: bool = False, out: Callable[[str], None] = print,
                sleep: Callable[[float], None] = time.sleep, first_sync: str = "create",
                release_held: bool = False) -> SyncReport:
    """Run passes until stopped (or one pass with `once`); prints each pass's report, secrets scrubbed.

    With `full`, the first pass re-reads everything (after lost or expired cursors). `first_sync` says what
    the first pass does on a state that knows nothing (see `Engine`).
    Each pass holds the state file, so two engines on one config (cron overlapping a slow pass) take turns.
    """
    engine = build_engine(config, first_sync=first_sync)
    try:  # the state file is closed however the service ends: its write-ahead log folded back in
        if release_held:
            out(f"released {engine.store.release_held()} held records: the next pass creates them")
        while True:
            with engine.store.running(config.engine.lock_wait):
                report = engine.run_pass(full=full)
            full = False
            out(scrub(report.summary(), config.secrets))
            if once:
                return report
            sleep(config.engine.interval)
    finally:
        engine.store.close()
