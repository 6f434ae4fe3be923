"""The Exact mock's served OpenAPI: entity bodies and Exact's error format, from the same table the mock runs on.

Exact publishes no OpenAPI of its own; the mock's schema is talkcheck's description of what the mock
answers, for scanners and for people. Each entity set gets a record schema (every property with its Edm
type as JSON: GUIDs as uuid text, dates as ``/Date(ms)/``, Int64 as text, lengths where Exact publishes
them), an input schema for POST and PUT, and the envelopes: ``{"d": {...}}`` for one record and
``{"d": {"results": [...], "__next": ...}}`` for a page. Every operation under /api/v1 documents Exact's
error body for 400, 401, 403, 404, 429 and 500 (Exact answers functional validation errors with 500).

Left out, and said so in the schema's description: navigation properties are described only as their
deferred link or inline line array, and the EDMX `$metadata` documents are XML, not described here.
"""

from __future__ import annotations

from typing import Any

from mocks.common.edges import optional_not_nullable
from mocks.exact.edm import INT_RANGES
from mocks.exact.entities import ENTITY_SETS, EntitySetDef, PropertyDef

__all__ = ["LEFT_OUT", "entity_operation", "finish_schema"]

LEFT_OUT = ("Left out of this schema: navigation properties are described only as their deferred link or inline "
            "line array; `$metadata` answers EDMX (XML), which OpenAPI does not describe.")

_KEY_PATTERN = "^guid'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'$"
_OPTIONS_OF = "x-talkcheck-options-of"  # [entity set's path, operation kind], dropped from the served schema
_FILTER_TERMS = 6
_GRANTS = ["authorization_code", "refresh_token"]
_DATE_WIRE = r"^/Date\(-?[0-9]+\)/$"
_ERROR_TEXT = {400: "A malformed request or query option", 401: "No valid access token",
               403: "No access to this division", 404: "No such record or path",
               405: "The path does not allow this method", 429: "A rate limit is spent; see X-RateLimit-*",
               500: "A functional validation error (Exact answers these with 500), with a readable text"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _value_schema(prop: PropertyDef, *, writing: bool) -> dict[str, Any]:
    """One property's JSON schema, as Exact sends it (or, `writing`, as the mock accepts it)."""
    edm = prop.edm_type
    if edm == "Edm.Guid":
        return {"type": "string", "format": "uuid"}
    if edm == "Edm.Boolean":
        return {"type": "boolean"}
    if edm == "Edm.Double":
        return {"type": "number"}
    if edm in INT_RANGES:
        low, high = INT_RANGES[edm]
        if edm == "Edm.Int64" and not writing:
            return {"type": "string", "pattern": r"^-?[0-9]+$"}
        return {"type": "integer", "minimum": low, "maximum": high}
    if edm == "Edm.DateTime":
        wire = {"type": "string", "pattern": _DATE_WIRE}
        return {"anyOf": [wire, {"type": "string", "format": "date-time"}]} if writing else wire
    if edm == "Collection":
        return {"type": "object"} if not writing else {"type": "array", "items": {"type": "object"}}
    schema: dict[str, Any] = {"type": "string"}
    if prop.max_length and writing:
        schema["maxLength"] = prop.max_length
    return schema


def _record_schema(entity_set: EntitySetDef) -> dict[str, Any]:
    properties: dict[str, Any] = {"__metadata": {"type": "object", "properties": {
        "uri": {"type": "string"}, "type": {"type": "string"}}}}
    for prop in entity_set.properties.values():
        schema = _value_schema(prop, writing=False)
        properties[prop.name] = schema if prop.access == "key" else _nullable(schema)
    return {"type": "object", "title": entity_set.type_name, "properties": properties}


def _input_schema(entity_set: EntitySetDef) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for prop in entity_set.properties.values():
        schema = _nullable(_value_schema(prop, writing=True))
        if not prop.writable:
            schema["readOnly"] = True
            schema["description"] = "Read-only: ignored when sent"
        properties[prop.name] = schema
    return {"type": "object", "title": f"{entity_set.type_name} (input)", "properties": properties,
            "additionalProperties": False,
            "description": "Unknown property names are refused; read-only ones are ignored. Functional rules "
                           "(mandatory fields, existing references) are answered with 500, as Exact does."}


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "ExactError": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"},
                "message": {"type": "object", "required": ["lang", "value"], "properties": {
                    "lang": {"type": "string"}, "value": {"type": "string"}}}}}}},
        "OAuthError": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"}, "error_description": {"type": "string"}}},
        "Token": {"type": "object", "required": ["access_token", "token_type", "expires_in", "refresh_token"],
                  "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                                 "expires_in": {"type": "string"}, "refresh_token": {"type": "string"}}},
    }
    for entity_set in ENTITY_SETS.values():
        name = _name(entity_set)
        schemas[name] = _record_schema(entity_set)
        schemas[f"{name}Input"] = _input_schema(entity_set)
    return schemas


def _name(entity_set: EntitySetDef) -> str:
    return entity_set.type_name.removeprefix("Exact.Web.Api.Models.").replace(".", "")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def entity_operation(entity_set: EntitySetDef, kind: str) -> dict[str, Any]:
    """The OpenAPI of one operation on an entity set (for FastAPI's ``openapi_extra``)."""
    # Marks the operation for `finish_schema`, which describes its query options and then drops the mark.
    mark = {_OPTIONS_OF: [entity_set.path, kind]}
    return mark | _operation(entity_set, kind)


def _operation(entity_set: EntitySetDef, kind: str) -> dict[str, Any]:
    name = _name(entity_set)
    one = {"type": "object", "required": ["d"], "properties": {"d": _ref(name)}}
    page = {"type": "object", "required": ["d"], "properties": {"d": {
        "type": "object", "required": ["results"], "properties": {
            "results": {"type": "array", "items": _ref(name)}, "__next": {"type": "string"},
            "__count": {"type": "string"}}}}}
    body = {"requestBody": {"required": True, **_json(_ref(f"{name}Input"))}}
    if kind in ("list", "sync", "bulk", "lines"):
        return {"responses": {"200": {"description": f"A page of {entity_set.name}", **_json(page)}}}
    if kind == "get":
        return {"responses": {"200": {"description": f"One of {entity_set.name}", **_json(one)}}}
    if kind == "count":
        return {"responses": {"200": {"description": "The number of records the $filter selects",
                                      "content": {"text/plain": {"schema": {"type": "string",
                                                                            "pattern": "^[0-9]+$"}}}}}}
    if kind == "create":
        return body | {"responses": {"201": {"description": "Created: the key, and every property with "
                                                            "Prefer: return=representation", **_json(one)}}}
    if kind == "update":
        return body | {"responses": {"204": {"description": "Changed"}}}
    if kind == "delete":
        return {"responses": {"204": {"description": "Deleted; sync/Deleted lists it"}}}
    raise ValueError(kind)


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's own 422 with Exact's errors on every operation, and add the entity schemas."""
    schema.setdefault("components", {}).setdefault("schemas", {}).update(_components())
    schema["info"]["description"] = f"{schema['info'].get('description', '')}\n\n{LEFT_OUT}".strip()
    for path, item in schema["paths"].items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for parameter in operation.get("parameters", []):
                optional_not_nullable(parameter)
            if path == "/api/oauth2/token":
                responses["200"] = {"description": "Tokens", **_json(_ref("Token"))}
                for status, text in ((400, "A malformed or unsupported grant"), (401, "Unknown client or grant")):
                    responses[str(status)] = {"description": text, **_json(_ref("OAuthError"))}
                operation["requestBody"] = {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["grant_type"],
                        "properties": {"grant_type": {"type": "string", "enum": _GRANTS}}
                        | {name: {"type": "string", "minLength": 1} for name in (
                            "code", "redirect_uri", "refresh_token", "client_id", "client_secret")},
                        "description": "The client authenticates with client_id and client_secret here or with "
                                       "HTTP Basic (RFC 6749 §2.3.1), not both"}}}}
                continue
            if path == "/api/oauth2/auth":
                for parameter in operation.get("parameters", []):
                    if parameter["name"] in ("client_id", "redirect_uri"):
                        parameter["schema"] = {"type": "string", "minLength": 1}
                    if parameter["name"] == "response_type":
                        parameter["schema"] = {"type": "string", "enum": ["code"]}
                responses["400"] = {"description": "An unknown client or a redirect_uri it did not register",
                                    **_json(_ref("ExactError"))}
            if not path.startswith("/api/v1"):
                continue
            for status, text in _ERROR_TEXT.items():
                if status != 405:
                    responses.setdefault(str(status), {"description": text, **_json(_ref("ExactError"))})
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    _describe_query_options(schema)
    return schema



def _names(entity_set: EntitySetDef, *, scalar: bool = True) -> str:
    names = [p.name for p in entity_set.properties.values() if not scalar or not p.is_collection]
    return "(" + "|".join(sorted(names, key=len, reverse=True)) + ")"


def _literal(prop: PropertyDef) -> str | None:
    """A regular expression for a literal of the property's type in a $filter, or None for types not offered."""
    edm = prop.edm_type
    if edm == "Edm.String":
        return "'[A-Za-z0-9 ]{0,20}'"
    if edm == "Edm.Guid":
        return "guid'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'"
    if edm in ("Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte"):
        return "[0-9]{1,3}"
    if edm == "Edm.Double":
        return "-?[0-9]{1,6}(\\.[0-9]{1,4})?"
    if edm == "Edm.Boolean":
        return "(true|false)"
    return None


def _filter_pattern(entity_set: EntitySetDef) -> str:
    """Comparisons of a property with a literal of its type, joined by and/or: the part of OData's $filter
    grammar a pattern can state (functions and parentheses are accepted too, and described in words)."""
    offered = [p for p in entity_set.properties.values() if _literal(p) is not None and not p.is_collection]
    first = {entity_set.key, *entity_set.mandatory_filter}
    # The key, the fields a mandatory filter needs, and a few more: a pattern over a hundred properties
    # costs a generator seconds per operation, and the description states the whole grammar.
    chosen = [p for p in offered if p.name in first] + [p for p in offered if p.name not in first][:_FILTER_TERMS]
    terms = [f"{p.name} (eq|ne) ({_literal(p)}|null)" for p in chosen]
    term = "(" + "|".join(terms) + ")"
    return f"^({term}( (and|or) {term})*)?$"  # empty: no filter


def query_parameter_schemas(entity_set: EntitySetDef, kind: str) -> dict[str, dict[str, Any]]:
    """The schemas of the OData system query options one operation takes."""
    names = _names(entity_set)
    timestamp_filter = "^Timestamp (gt|ge) [0-9]{1,12}L?$"
    schemas: dict[str, dict[str, Any]] = {
        "$filter": {"type": "string", "pattern": timestamp_filter if kind == "sync" else _filter_pattern(entity_set),
                    "description": "An OData $filter expression" + (
                        " on Timestamp only" if kind == "sync" else
                        " (the pattern shows the simplest): comparisons (eq, ne, gt, ge, lt, le) of properties "
                        "with literals of their type (strings quoted, GUIDs as guid'…', dates as datetime'…'), and, "
                        "or, not, parentheses and the functions substringof, startswith, endswith, tolower, "
                        "toupper, trim, length")},
        "$select": {"type": "string", "pattern": f"^(\\*|{names}(,{names})*)$",
                    "description": "Property names, comma-separated"},
        "$orderby": {"type": "string", "pattern": f"^{names}( (asc|desc))?(,{names}( (asc|desc))?)*$"},
        "$inlinecount": {"type": "string", "enum": ["allpages", "none"]},
        "$skiptoken": {"type": "string", "pattern": "^[0-9]{1,12}L$" if kind == "sync" else
                       "^guid'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'$",
                       "description": "From the __next link of the previous page"},
    }
    if entity_set.lines is not None:
        schemas["$expand"] = {"type": "string", "enum": [entity_set.lines.nav]}
    else:
        schemas["$expand"] = {"type": "string", "maxLength": 0, "description": "This set has nothing to expand"}
    return schemas


def _describe_query_options(schema: dict[str, Any]) -> None:
    """Give each marked operation's query options and key the schemas of its entity set."""
    by_path = {e.path: e for e in ENTITY_SETS.values()}
    for item in schema["paths"].values():
        for operation in item.values():
            mark = operation.pop(_OPTIONS_OF, None)
            if mark is None:
                continue
            path, kind = mark
            options = query_parameter_schemas(by_path[path], kind)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter["name"] in options:
                    parameter["schema"] = options[parameter["name"]]
                elif parameter.get("in") == "path" and parameter["name"] == "key":
                    parameter["schema"] = {"type": "string", "pattern": _KEY_PATTERN,
                                           "description": "The record's key, as guid'…'"}
