"""The two sides of a sync and what the engine needs from each: a `Side`, and a connector protocol per side.

The engine is written against these protocols, not against the Customcrm and Exact connectors: another
CRM in place of Customcrm is a connector that satisfies `CrmConnector` (a change feed with a cursor, reads,
writes with optimistic concurrency) and a declaration of its resources beside `sync/systems/customcrm.py`.
The side's value is the system's name as reports, the link store and the config say it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from sync.http import CallCounter
from sync.systems.customcrm import CustomcrmResource
from sync.systems.exact import ExactEntity

__all__ = ["CrmConnector", "ErpConnector", "Side"]


class Side(StrEnum):
    CRM = "customcrm"
    ERP = "exact"

    @property
    def other(self) -> Side:
        return Side.ERP if self is Side.CRM else Side.CRM


class CrmConnector(Protocol):
    """The CRM's side: records by resource, a change feed of them, writes guarded by a version."""

    counter: CallCounter

    def changes(self, resource: CustomcrmResource, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Changes after a cursor (every page): {"id", "op": "created"|"updated"|"deleted", "record"}."""
        ...

    def get(self, resource: CustomcrmResource, record_id: str) -> dict[str, Any] | None: ...

    def find(self, resource: CustomcrmResource, conditions: dict[str, Any]) -> list[dict[str, Any]]: ...

    def create(self, resource: CustomcrmResource, values: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, resource: CustomcrmResource, record_id: str, values: dict[str, Any],
               version: int | None) -> dict[str, Any]:
        """A write that fails with `ConflictError` when the record changed since `version` (If-Match)."""
        ...

    def delete(self, resource: CustomcrmResource, record_id: str) -> None: ...


class ErpConnector(Protocol):
    """The ERP's side: entities with a sync feed by timestamp, a deletion log, lines and users."""

    counter: CallCounter

    def begin_pass(self) -> None:
        """A pass begins: what every flow reads alike (the deletion log) may be read once until `end_pass`."""
        ...

    def end_pass(self) -> None: ...

    def changes(self, entity: ExactEntity, fields: list[str], after: int) -> tuple[list[dict[str, Any]], int]: ...

    def deleted(self, entity: ExactEntity, after: int) -> tuple[list[str], list[str], int]:
        """Keys of deleted headers and of deleted lines after a timestamp, and the timestamp reached."""
        ...

    def changed_lines(self, entity: ExactEntity, fields: list[str], after: int
                      ) -> tuple[dict[str, list[dict[str, Any]]], int]: ...

    def get(self, entity: ExactEntity, key: str, fields: list[str]) -> dict[str, Any] | None: ...

    def lines(self, entity: ExactEntity, key: str) -> list[dict[str, Any]]: ...

    def users(self) -> list[dict[str, Any]]: ...

    def create(self, entity: ExactEntity, values: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, entity: ExactEntity, key: str, values: dict[str, Any]) -> None: ...

    def delete(self, entity: ExactEntity, key: str) -> None: ...

    def create_line(self, entity: ExactEntity, key: str, values: dict[str, Any]) -> dict[str, Any]: ...

    def update_line(self, entity: ExactEntity, line_key: str, values: dict[str, Any]) -> None: ...

    def delete_line(self, entity: ExactEntity, line_key: str) -> None: ...
