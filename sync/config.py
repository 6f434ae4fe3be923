"""The reference engine's configuration: a TOML file that names both systems; secrets stay in the environment.

Example ``sync.toml``::

    [engine]
    state = "talkcheck-sync.sqlite3"     # links, snapshots, cursors and tokens
    priority = "customcrm"               # who wins when both sides changed at the same time
    interval = 60                         # seconds between passes without --once
    lock_wait = 600                       # seconds to wait for another engine on the same state file

    [customcrm]
    base_url = "https://crm.example.com"
    api_key_env = "CUSTOMCRM_API_KEY"

    [exact]
    base_url = "https://start.exactonline.nl"
    division = 499156
    client_id_env = "EXACT_CLIENT_ID"
    client_secret_env = "EXACT_CLIENT_SECRET"
    refresh_token_env = "EXACT_REFRESH_TOKEN"  # the first one; rotated tokens are kept in the state file
    access_token_env = "EXACT_ACCESS_TOKEN"    # optional: a fresh one that goes with it

    [checklist]                               # only read by `talkcheck run --target sandbox --config`
    call_budget = 5000                        # the most calls the checklist itself may make
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.errors import ConfigError

__all__ = [
    "CustomcrmConfig",
    "ENV_VARIABLES",
    "EngineConfig",
    "ExactConfig",
    "KNOWN_KEYS",
    "SyncConfig",
    "check_keys",
    "config_from_env",
    "exact_app",
    "load_config",
]

# The variables an engine under test gets from `talkcheck run --engine cmd:/poll:` (and that
# `talkcheck sync --from-env` reads): name -> what it holds.
ENV_VARIABLES: dict[str, str] = {
    "TALKCHECK_CUSTOMCRM_BASE_URL": "Customcrm's address, e.g. http://127.0.0.1:8766",
    "TALKCHECK_CUSTOMCRM_API_KEY": "a Customcrm API key (secret)",
    "TALKCHECK_EXACT_BASE_URL": "Exact Online's address (the part before /api)",
    "TALKCHECK_EXACT_DIVISION": "the Exact division number",
    "TALKCHECK_EXACT_CLIENT_ID": "the Exact app's client id",
    "TALKCHECK_EXACT_CLIENT_SECRET": "the Exact app's client secret (secret)",
    "TALKCHECK_EXACT_REFRESH_TOKEN": "a refresh token for that app (secret; rotates on use)",
    "TALKCHECK_EXACT_ACCESS_TOKEN": "a fresh access token that goes with it (secret; valid 10 minutes)",
    "TALKCHECK_DOC": "the dataflow document the checklist runs",
    "TALKCHECK_FLOWS": "the flows to sync in this pass, comma-separated",
    "TALKCHECK_STATE_DIR": "a directory for the engine's state; a new one whenever the systems are reset",
    "TALKCHECK_PRIORITY": "who wins edits at the same instant: customcrm",
    "TALKCHECK_RUN_ID": "the checklist run's id",
}


@dataclass(frozen=True)
class CustomcrmConfig:
    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"CustomcrmConfig(base_url={self.base_url!r}, api_key=***)"


@dataclass(frozen=True)
class ExactConfig:
    base_url: str
    division: int
    client_id: str
    client_secret: str
    refresh_token: str | None
    access_token: str | None = None  # a fresh one, handed over with the refresh token (saves a refresh)

    def __repr__(self) -> str:
        return f"ExactConfig(base_url={self.base_url!r}, division={self.division}, secrets=***)"


@dataclass(frozen=True)
class EngineConfig:
    state: str = "talkcheck-sync.sqlite3"
    priority: str = "customcrm"
    interval: float = 60.0
    document: str | None = None
    timeout: float = 30.0
    flows: tuple[str, ...] | None = None  # only these flows (all of the document's when None)
    lock_wait: float = 600.0  # how long a pass waits for another engine on the same state file


@dataclass(frozen=True)
class SyncConfig:
    engine: EngineConfig
    customcrm: CustomcrmConfig
    exact: ExactConfig

    @property
    def secrets(self) -> list[str]:
        """Every secret value, so output can be scrubbed of them."""
        values = [self.customcrm.api_key, self.exact.client_secret, self.exact.refresh_token or "",
                  self.exact.access_token or ""]
        return [v for v in values if v]


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: the section [{name}] is missing")
    return section


def _secret(section: dict[str, Any], key: str, name: str, path: Path, *, required: bool = True) -> str | None:
    env_name = section.get(f"{key}_env")
    if env_name is None:
        if key in section:
            raise ConfigError(f"{path}: [{name}] {key} must not be written in the file; name an environment "
                              f"variable with {key}_env")
        if required:
            raise ConfigError(f"{path}: [{name}] needs {key}_env, the environment variable that holds {key}")
        return None
    value = os.environ.get(str(env_name))
    if not value and required:
        raise ConfigError(f"{path}: the environment variable {env_name} ([{name}] {key}) is not set")
    return value or None


def _url(section: dict[str, Any], name: str, path: Path) -> str:
    url = section.get("base_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: [{name}] base_url must be an http(s) URL")
    return url.rstrip("/")


def exact_app(data: dict[str, Any], name: str, path: Path, base: ExactConfig) -> ExactConfig:
    """Another Exact app in the same division as `base` (the section `name`: its client and tokens)."""
    section = _section(data, name, path)
    access = _secret(section, "access_token", name, path, required=False)
    refresh = _secret(section, "refresh_token", name, path, required=False)
    if not access and not refresh:
        raise ConfigError(f"{path}: [{name}] needs refresh_token_env or access_token_env")
    return ExactConfig(base.base_url, base.division, str(_secret(section, "client_id", name, path)),
                       str(_secret(section, "client_secret", name, path)), refresh, access)


_APP_KEYS = frozenset({"client_id_env", "client_secret_env", "refresh_token_env", "access_token_env"})
# Every key a config file may hold, per section: a typo is refused with the nearest key, never ignored.
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "engine": frozenset({"state", "priority", "interval", "document", "timeout", "lock_wait"}),
    "customcrm": frozenset({"base_url", "api_key_env"}),
    "exact": frozenset({"base_url", "division"}) | _APP_KEYS,
    "engine_exact": _APP_KEYS,
    "checklist": frozenset({"call_budget"}),
}


def _nearest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_keys(data: dict[str, Any], path: Path) -> None:
    """Refuse sections and keys the config does not know, naming the nearest known one."""
    for section, body in data.items():
        if section not in KNOWN_KEYS:
            raise ConfigError(f"{path}: unknown section [{section}]{_nearest(section, KNOWN_KEYS)}; known: "
                              + ", ".join(f"[{name}]" for name in KNOWN_KEYS))
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{section}] must be a section, not a value")
        for key in body:
            if f"{key}_env" in KNOWN_KEYS[section]:
                raise ConfigError(f"{path}: [{section}] {key} must not be written in the file; name an environment "
                                  f"variable with {key}_env")
            if key not in KNOWN_KEYS[section]:
                raise ConfigError(f"{path}: [{section}] has no key {key!r}{_nearest(key, KNOWN_KEYS[section])}; "
                                  f"known: {', '.join(sorted(KNOWN_KEYS[section]))}")


def _number(section: dict[str, Any], key: str, default: float, name: str, path: Path) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{path}: [{name}] {key} must be a number of seconds, not {value!r}")
    return float(value)


def load_config(path: str | Path) -> SyncConfig:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config {p}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    check_keys(data, p)
    engine = data.get("engine", {})
    crm = _section(data, "customcrm", p)
    exact = _section(data, "exact", p)
    priority = str(engine.get("priority", "customcrm"))
    if priority not in ("customcrm", "exact"):
        raise ConfigError(f"{p}: [engine] priority is 'customcrm' or 'exact', not {priority!r}")
    try:
        division = int(exact["division"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: [exact] division must be a number") from exc
    state = str(engine.get("state", "talkcheck-sync.sqlite3"))
    if not Path(state).is_absolute():
        state = str((p.parent / state).resolve())
    return SyncConfig(
        engine=EngineConfig(state=state, priority=priority, interval=_number(engine, "interval", 60, "engine", p),
                            document=engine.get("document"), timeout=_number(engine, "timeout", 30, "engine", p),
                            lock_wait=_number(engine, "lock_wait", 600, "engine", p)),
        customcrm=CustomcrmConfig(_url(crm, "customcrm", p), str(_secret(crm, "api_key", "customcrm", p))),
        exact=ExactConfig(_url(exact, "exact", p), division, str(_secret(exact, "client_id", "exact", p)),
                          str(_secret(exact, "client_secret", "exact", p)),
                          _secret(exact, "refresh_token", "exact", p, required=False),
                          _secret(exact, "access_token", "exact", p, required=False)),
    )


def config_from_env(environ: dict[str, str] | None = None) -> SyncConfig:
    """The configuration an engine under test is handed by the checklist, in TALKCHECK_* variables."""
    env = dict(os.environ if environ is None else environ)

    def need(name: str) -> str:
        value = env.get(name)
        if not value:
            raise ConfigError(f"the environment variable {name} ({ENV_VARIABLES[name]}) is not set")
        return value

    try:
        division = int(need("TALKCHECK_EXACT_DIVISION"))
    except ValueError as exc:
        raise ConfigError("TALKCHECK_EXACT_DIVISION must be a number") from exc
    priority = env.get("TALKCHECK_PRIORITY") or "customcrm"
    if priority not in ("customcrm", "exact"):
        raise ConfigError(f"TALKCHECK_PRIORITY is 'customcrm' or 'exact', not {priority!r}")
    state_dir = Path(env.get("TALKCHECK_STATE_DIR") or ".")
    flows = tuple(f for f in (env.get("TALKCHECK_FLOWS") or "").split(",") if f) or None
    return SyncConfig(
        engine=EngineConfig(state=str(state_dir / "talkcheck-sync.sqlite3"), priority=priority,
                            document=env.get("TALKCHECK_DOC") or None, flows=flows, interval=1.0),
        customcrm=CustomcrmConfig(need("TALKCHECK_CUSTOMCRM_BASE_URL").rstrip("/"),
                                  need("TALKCHECK_CUSTOMCRM_API_KEY")),
        exact=ExactConfig(need("TALKCHECK_EXACT_BASE_URL").rstrip("/"), division, need("TALKCHECK_EXACT_CLIENT_ID"),
                          need("TALKCHECK_EXACT_CLIENT_SECRET"), env.get("TALKCHECK_EXACT_REFRESH_TOKEN") or None,
                          env.get("TALKCHECK_EXACT_ACCESS_TOKEN") or None),
    )
