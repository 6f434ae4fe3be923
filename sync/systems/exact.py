"""What the engine knows about Exact Online that the dataflow document cannot say.

Per entity set named in the document: its URL, key, sync endpoint, deletion code, the properties a
create cannot do without, and the merge keys Sesam Talk links on (ordered alternatives: the first whose
Customcrm value is filled is used).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ENTITIES", "ExactEntity", "entity_for"]


@dataclass(frozen=True)
class ExactEntity:
    type_name: str
    path: str
    key: str
    sync_path: str
    deleted_type: int
    mandatory: tuple[str, ...] = ()
    merge_keys: tuple[tuple[str, ...], ...] = ()
    modified: str = "Modified"


ENTITIES: dict[str, ExactEntity] = {
    "accounts": ExactEntity(
        type_name="Accounts",
        path="crm/Accounts",
        key="ID",
        sync_path="sync/CRM/Accounts",
        deleted_type=2,
        mandatory=("Name",),
        merge_keys=(("ChamberOfCommerce",), ("Email",)),
    ),
}


def entity_for(type_name: str) -> ExactEntity | None:
    return ENTITIES.get(type_name.lower())
