"""The vendor paths of the Customcrm mock, under /api/v1: thin handlers over the state."""

# No "from __future__ import annotations": FastAPI must resolve the Depends() closures at definition time.

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mocks.common.edges import MAX_JSON_DEPTH, too_deep
from mocks.common.planned_route import PlannedRoute
from mocks.customcrm.contract import operation, problems
from mocks.customcrm.errors import Problem
from mocks.customcrm.models import RESOURCES, Resource
from mocks.customcrm.state import CustomcrmState, Tenant

__all__ = ["build_router"]

StateGetter = Callable[[], CustomcrmState]
IfMatch = Annotated[str | None, Header(pattern=r'^(\*|(W/)?"?[0-9]+"?)$', description=(
    'The version the change is based on, as the ETag gave it ("3"; 3 is taken too), or * for any'))]
ResourceName = StrEnum("ResourceName", {name: name for name in RESOURCES})  # type: ignore[misc]
_bearer = HTTPBearer(auto_error=False, description="A tenant API key")
MAX_PAGE = 200
_CURSOR_DOC = "The next_cursor of the previous page (the last id it held)"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _article(name: str) -> str:
    return "an" if name[0].lower() in "aeiou" else "a"


def _etag(record: dict[str, Any]) -> str:
    return f'"{record["Version"]}"'


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    tag = value.strip()
    tag = tag.removeprefix("W/").strip('"')
    try:
        return int(tag)
    except ValueError as exc:
        raise Problem(400, f"If-Match must carry a version ETag such as '\"3\"', not {value!r}.") from exc


async def _json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        raise Problem(415, "Send the body as application/json.")
    raw = await request.body()
    if too_deep(raw):
        raise Problem(400, f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a JSON object.")
    return body


def build_router(get_state: StateGetter) -> APIRouter:
    router = APIRouter(prefix="/api/v1", route_class=PlannedRoute)

    async def tenant(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Tenant:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "Send an API key as 'Authorization: Bearer <key>'.",
                          headers={"WWW-Authenticate": "Bearer"})
        return get_state().tenant_for_key(credentials.credentials)

    for resource in RESOURCES.values():
        _add_resource_routes(router, resource, get_state, tenant)

    @router.get("/changes", tags=["changes"], openapi_extra={
        "operationId": "list_changes",
        "responses": {"200": {"description": "A page of the change feed",
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChangePage"}}}},
                      **problems(400, 401, 429)}})
    async def changes(
        t: Annotated[Tenant, Depends(tenant)],
        after: Annotated[str | None, Query(pattern="^[0-9]+$", description=_CURSOR_DOC)] = None,
        resource: Annotated[list[ResourceName] | None, Query(description="Only these collections")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> dict[str, Any]:
        """Creates, updates and deletes in commit order after a cursor; deletes carry no record."""
        try:
            position = int(after) if after else 0
        except ValueError as exc:
            raise Problem(400, f"The cursor {after!r} is not one this API issued.") from exc
        if position < 0:
            raise Problem(400, f"The cursor {after!r} is not one this API issued.")
        chosen = {r.value for r in resource} if resource else None
        entries, last, more = get_state().changes(t, position, chosen, limit)
        return {
            "changes": [
                {"cursor": str(e["seq"]), "resource": e["resource"], "id": e["id"], "op": e["op"],
                 "version": e["version"], "at": e["at"], "record": e["record"]}
                for e in entries
            ],
            "next_cursor": str(last),
            "has_more": more,
        }

    return router


def _add_resource_routes(router: APIRouter, resource: Resource, get_state: StateGetter,
                         tenant: Callable[..., Any]) -> None:
    path = f"/{resource.path}"
    tag = resource.path
    filters_doc = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                    "description": f"Only records whose {name} equals this value"} for name in resource.filterable]

    async def list_(
        request: Request,
        t: Annotated[Tenant, Depends(tenant)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(pattern=_UUID, description=_CURSOR_DOC)] = None,
    ) -> dict[str, Any]:
        filters: dict[str, Any] = {}
        for name, value in request.query_params.items():
            if name in ("limit", "cursor"):
                continue
            if name not in resource.filterable and name not in ("Id", "Version"):
                raise Problem(400, f"Cannot filter {resource.path} on {name!r}.",
                              [{"field": name, "message": "unknown filter"}])
            filters[name] = value
        items, next_cursor = get_state().list_records(t, resource, filters, cursor, limit)
        return {"items": items, "next_cursor": next_cursor}

    async def create(request: Request, t: Annotated[Tenant, Depends(tenant)]) -> JSONResponse:
        record = get_state().create(t, resource, await _json_object(request))
        return JSONResponse(record, status_code=201, headers={
            "ETag": _etag(record), "Location": f"{request.url.path}/{record['Id']}"})

    async def get_one(record_id: str, t: Annotated[Tenant, Depends(tenant)]) -> JSONResponse:
        record = get_state().get(t, resource, record_id)
        return JSONResponse(record, headers={"ETag": _etag(record)})

    async def update(request: Request, record_id: str, t: Annotated[Tenant, Depends(tenant)],
                     if_match: IfMatch = None) -> JSONResponse:
        patch = await _json_object(request)
        record = get_state().update(t, resource, record_id, patch, _if_match(if_match))
        return JSONResponse(record, headers={"ETag": _etag(record)})

    async def delete(record_id: str, t: Annotated[Tenant, Depends(tenant)],
               if_match: IfMatch = None) -> Response:
        get_state().delete(t, resource, record_id, _if_match(if_match))
        return Response(status_code=204)

    name = resource.name
    router.add_api_route(path, list_, methods=["GET"], tags=[tag], name=f"list_{tag}",
                         openapi_extra=operation(resource, "list") | {"parameters": filters_doc},
                         summary=f"List {resource.path}, filtered, a page at a time")
    router.add_api_route(path, create, methods=["POST"], tags=[tag], name=f"create_{name}", status_code=201,
                         openapi_extra=operation(resource, "create"), summary=f"Create {_article(name)} {name.lower()}")
    router.add_api_route(path + "/{record_id}", get_one, methods=["GET"], tags=[tag], name=f"get_{name}",
                         openapi_extra=operation(resource, "get"), summary=f"Read {_article(name)} {name.lower()}")
    router.add_api_route(path + "/{record_id}", update, methods=["PATCH"], tags=[tag], name=f"update_{name}",
                         openapi_extra=operation(resource, "update"),
                         summary=f"Change {_article(name)} {name.lower()} (merge-patch)")
    router.add_api_route(path + "/{record_id}", delete, methods=["DELETE"], tags=[tag], name=f"delete_{name}",
                         status_code=204, openapi_extra=operation(resource, "delete"),
                         summary=f"Delete {_article(name)} {name.lower()}")
