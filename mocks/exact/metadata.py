"""Exact's `$metadata`: the OData v2 service document (EDMX) of one service, built from the entity table.

Each entity set the mock serves in that service becomes an EntitySet and an EntityType with its key and
its properties (their Edm types, nullability and maximum lengths where published). Line collections are
left out: they are navigation properties, and the mock does not describe their associations.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET  # noqa: S405 - only builds a document, parses nothing

from mocks.exact.entities import ENTITY_SETS, EntitySetDef

__all__ = ["metadata_services", "service_metadata"]

_EDMX = "http://schemas.microsoft.com/ado/2007/06/edmx"
_META = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
_EDM = "http://schemas.microsoft.com/ado/2008/09/edm"


def metadata_services() -> list[str]:
    """The services (the path part after the division) that have entity sets."""
    return sorted({e.service for e in ENTITY_SETS.values() if e.needs_division})


def _entity_type(schema: ET.Element, entity_set: EntitySetDef) -> None:
    element = ET.SubElement(schema, f"{{{_EDM}}}EntityType", Name=entity_set.type_name.rsplit(".", 1)[1])
    key = ET.SubElement(element, f"{{{_EDM}}}Key")
    ET.SubElement(key, f"{{{_EDM}}}PropertyRef", Name=entity_set.key)
    for prop in entity_set.properties.values():
        if prop.is_collection:
            continue
        attrs = {"Name": prop.name, "Type": prop.edm_type, "Nullable": "false" if prop.access == "key" else "true"}
        if prop.max_length:
            attrs["MaxLength"] = str(prop.max_length)
        ET.SubElement(element, f"{{{_EDM}}}Property", attrs)


def service_metadata(service: str) -> bytes | None:
    """The EDMX document of a service, or None when the mock has no entity set in it."""
    sets = [e for e in ENTITY_SETS.values() if e.service == service and e.needs_division]
    if not sets:
        return None
    ET.register_namespace("edmx", _EDMX)
    ET.register_namespace("m", _META)
    ET.register_namespace("", _EDM)
    root = ET.Element(f"{{{_EDMX}}}Edmx", Version="1.0")
    services = ET.SubElement(root, f"{{{_EDMX}}}DataServices", {f"{{{_META}}}DataServiceVersion": "2.0"})
    by_namespace: dict[str, list[EntitySetDef]] = {}
    for entity_set in sets:
        by_namespace.setdefault(entity_set.type_name.rsplit(".", 1)[0], []).append(entity_set)
    for namespace, members in sorted(by_namespace.items()):
        schema = ET.SubElement(services, f"{{{_EDM}}}Schema", Namespace=namespace)
        for entity_set in members:
            _entity_type(schema, entity_set)
    container_schema = ET.SubElement(services, f"{{{_EDM}}}Schema", Namespace="Exact.Web.Api")
    container = ET.SubElement(container_schema, f"{{{_EDM}}}EntityContainer",
                              {"Name": f"{service}Container", f"{{{_META}}}IsDefaultEntityContainer": "true"})
    for entity_set in sets:
        ET.SubElement(container, f"{{{_EDM}}}EntitySet", Name=entity_set.name, EntityType=entity_set.type_name)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml
