"""The vendor paths of the Exact mock: thin handlers that read the request, call the state, write OData JSON."""

# No "from __future__ import annotations": FastAPI must resolve the Depends() closures at definition time.


import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mocks.exact.edm import to_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import ExactError
from mocks.exact.odata import Filter, parse_filter, parse_orderby, parse_select
from mocks.exact.state import ExactState, TokenError, User

__all__ = ["PAGE_SIZE", "SYNC_PAGE_SIZE", "build_router"]

PAGE_SIZE = 60
SYNC_PAGE_SIZE = 1000
_KEY = re.compile(r"^guid'([0-9a-fA-F-]{36})'$")
_bearer = HTTPBearer(auto_error=False, description="An access token from /api/oauth2/token")

StateGetter = Callable[[], ExactState]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_accept(accept: str | None) -> None:
    if accept and "json" not in accept and "*/*" not in accept:
        raise ExactError(406, "This mock answers application/json only; send 'Accept: application/json'.")


def _serialize(
    request: Request, division: int, entity_set: EntitySetDef, record: dict[str, Any],
    select: list[str] | None, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    uri = f"{_base(request)}/api/v1/{division}/{entity_set.path}(guid'{record[entity_set.key]}')"
    out: dict[str, Any] = {"__metadata": {"uri": uri, "type": entity_set.type_name}}
    wanted = set(select) if select is not None else None
    for name, prop in entity_set.properties.items():
        if wanted is not None and name not in wanted:
            continue
        if prop.is_collection:
            out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        else:
            out[name] = to_wire(record.get(name), prop.edm_type)
    for name, value in (extra or {}).items():
        if wanted is None or name in wanted:
            out[name] = value
    return out


def _next_url(request: Request, **changes: str) -> str:
    params = dict(request.query_params)
    params.update(changes)
    return f"{_base(request)}{request.url.path}?{urlencode(params, safe=chr(39) + '$(),')}"


def build_router(get_state: StateGetter) -> APIRouter:
    router = APIRouter()

    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ExactError(401, "Unauthorized", {"WWW-Authenticate": "Bearer"})
        return get_state().user_for_token(credentials.credentials)

    def division_user(division: int, user: Annotated[User, Depends(current_user)]) -> User:
        if division not in user.divisions:
            raise ExactError(403, "Forbidden: no access to this division")
        get_state().division(division)
        return user

    # ---------------------------------------------------------------- OAuth 2.0

    @router.get("/api/oauth2/auth", tags=["oauth"], response_class=RedirectResponse, status_code=302)
    def authorize(
        client_id: str, redirect_uri: str, response_type: str = "code", state: str | None = None,
        force_login: int = 0,
    ) -> RedirectResponse:
        """Approves at once: the mock has no login page."""
        if response_type != "code":
            raise ExactError(400, "unsupported_response_type")
        code = get_state().authorize(client_id, redirect_uri)
        query = {"code": code} | ({"state": state} if state is not None else {})
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)

    @router.post("/api/oauth2/token", tags=["oauth"])
    async def token(request: Request) -> JSONResponse:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        state = get_state()
        try:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                body = state.exchange_code(form.get("client_id", ""), form.get("client_secret", ""),
                                           form.get("code", ""), form.get("redirect_uri", ""))
            elif grant == "refresh_token":
                body = state.refresh(form.get("client_id", ""), form.get("client_secret", ""),
                                     form.get("refresh_token", ""))
            else:
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        except TokenError as exc:
            payload = {"error": exc.error} | ({"error_description": exc.description} if exc.description else {})
            return JSONResponse(payload, status_code=exc.status)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # ---------------------------------------------------------------- current user

    @router.get("/api/v1/current/Me", tags=["system"])
    def me(request: Request, user: Annotated[User, Depends(current_user)],
           accept: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        _check_accept(accept)
        uri = f"{_base(request)}/api/v1/current/Me(guid'{user.user_id}')"
        first, _, last = user.full_name.partition(" ")
        row = {
            "__metadata": {"uri": uri, "type": "Exact.Web.Api.Models.System.Me"},
            "UserID": user.user_id, "CurrentDivision": user.current_division, "Email": user.email,
            "FullName": user.full_name, "FirstName": first, "LastName": last or None, "UserName": user.email,
            "LanguageCode": "en-NL", "Legislation": "1", "ServerTime": get_state().clock.now().isoformat(),
            "ServerUtcOffset": 0.0,
        }
        return {"d": {"results": [row]}}

    # ---------------------------------------------------------------- entity sets

    for entity_set in ENTITY_SETS.values():
        _add_entity_routes(router, entity_set, get_state, division_user)
        if entity_set.sync_path:
            _add_sync_route(router, entity_set, get_state, division_user)

    @router.get("/api/v1/{division}/sync/Deleted", tags=["sync"])
    def sync_deleted(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _check_accept(accept)
        rows = get_state().deleted(division)
        return _sync_page(request, rows, filter_, skiptoken, "Exact.Web.Api.Models.Sync.Deleted",
                          lambda r: {
                              "Timestamp": str(r["_timestamp"]), "ID": r["ID"], "EntityKey": r["EntityKey"],
                              "EntityType": r["EntityType"], "DeletedBy": r["DeletedBy"],
                              "DeletedDate": to_wire(r["DeletedDate"], "Edm.DateTime"), "Division": r["Division"],
                          })

    return router


def _sync_page(
    request: Request, rows: list[dict[str, Any]], filter_: str | None, skiptoken: str | None, type_name: str,
    render: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a sync endpoint: rows above a Timestamp, in Timestamp order, 1000 at a time."""
    predicate: Filter | None = None
    if filter_:
        predicate = parse_filter(filter_, lambda n: n == "Timestamp", type_name)
    after = -1
    if skiptoken:
        try:
            after = int(skiptoken.rstrip("Ll"))
        except ValueError as exc:
            raise ExactError(400, "Bad Request - Error in query syntax.") from exc
    chosen = sorted(
        (r for r in rows
         if r["_timestamp"] > after and (predicate is None or predicate({"Timestamp": r["_timestamp"]}))),
        key=lambda r: r["_timestamp"],
    )
    page = chosen[:SYNC_PAGE_SIZE]
    body: dict[str, Any] = {"results": [render(r) for r in page]}
    if len(chosen) > SYNC_PAGE_SIZE:
        body["__next"] = _next_url(request, **{"$skiptoken": f"{page[-1]['_timestamp']}L"})
    return {"d": body}


def _add_sync_route(
    router: APIRouter, entity_set: EntitySetDef, get_state: StateGetter, division_user: Callable[..., User]
) -> None:
    def known(name: str) -> bool:
        return name == "Timestamp" or name in entity_set.properties

    def sync_list(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        select: Annotated[str | None, Query(alias="$select")] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _check_accept(accept)
        chosen = parse_select(select, known, entity_set.type_name)
        if filter_:
            parsed = parse_filter(filter_, known, entity_set.type_name)
            if parsed.fields - {"Timestamp"}:
                raise ExactError(400, "This $filter parameter is not supported for this resource")
        rows = get_state().rows(division, entity_set)
        return _sync_page(
            request, rows, filter_, skiptoken, entity_set.type_name,
            lambda r: _serialize(request, division, entity_set, r, chosen,
                                 {"Timestamp": str(r["_timestamp"])}),
        )

    router.add_api_route(f"/api/v1/{{division}}/sync/{entity_set.sync_path}", sync_list, methods=["GET"],
                         tags=["sync"], name=f"sync_{entity_set.name}")


def _add_entity_routes(
    router: APIRouter, entity_set: EntitySetDef, get_state: StateGetter, division_user: Callable[..., User]
) -> None:
    path = f"/api/v1/{{division}}/{entity_set.path}"
    item_path = path + "({key})"

    def known(name: str) -> bool:
        return name in entity_set.properties

    def parse_key(key: str) -> str:
        m = _KEY.match(key)
        if not m:
            raise ExactError(400, "Bad Request - Error in query syntax.")
        return m.group(1).lower()

    def filtered(division: int, filter_: str | None) -> list[dict[str, Any]]:
        predicate = parse_filter(filter_, known, entity_set.type_name) if filter_ else None
        if entity_set.mandatory_filter and (predicate is None or not predicate.fields & entity_set.mandatory_filter):
            raise ExactError(
                400,
                "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a "
                "$filter parameter with one of the following fields in the url:"
                + ",".join(sorted(entity_set.mandatory_filter)) + ".",
            )
        rows = get_state().rows(division, entity_set)
        return [r for r in rows if predicate is None or predicate(r)]

    def list_(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        select: Annotated[str | None, Query(alias="$select")] = None,
        top: Annotated[int | None, Query(alias="$top", ge=0)] = None,
        skip: Annotated[int | None, Query(alias="$skip", ge=0)] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        orderby: Annotated[str | None, Query(alias="$orderby")] = None,
        inlinecount: Annotated[str | None, Query(alias="$inlinecount")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _check_accept(accept)
        chosen = parse_select(select, known, entity_set.type_name)
        order = parse_orderby(orderby, known, entity_set.type_name)
        rows = filtered(division, filter_)
        rows.sort(key=lambda r: str(r[entity_set.key]))
        for name, descending in reversed(order):
            rows.sort(key=_order_key(name), reverse=descending)
        total = len(rows)
        if skiptoken:
            if order:
                raise ExactError(400, "Bad Request - $skiptoken cannot be combined with $orderby.")
            after = parse_key(skiptoken)
            rows = [r for r in rows if str(r[entity_set.key]) > after]
        if skip:
            rows = rows[skip:]
        page_size = PAGE_SIZE if top is None else min(top, PAGE_SIZE)
        page = rows[:page_size]
        body: dict[str, Any] = {"results": [_serialize(request, division, entity_set, r, chosen) for r in page]}
        if inlinecount == "allpages":
            body["__count"] = str(total)
        remaining_top = None if top is None else top - len(page)
        if len(rows) > len(page) and (remaining_top is None or remaining_top > 0) and page:
            changes = {"$skiptoken": f"guid'{page[-1][entity_set.key]}'"} if not order else {
                "$skip": str((skip or 0) + len(page))}
            if remaining_top is not None:
                changes["$top"] = str(remaining_top)
            body["__next"] = _next_url(request, **changes)
        return {"d": body}

    def count(division: int, user: Annotated[User, Depends(division_user)],
              filter_: Annotated[str | None, Query(alias="$filter")] = None) -> PlainTextResponse:
        return PlainTextResponse(str(len(filtered(division, filter_))))

    async def create(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        body = await _json_body(request)
        record = get_state().create(division, entity_set, body, user)
        rendered = _serialize(request, division, entity_set, record, None)
        if not (prefer and "return=representation" in prefer):
            # Without the Prefer header Exact answers with the key and every other property null.
            rendered = {k: (v if k in ("__metadata", entity_set.key) or isinstance(v, dict) else None)
                        for k, v in rendered.items()}
        return JSONResponse({"d": rendered}, status_code=201,
                            headers={"Location": rendered["__metadata"]["uri"]})

    def get_one(
        request: Request, division: int, key: str, user: Annotated[User, Depends(division_user)],
        select: Annotated[str | None, Query(alias="$select")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        _check_accept(accept)
        chosen = parse_select(select, known, entity_set.type_name)
        record = get_state().get(division, entity_set, parse_key(key))
        return {"d": _serialize(request, division, entity_set, record, chosen)}

    async def update(request: Request, division: int, key: str,
                     user: Annotated[User, Depends(division_user)]) -> Response:
        body = await _json_body(request)
        get_state().update(division, entity_set, parse_key(key), body, user)
        return Response(status_code=204)

    def delete(division: int, key: str, user: Annotated[User, Depends(division_user)]) -> Response:
        get_state().delete(division, entity_set, parse_key(key), user)
        return Response(status_code=204)

    tag = entity_set.path
    name = entity_set.name
    router.add_api_route(path, list_, methods=["GET"], tags=[tag], name=f"list_{name}")
    router.add_api_route(path + "/$count", count, methods=["GET"], tags=[tag], name=f"count_{name}",
                         response_class=PlainTextResponse)
    router.add_api_route(path, create, methods=["POST"], tags=[tag], name=f"create_{name}", status_code=201)
    router.add_api_route(item_path, get_one, methods=["GET"], tags=[tag], name=f"get_{name}")
    router.add_api_route(item_path, update, methods=["PUT"], tags=[tag], name=f"update_{name}", status_code=204)
    router.add_api_route(item_path, delete, methods=["DELETE"], tags=[tag], name=f"delete_{name}", status_code=204)


def _order_key(name: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    """Sort nulls first, then by value; values of one property share a type, so their text sorts them."""
    def key(record: dict[str, Any]) -> tuple[bool, str]:
        value = record.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (value is not None, f"{float(value) + 1e15:040.6f}")
        return (value is not None, "" if value is None else str(value))
    return key


async def _json_body(request: Request) -> dict[str, Any]:
    import json

    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExactError(400, "Error processing request stream. The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ExactError(400, "Error processing request stream. A JSON object is expected.")
    return body
