"""The vendor paths of the Customcrm mock, under /api/v1: thin handlers over the state."""

# No "from __future__ import annotations": FastAPI must resolve the Depends() closures at definition time.

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from mocks.customcrm.errors import Problem
from mocks.customcrm.models import RESOURCES, Resource
from mocks.customcrm.state import CustomcrmState, Tenant

__all__ = ["build_router"]

StateGetter = Callable[[], CustomcrmState]
_bearer = HTTPBearer(auto_error=False, description="A tenant API key")
MAX_PAGE = 200


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Change(BaseModel):
    cursor: str
    resource: str
    id: str
    op: str
    version: int
    at: str
    record: dict[str, Any] | None


class ChangePage(BaseModel):
    changes: list[Change]
    next_cursor: str
    has_more: bool


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
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a JSON object.")
    return body


def build_router(get_state: StateGetter) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def tenant(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Tenant:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "Send an API key as 'Authorization: Bearer <key>'.",
                          headers={"WWW-Authenticate": "Bearer"})
        return get_state().tenant_for_key(credentials.credentials)

    for resource in RESOURCES.values():
        _add_resource_routes(router, resource, get_state, tenant)

    @router.get("/changes", response_model=ChangePage, tags=["changes"])
    def changes(
        t: Annotated[Tenant, Depends(tenant)],
        after: Annotated[str | None, Query(description="The next_cursor of the previous page")] = None,
        resource: Annotated[list[str] | None, Query(description="Only these collections")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> dict[str, Any]:
        """Creates, updates and deletes in commit order after a cursor; deletes carry no record."""
        try:
            position = int(after) if after else 0
        except ValueError as exc:
            raise Problem(400, f"The cursor {after!r} is not one this API issued.") from exc
        if position < 0:
            raise Problem(400, f"The cursor {after!r} is not one this API issued.")
        unknown = [r for r in resource or [] if r not in RESOURCES]
        if unknown:
            raise Problem(400, f"Unknown resource {unknown[0]!r}.")
        entries, last, more = get_state().changes(t, position, set(resource) if resource else None, limit)
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
                         tenant: Callable[..., Tenant]) -> None:
    path = f"/{resource.path}"
    model = resource.model
    tag = resource.path

    def list_(
        request: Request,
        t: Annotated[Tenant, Depends(tenant)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        filters: dict[str, Any] = {}
        for name, value in request.query_params.items():
            if name in ("limit", "cursor"):
                continue
            if name not in resource.fields:
                raise Problem(400, f"Cannot filter {resource.path} on {name!r}.",
                              [{"field": name, "message": "unknown filter"}])
            filters[name] = {"true": True, "false": False}.get(value, value) if \
                model.model_fields[name].annotation is bool else value
        items, next_cursor = get_state().list_records(t, resource, filters, cursor, limit)
        return {"items": items, "next_cursor": next_cursor}

    async def create(request: Request, t: Annotated[Tenant, Depends(tenant)]) -> JSONResponse:
        record = get_state().create(t, resource, await _json_object(request))
        return JSONResponse(record, status_code=201, headers={
            "ETag": _etag(record), "Location": f"{request.url.path}/{record['Id']}"})

    def get_one(record_id: str, t: Annotated[Tenant, Depends(tenant)]) -> JSONResponse:
        record = get_state().get(t, resource, record_id)
        return JSONResponse(record, headers={"ETag": _etag(record)})

    async def update(request: Request, record_id: str, t: Annotated[Tenant, Depends(tenant)],
                     if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
        patch = await _json_object(request)
        record = get_state().update(t, resource, record_id, patch, _if_match(if_match))
        return JSONResponse(record, headers={"ETag": _etag(record)})

    def delete(record_id: str, t: Annotated[Tenant, Depends(tenant)],
               if_match: Annotated[str | None, Header()] = None) -> Response:
        get_state().delete(t, resource, record_id, _if_match(if_match))
        return Response(status_code=204)

    name = resource.name
    router.add_api_route(path, list_, methods=["GET"], tags=[tag], name=f"list_{tag}", response_model=Page)
    router.add_api_route(path, create, methods=["POST"], tags=[tag], name=f"create_{name}", status_code=201,
                         openapi_extra={"requestBody": {"required": True, "content": {
                             "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}})
    router.add_api_route(path + "/{record_id}", get_one, methods=["GET"], tags=[tag], name=f"get_{name}")
    router.add_api_route(path + "/{record_id}", update, methods=["PATCH"], tags=[tag], name=f"update_{name}")
    router.add_api_route(path + "/{record_id}", delete, methods=["DELETE"], tags=[tag], name=f"delete_{name}",
                         status_code=204)
