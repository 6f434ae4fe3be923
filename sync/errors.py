"""The errors of the sync engine, translated from HTTP at the connector boundary.

::

    SyncError
    ├── ConnectorError            an API call failed
    │   ├── RetriableError        429, 5xx, timeouts: try again later
    │   ├── AuthError             401/403 or a refused token: stop, a person must act
    │   ├── NotFoundError         404: the record is gone
    │   ├── ConflictError         412: the record changed since it was read
    │   └── RejectedError         400/409/422, or Exact's functional 500: the record itself is refused
    ├── ConfigError               a config file or document the engine cannot use
    ├── StateError                the state file is damaged, or new while both systems hold records
    ├── EngineBusy                another engine holds the state file
    └── LinkConflict              a link would break the one-to-one rule
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "ConnectorError",
    "EngineBusy",
    "LinkConflict",
    "NotFoundError",
    "RejectedError",
    "RetriableError",
    "StateError",
    "SyncError",
]


class SyncError(Exception):
    """Root of the engine's errors."""


class ConnectorError(SyncError):
    def __init__(self, message: str, status: int | None = None, system: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.system = system


class RetriableError(ConnectorError):
    """The call may succeed later; a create that failed this way may still have been committed."""


class AuthError(ConnectorError):
    pass


class NotFoundError(ConnectorError):
    pass


class ConflictError(ConnectorError):
    pass


class RejectedError(ConnectorError):
    pass


class ConfigError(SyncError):
    pass


class LinkConflict(SyncError):
    pass


class StateError(SyncError):
    """The state file cannot be used as it is: a person decides (see `talkcheck sync --relink`)."""


class EngineBusy(SyncError):
    """Another engine process is running a pass on the same state file."""
