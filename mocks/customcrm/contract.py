"""The published Customcrm contract: OpenAPI fragments for every operation, and its rendering as docs.

The served schema is built from the models here; ``openapi.json`` beside this file is the published copy
that a team building a real Customcrm endpoint receives. A test keeps the two equal, so the contract only
changes on purpose:

    python -m mocks.customcrm.contract write   # refresh openapi.json and docs/customcrm-api.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mocks.customcrm.models import RESOURCES, Resource

__all__ = ["CONTRACT_FILE", "DOC_FILE", "components", "operation", "problems", "render_markdown"]

CONTRACT_FILE = Path(__file__).with_name("openapi.json")
DOC_FILE = Path(__file__).resolve().parents[2] / "docs" / "customcrm-api.md"

_META = {
    "Id": {"type": "string", "description": "Assigned by the server"},
    "CreatedAt": {"type": "string", "format": "date-time"},
    "ModifiedAt": {"type": "string", "format": "date-time"},
    "Version": {"type": "integer", "minimum": 1, "description": "Raised by every write; send it in If-Match"},
}
_ERRORS = {400: "Malformed request", 401: "Missing or unknown API key", 404: "No such record",
           409: "Conflicts with other records", 412: "The record changed since the If-Match version",
           415: "The body is not JSON", 422: "A field is invalid; every invalid field is named",
           429: "Too many requests; see Retry-After"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _inline(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's local $defs into components so every $ref resolves."""
    text = json.dumps(schema).replace("#/$defs/", "#/components/schemas/")
    out: dict[str, Any] = json.loads(text)
    for name, sub in out.pop("$defs", {}).items():
        defs[name] = sub
    return out


def components() -> dict[str, Any]:
    """Schemas for each resource: its input, its patch, the stored record and a page of records."""
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                           "detail": {"type": "string"}, "instance": {"type": "string"},
                           "errors": {"type": "array", "items": {
                               "type": "object", "required": ["field", "message"],
                               "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}},
        },
        "Change": {
            "type": "object", "required": ["cursor", "resource", "id", "op", "version", "at", "record"],
            "properties": {"cursor": {"type": "string"}, "resource": {"type": "string", "enum": list(RESOURCES)},
                           "id": {"type": "string"},
                           "op": {"type": "string", "enum": ["created", "updated", "deleted"]},
                           "version": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                           "record": {"anyOf": [{"type": "object"}, {"type": "null"}]}},
        },
        "ChangePage": {
            "type": "object", "required": ["changes", "next_cursor", "has_more"],
            "properties": {"changes": {"type": "array", "items": _ref("Change")}, "next_cursor": {"type": "string"},
                           "has_more": {"type": "boolean"}},
        },
    }
    for resource in RESOURCES.values():
        name = resource.name
        base = _inline(resource.model.model_json_schema(ref_template="#/components/schemas/{model}"), schemas)
        schemas[f"{name}Input"] = base
        patch = json.loads(json.dumps(base))
        patch.pop("required", None)
        patch["title"] = f"{name}Patch"
        patch["description"] = "Merge-patch: fields present are set (null clears), absent fields stay."
        schemas[f"{name}Patch"] = patch
        record = json.loads(json.dumps(base))
        record["title"] = name
        record["properties"] = {**_META, **record["properties"]}
        record["required"] = sorted(set(record.get("required", [])) | set(_META))
        record["additionalProperties"] = False
        schemas[name] = record
        schemas[f"{name}Page"] = {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    return schemas


def problems(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": _ERRORS[code],
                        "content": {"application/problem+json": {"schema": _ref("Problem")}}} for code in codes}


def operation(resource: Resource, kind: str) -> dict[str, Any]:
    """The OpenAPI of one operation on a resource, for FastAPI's ``openapi_extra``."""
    name = resource.name
    record = {"content": {"application/json": {"schema": _ref(name)}}}
    etag = {"ETag": {"schema": {"type": "string"}, "description": "The record's version, quoted"}}
    links = {
        f"Get{name}": {"operationId": f"get_{name}", "parameters": {"record_id": "$response.body#/Id"}},
        f"Update{name}": {"operationId": f"update_{name}", "parameters": {"record_id": "$response.body#/Id"}},
        f"Delete{name}": {"operationId": f"delete_{name}", "parameters": {"record_id": "$response.body#/Id"}},
    }
    if kind == "list":
        return {"operationId": f"list_{resource.path}", "responses": {
            "200": {"description": f"A page of {resource.path}",
                    "content": {"application/json": {"schema": _ref(f"{name}Page")}}},
            **problems(400, 401, 429)}}
    if kind == "create":
        return {"operationId": f"create_{name}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(f"{name}Input")}}},
                "responses": {"201": {"description": "Created", **record, "headers": etag, "links": links},
                              **problems(400, 401, 409, 415, 422, 429)}}
    if kind == "get":
        return {"operationId": f"get_{name}", "responses": {
            "200": {"description": "The record", **record, "headers": etag}, **problems(401, 404, 429)}}
    if kind == "update":
        return {"operationId": f"update_{name}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(f"{name}Patch")}}},
                "responses": {"200": {"description": "The updated record", **record, "headers": etag},
                              **problems(400, 401, 404, 409, 412, 415, 422, 429)}}
    if kind == "delete":
        return {"operationId": f"delete_{name}", "responses": {
            "204": {"description": "Deleted; the change feed shows a tombstone"},
            **problems(400, 401, 404, 409, 412, 429)}}
    raise ValueError(kind)


def render_markdown(schema: dict[str, Any]) -> str:
    """The contract as a page people read: operations, then each resource's fields."""
    lines = [f"# {schema['info']['title']} {schema['info']['version']}", "", schema["info"].get("description", ""), "",
             "Generated from `mocks/customcrm/openapi.json` by `python -m mocks.customcrm.contract write`.", "",
             "## Operations", "", "| method | path | what |", "| --- | --- | --- |"]
    for path, item in schema["paths"].items():
        for method, op in item.items():
            what = op.get("summary") or op.get("operationId", "")
            lines.append(f"| {method.upper()} | `{path}` | {what} |")
    lines += ["", "## Resources", ""]
    schemas = schema["components"]["schemas"]
    for resource in RESOURCES.values():
        model = schemas[resource.name]
        lines += [f"### {resource.name} (`/api/v1/{resource.path}`)", "", model.get("description", ""), "",
                  "| field | type | required | limits |", "| --- | --- | --- | --- |"]
        for field_name, spec in model["properties"].items():
            options = spec.get("anyOf", [spec])
            types = ", ".join(sorted({str(o.get("format") or o.get("type") or o.get("$ref", "").split("/")[-1])
                                      for o in options}))
            limits = ", ".join(f"{k} {v}" for o in options for k, v in o.items()
                               if k in ("maxLength", "minLength", "pattern", "minimum", "maximum", "maxItems"))
            lines.append(f"| {field_name} | {types} | {'yes' if field_name in model.get('required', []) else ''} | "
                         f"{limits.replace('|', '&#124;')} |")
        if resource.references:
            lines += ["", "References: " + ", ".join(f"`{f}` → {t}" for f, t in resource.references.items())]
        if resource.unique:
            lines += ["", "Unique per tenant: " + ", ".join(f"`{u}`" for u in resource.unique)]
        lines.append("")
    return "\n".join(lines)


def _write() -> int:
    from mocks.customcrm.app import create_app

    schema = json.loads(json.dumps(create_app().openapi(), sort_keys=True))
    CONTRACT_FILE.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    DOC_FILE.parent.mkdir(exist_ok=True)
    DOC_FILE.write_text(render_markdown(schema) + "\n")
    print(f"wrote {CONTRACT_FILE.name} and {DOC_FILE.name}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["write"]:
        print("usage: python -m mocks.customcrm.contract write", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(_write())
