"""The vendor paths of the Exact mock: thin handlers that read the request, call the state, write OData JSON."""

# No "from __future__ import annotations": FastAPI must resolve the Depends() closures at definition time.


import json
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_json

from mocks.common.edges import MAX_JSON_DEPTH, basic_credentials, too_deep
from mocks.common.planned_route import PlannedRoute
from mocks.exact.edm import to_wire
from mocks.exact.entities import ENTITY_SETS, EntitySetDef
from mocks.exact.errors import BadRequest, Forbidden, NotAcceptable, NotFound, NotImplementedHere, Unauthorized
from mocks.exact.metadata import metadata_services, service_metadata
from mocks.exact.odata import Filter, parse_filter, parse_orderby, parse_select
from mocks.exact.openapi import entity_operation
from mocks.exact.state import ExactState, TokenError, User
from mocks.exact.views import derived_names
from mocks.exact.wire import members

__all__ = ["BULK_PAGE_SIZE", "PAGE_SIZE", "SYNC_PAGE_SIZE", "build_router"]

PAGE_SIZE = 60
SYNC_PAGE_SIZE = 1000
BULK_PAGE_SIZE = 1000
_KEY = re.compile(r"^guid'([0-9a-fA-F-]{36})'$")
_bearer = HTTPBearer(auto_error=False, description="An access token from /api/oauth2/token")

StateGetter = Callable[[], ExactState]


def _base(request: Request) -> str:
    """The server's base URL as the request reached it (worked out once per request: every row of a page
    carries its own URI)."""
    base = request.scope.get("talkcheck.base")
    if base is None:
        base = request.scope["talkcheck.base"] = str(request.base_url).rstrip("/")
    return str(base)


def _check_accept(accept: str | None) -> None:
    if accept and "json" not in accept and "*/*" not in accept:
        raise NotAcceptable("This mock answers application/json only; send 'Accept: application/json'.")


def _expansions(expand: str | None, select: list[str] | None,
                entity_set: EntitySetDef) -> dict[str, list[str] | None]:
    """$expand=Lines and nested $select=Lines/Item: which navigation collections to inline, with which fields."""
    if not expand:
        return {}
    out: dict[str, list[str] | None] = {}
    for nav in (part.strip() for part in expand.split(",")):
        if entity_set.lines is None or nav.lower() != entity_set.lines.nav.lower():
            raise BadRequest(f"Could not find a navigation property named '{nav}' on type "
                                  f"'{entity_set.type_name}'.")
        nested = [p.split("/", 1)[1] for p in select or [] if p.split("/", 1)[0] == entity_set.lines.nav and "/" in p]
        out[entity_set.lines.nav] = nested or None
    return out


def _serialize(
    request: Request, division: int, entity_set: EntitySetDef, record: dict[str, Any],
    select: list[str] | None, extra: dict[str, Any] | None = None, *, state: ExactState,
    expand: dict[str, list[str] | None] | None = None,
) -> dict[str, Any]:
    """One record as a dict of JSON values (a create's answer, a record with its lines expanded)."""
    uri = _uri(request, division, entity_set, record)
    out: dict[str, Any] = {"__metadata": {"uri": uri, "type": entity_set.type_name}}
    wanted = _wanted(select)
    out.update(state.reader(division).wire(entity_set, record, wanted))
    for name in entity_set.collections:
        if wanted is not None and name not in wanted:
            continue
        if expand and name in expand and entity_set.lines is not None:
            line_set = ENTITY_SETS[entity_set.lines.set_name]
            out[name] = {"results": [
                _serialize(request, division, line_set, line, expand[name], state=state)
                for line in state.lines_of(division, entity_set, str(record[entity_set.key]))]}
        else:
            out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
    for name, value in (extra or {}).items():
        if wanted is None or name in wanted:
            out[name] = value
    return out


class _Rows:
    """Writes the records of one answer as JSON: their own values from the bytes kept for their version, the
    rest (a record's URI, what Exact derives from related records, the deferred collections, the sync API's
    extras) written when not kept. What is the same for every row of the answer is worked out once. A
    record with its lines expanded is written whole."""

    def __init__(self, request: Request, division: int, entity_set: EntitySetDef, select: list[str] | None,
                 state: ExactState, expand: dict[str, list[str] | None] | None = None) -> None:
        self.request, self.division, self.entity_set, self.select = request, division, entity_set, select
        self.state, self.expand = state, expand
        self.wanted = _wanted(select)
        self.base = _base(request)
        self.reader = state.reader(division)
        self.writer = state.division(division).writer
        self.expanding = bool(expand and entity_set.lines is not None
                              and any(name in expand for name in entity_set.collections))

    def __call__(self, record: dict[str, Any], extra: dict[str, Any] | None = None) -> bytes:
        # Under the state's lock: a write from another client replaces a record's values in place, and a row
        # written from half of them would be kept for the record's version.
        with self.state.lock:
            if self.expanding:
                return to_json(_serialize(self.request, self.division, self.entity_set, record, self.select,
                                          extra, state=self.state, expand=self.expand))
            signature = self.reader.derived_signature(self.entity_set, record, self.wanted)
            shape = (self.wanted, self.base, tuple(extra or ()), signature)
            return self.writer.row(self.division, self.entity_set, record, shape,
                                   lambda: self._write(record, extra))

    def _write(self, record: dict[str, Any], extra: dict[str, Any] | None) -> bytes:
        entity_set, wanted = self.entity_set, self.wanted
        uri = _uri(self.request, self.division, entity_set, record)
        rest = self.reader.derived_wire(entity_set, record, wanted)
        for name in entity_set.collections:
            if wanted is None or name in wanted:
                rest[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        for name, value in (extra or {}).items():
            if wanted is None or name in wanted:
                rest[name] = value
        parts = [b'"__metadata":' + to_json({"uri": uri, "type": entity_set.type_name}),
                 self.writer.own_members(self.division, entity_set, record, wanted), members(rest)]
        return b"{" + b",".join(part for part in parts if part) + b"}"


def _uri(request: Request, division: int, entity_set: EntitySetDef, record: dict[str, Any]) -> str:
    prefix = f"api/v1/{division}" if entity_set.needs_division else "api/v1"
    return f"{_base(request)}/{prefix}/{entity_set.path}(guid'{record[entity_set.key]}')"


def _wanted(select: list[str] | None) -> frozenset[str] | None:
    return frozenset(p.split("/", 1)[0] for p in select) if select is not None else None


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _results(rows: list[bytes], tail: dict[str, Any] | None = None) -> Response:
    """A page as OData v2 JSON: ``{"d": {"results": [...], "__next": ...}}`` from rows already written."""
    more = members(tail) if tail else b""
    # One join: adding the pieces of a page of a quarter of a megabyte one to another copies it each time.
    parts = [b'{"d":{"results":[']
    for n, row in enumerate(rows):
        if n:
            parts.append(b",")
        parts.append(row)
    parts += [b"]", b"," + more if more else b"", b"}}"]
    return _json(b"".join(parts))


def _next_url(request: Request, **changes: str) -> str:
    params = dict(request.query_params)
    params.update(changes)
    return f"{_base(request)}{request.url.path}?{urlencode(params, safe=chr(39) + '$(),')}"


def build_router(get_state: StateGetter) -> APIRouter:
    router = APIRouter(route_class=PlannedRoute)

    async def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("Unauthorized", {"WWW-Authenticate": "Bearer"})
        return get_state().user_for_token(credentials.credentials)

    async def division_user(division: int, user: Annotated[User, Depends(current_user)]) -> User:
        if division not in user.divisions:
            raise Forbidden("Forbidden: no access to this division")
        get_state().division(division)
        return user

    # ---------------------------------------------------------------- OAuth 2.0

    @router.get("/api/oauth2/auth", tags=["oauth"], response_class=RedirectResponse, status_code=302)
    async def authorize(
        client_id: str, redirect_uri: str, response_type: str = "code", state: str | None = None,
        force_login: int = 0,
    ) -> RedirectResponse:
        """Approves at once: the mock has no login page."""
        if response_type != "code":
            raise BadRequest("unsupported_response_type")
        code = get_state().authorize(client_id, redirect_uri)
        query = {"code": code} | ({"state": state} if state is not None else {})
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)

    @router.post("/api/oauth2/token", tags=["oauth"])
    async def token(request: Request) -> JSONResponse:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        try:
            basic = basic_credentials(request.headers.get("authorization"))
        except ValueError as exc:
            return JSONResponse({"error": "invalid_client", "error_description": str(exc)}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="oauth2"'})
        if basic is not None:
            if "client_secret" in form:  # RFC 6749 §2.3: one authentication method per request
                return JSONResponse({"error": "invalid_request", "error_description":
                                     "the client authenticated both in the header and in the body"}, status_code=400)
            if form.get("client_id", basic[0]) != basic[0]:
                return JSONResponse({"error": "invalid_request", "error_description":
                                     "client_id differs from the one in the Authorization header"}, status_code=400)
            form["client_id"], form["client_secret"] = basic
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
    async def me(request: Request, user: Annotated[User, Depends(current_user)],
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

    # ---------------------------------------------------------------- the service documents

    @router.get("/api/v1/{division}/{service}/$metadata", tags=["system"], response_class=Response,
                responses={200: {"content": {"application/xml": {}}, "description": "The EDMX service document"}})
    async def metadata(division: int, service: str, user: Annotated[User, Depends(division_user)]) -> Response:
        """The OData service document of one service (crm, salesorder, logistics, ...): its entity sets."""
        document = service_metadata(service)
        if document is None:
            raise NotFound(f"Not found: the mock has no service '{service}'; it serves "
                                  + ", ".join(metadata_services()))
        return Response(document, media_type="application/xml")

    # ---------------------------------------------------------------- entity sets

    @router.get("/api/v1/{division}/hrm/Divisions", tags=["system"])
    @router.get("/api/v1/{division}/system/Divisions", tags=["system"])
    async def divisions(request: Request, division: int, user: Annotated[User, Depends(division_user)],
                  accept: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """The divisions the user can reach (hrm/Divisions and system/Divisions; reference §3.9)."""
        _check_accept(accept)
        rows = []
        for number in user.divisions:
            uri = f"{_base(request)}/api/v1/{division}/system/Divisions({number})"
            rows.append({"__metadata": {"uri": uri, "type": "Exact.Web.Api.Models.HRM.Division"},
                         "Code": number, "Description": f"Division {number}",
                         "Current": number == user.current_division, "Hid": str(number), "Status": 1})
        return {"d": {"results": rows}}

    @router.get("/api/v1/{division}/system/Users", tags=["system"], include_in_schema=False)
    async def system_users_with_division(division: int) -> None:
        """system/Users refuses a division in the URL (reference §3.8)."""
        raise NotImplementedHere("Not Implemented")

    for entity_set in ENTITY_SETS.values():
        _add_entity_routes(router, entity_set, get_state, division_user, current_user)
        if entity_set.sync_path:
            _add_sync_route(router, entity_set, get_state, division_user)

    @router.get("/api/v1/{division}/sync/Deleted", tags=["sync"], response_model=dict[str, Any])
    async def sync_deleted(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        _check_accept(accept)
        state = get_state()
        return _sync_page(request, lambda after: state.deleted_after(division, after), filter_, skiptoken,
                          "Exact.Web.Api.Models.Sync.Deleted",
                          lambda r: to_json({
                              "Timestamp": str(r["_timestamp"]), "ID": r["ID"], "EntityKey": r["EntityKey"],
                              "EntityType": r["EntityType"], "DeletedBy": r["DeletedBy"],
                              "DeletedDate": to_wire(r["DeletedDate"], "Edm.DateTime"), "Division": r["Division"],
                          }))

    return router


_LOWER_BOUND = re.compile(r"^\s*Timestamp\s+(gt|ge)\s+(\d+)L?\s*$", re.IGNORECASE)


def _lower_bound(filter_: str | None) -> int:
    """The Timestamp a sync $filter starts above, when it is the usual `Timestamp gt N` (or `ge`): the rows
    are then read from the index above it. Any other filter is applied row by row to every change."""
    m = _LOWER_BOUND.match(filter_ or "")
    if not m:
        return -1
    return int(m.group(2)) - (1 if m.group(1).lower() == "ge" else 0)


def _sync_page(
    request: Request, rows_after: Callable[[int], list[dict[str, Any]]], filter_: str | None, skiptoken: str | None,
    type_name: str, render: Callable[[dict[str, Any]], bytes],
) -> Response:
    """One page of a sync endpoint: rows above a Timestamp, in Timestamp order, 1000 at a time."""
    predicate: Filter | None = None
    if filter_:
        predicate = parse_filter(filter_, lambda n: n == "Timestamp", type_name)
    after = -1
    if skiptoken:
        try:
            after = int(skiptoken.rstrip("Ll"))
        except ValueError as exc:
            raise BadRequest("Bad Request - Error in query syntax.") from exc
    chosen = [r for r in rows_after(max(after, _lower_bound(filter_)))
              if predicate is None or predicate({"Timestamp": r["_timestamp"]})]
    page = chosen[:SYNC_PAGE_SIZE]
    tail = {}
    if len(chosen) > SYNC_PAGE_SIZE:
        tail["__next"] = _next_url(request, **{"$skiptoken": f"{page[-1]['_timestamp']}L"})
    return _results([render(r) for r in page], tail)


def _add_sync_route(
    router: APIRouter, entity_set: EntitySetDef, get_state: StateGetter, division_user: Callable[..., Any]
) -> None:
    extras = ("Timestamp", *entity_set.sync_extra)

    def known(name: str) -> bool:
        return name in extras or name in entity_set.properties

    edm_types = entity_set.edm_types | {"Timestamp": "Edm.Int64"}

    async def sync_list(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        select: Annotated[str | None, Query(alias="$select")] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        _check_accept(accept)
        chosen = parse_select(select, known, entity_set.type_name)
        if filter_:
            parsed = parse_filter(filter_, known, entity_set.type_name, edm_types)
            if parsed.fields - {"Timestamp"}:
                raise BadRequest("This $filter parameter is not supported for this resource")
        state = get_state()
        rows = _Rows(request, division, entity_set, chosen, state)
        return _sync_page(
            request, lambda after: state.rows_after(division, entity_set, after), filter_, skiptoken,
            entity_set.type_name,
            lambda r: rows(r, {"Timestamp": str(r["_timestamp"]), "ID": r[entity_set.key]}),
        )

    router.add_api_route(f"/api/v1/{{division}}/sync/{entity_set.sync_path}", sync_list, methods=["GET"],
                         response_model=dict[str, Any],
                         tags=["sync"], name=f"sync_{entity_set.name}",
                         openapi_extra=entity_operation(entity_set, "sync"))


def _page(
    request: Request, division: int, entity_set: EntitySetDef, state: ExactState, rows: list[dict[str, Any]],
    *, page_size: int, chosen: list[str] | None, order: list[tuple[str, bool]], top: int | None, skip: int | None,
    skiptoken: str | None, inlinecount: str | None, expand: dict[str, list[str] | None],
) -> Response:
    """One page of a list: key order (or $orderby), continuation by $skiptoken=guid'<last key>'."""
    rows.sort(key=lambda r: str(r[entity_set.key]))
    for name, descending in reversed(order):
        rows.sort(key=_order_key(name), reverse=descending)
    total = len(rows)
    if skiptoken:
        if order:
            raise BadRequest("Bad Request - $skiptoken cannot be combined with $orderby.")
        m = _KEY.match(skiptoken)
        if not m:
            raise BadRequest("Bad Request - Error in query syntax.")
        rows = [r for r in rows if str(r[entity_set.key]) > m.group(1).lower()]
    if skip:
        rows = rows[skip:]
    size = page_size if top is None else min(top, page_size)
    page = rows[:size]
    rows_of = _Rows(request, division, entity_set, chosen, state, expand)
    with state.lock:
        written = [rows_of(r) for r in page]
    body: dict[str, Any] = {}
    if inlinecount == "allpages":
        body["__count"] = str(total)
    remaining_top = None if top is None else top - len(page)
    if len(rows) > len(page) and (remaining_top is None or remaining_top > 0) and page:
        changes = {"$skiptoken": f"guid'{page[-1][entity_set.key]}'"} if not order else {
            "$skip": str((skip or 0) + len(page))}
        if remaining_top is not None:
            changes["$top"] = str(remaining_top)
        body["__next"] = _next_url(request, **changes)
    return _results(written, body)


def _add_entity_routes(
    router: APIRouter, entity_set: EntitySetDef, get_state: StateGetter, division_user: Callable[..., Any],
    current_user: Callable[..., Any],
) -> None:
    prefix = "/api/v1/{division}" if entity_set.needs_division else "/api/v1"
    path = f"{prefix}/{entity_set.path}"
    item_path = path + "({key})"
    auth = division_user if entity_set.needs_division else current_user

    def known(name: str) -> bool:
        return name in entity_set.properties

    edm_types = entity_set.edm_types

    def parse_key(key: str) -> str:
        m = _KEY.match(key)
        if not m:
            raise BadRequest("Bad Request - Error in query syntax.")
        return m.group(1).lower()

    def filtered(division: int, filter_: str | None, mandatory: bool = True) -> list[dict[str, Any]]:
        predicate = parse_filter(filter_, known, entity_set.type_name, edm_types) if filter_ else None
        if (mandatory and entity_set.mandatory_filter
                and (predicate is None or not predicate.fields & entity_set.mandatory_filter)):
            raise BadRequest(
                "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a "
                "$filter parameter with one of the following fields in the url:"
                + ",".join(sorted(entity_set.mandatory_filter)) + ".",
            )
        state = get_state()
        with state.lock:
            rows = state.rows(division, entity_set)
            if predicate is None:
                return rows
            if not predicate.fields & derived_names(entity_set.name):  # the stored values answer it
                return [r for r in rows if predicate(r)]
            reader = state.reader(division)
            return [r for r in rows if predicate(reader.view(entity_set, r, predicate.fields))]

    async def list_(
        request: Request, user: Annotated[User, Depends(auth)], division: int = 0,
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
        select: Annotated[str | None, Query(alias="$select")] = None,
        expand: Annotated[str | None, Query(alias="$expand")] = None,
        top: Annotated[int | None, Query(alias="$top", ge=0)] = None,
        skip: Annotated[int | None, Query(alias="$skip", ge=0)] = None,
        skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
        orderby: Annotated[str | None, Query(alias="$orderby")] = None,
        inlinecount: Annotated[str | None, Query(alias="$inlinecount")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        _check_accept(accept)
        division = division or user.current_division
        chosen = parse_select(select, known, entity_set.type_name)
        order = parse_orderby(orderby, known, entity_set.type_name)
        expansions = _expansions(expand, chosen, entity_set)
        return _page(request, division, entity_set, get_state(), filtered(division, filter_), page_size=PAGE_SIZE,
                     chosen=chosen, order=order, top=top, skip=skip, skiptoken=skiptoken, inlinecount=inlinecount,
                     expand=expansions)

    async def count(user: Annotated[User, Depends(auth)], division: int = 0,
              filter_: Annotated[str | None, Query(alias="$filter")] = None) -> PlainTextResponse:
        return PlainTextResponse(str(len(filtered(division or user.current_division, filter_))))

    async def create(
        request: Request, division: int, user: Annotated[User, Depends(division_user)],
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        body = await _json_body(request)
        state = get_state()
        record = state.create(division, entity_set, body, user)
        with state.lock:
            rendered = _serialize(request, division, entity_set, record, None, state=state)
        if not (prefer and "return=representation" in prefer):
            # Without the Prefer header Exact answers with the key and every other property null.
            rendered = {k: (v if k in ("__metadata", entity_set.key) or isinstance(v, dict) else None)
                        for k, v in rendered.items()}
        return JSONResponse({"d": rendered}, status_code=201,
                            headers={"Location": rendered["__metadata"]["uri"]})

    async def get_one(
        request: Request, key: str, user: Annotated[User, Depends(auth)], division: int = 0,
        select: Annotated[str | None, Query(alias="$select")] = None,
        expand: Annotated[str | None, Query(alias="$expand")] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        _check_accept(accept)
        division = division or user.current_division
        chosen = parse_select(select, known, entity_set.type_name)
        state = get_state()
        record = state.get(division, entity_set, parse_key(key))
        row = _Rows(request, division, entity_set, chosen, state, _expansions(expand, chosen, entity_set))(record)
        return _json(b'{"d":' + row + b"}")

    async def update(request: Request, division: int, key: str,
                     user: Annotated[User, Depends(division_user)]) -> Response:
        body = await _json_body(request)
        get_state().update(division, entity_set, parse_key(key), body, user)
        return Response(status_code=204)

    async def delete(division: int, key: str, user: Annotated[User, Depends(division_user)]) -> Response:
        get_state().delete(division, entity_set, parse_key(key), user)
        return Response(status_code=204)

    tag = entity_set.path
    name = f"{entity_set.service}_{entity_set.name}"
    router.add_api_route(path, list_, methods=["GET"], response_model=dict[str, Any], tags=[tag],
                         name=f"list_{name}",
                         openapi_extra=entity_operation(entity_set, "list"))
    router.add_api_route(path + "/$count", count, methods=["GET"], tags=[tag], name=f"count_{name}",
                         openapi_extra=entity_operation(entity_set, "count"),
                         response_class=PlainTextResponse)
    router.add_api_route(item_path, get_one, methods=["GET"], response_model=dict[str, Any], tags=[tag],
                         name=f"get_{name}",
                         openapi_extra=entity_operation(entity_set, "get"))
    if not entity_set.read_only:
        router.add_api_route(path, create, methods=["POST"], tags=[tag], name=f"create_{name}", status_code=201,
                             openapi_extra=entity_operation(entity_set, "create"))
        router.add_api_route(item_path, update, methods=["PUT"], tags=[tag], name=f"update_{name}",
                             openapi_extra=entity_operation(entity_set, "update"),
                             status_code=204)
        router.add_api_route(item_path, delete, methods=["DELETE"], tags=[tag], name=f"delete_{name}",
                             openapi_extra=entity_operation(entity_set, "delete"),
                             status_code=204)
    if entity_set.lines is not None:
        line_set = ENTITY_SETS[entity_set.lines.set_name]

        async def lines(request: Request, division: int, key: str, user: Annotated[User, Depends(division_user)],
                  accept: Annotated[str | None, Header()] = None) -> Response:
            _check_accept(accept)
            state = get_state()
            record = state.get(division, entity_set, parse_key(key))
            rows = state.lines_of(division, entity_set, str(record[entity_set.key]))
            rows_of = _Rows(request, division, line_set, None, state)
            return _results([rows_of(r) for r in rows])

        router.add_api_route(item_path + f"/{entity_set.lines.nav}", lines, methods=["GET"],
                             response_model=dict[str, Any], tags=[tag],
                             name=f"lines_{name}", openapi_extra=entity_operation(line_set, "lines"))
    if entity_set.bulk_path:
        async def bulk(
            request: Request, division: int, user: Annotated[User, Depends(division_user)],
            filter_: Annotated[str | None, Query(alias="$filter")] = None,
            select: Annotated[str | None, Query(alias="$select")] = None,
            top: Annotated[int | None, Query(alias="$top", ge=0)] = None,
            skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
            accept: Annotated[str | None, Header()] = None,
        ) -> Response:
            _check_accept(accept)
            if not select and top != 1:
                raise BadRequest("Please add a $select or a $top=1 statement to the query string.")
            chosen = parse_select(select, known, entity_set.type_name)
            return _page(request, division, entity_set, get_state(), filtered(division, filter_, mandatory=False),
                         page_size=BULK_PAGE_SIZE, chosen=chosen, order=[], top=top, skip=None, skiptoken=skiptoken,
                         inlinecount=None, expand={})

        router.add_api_route(f"/api/v1/{{division}}/bulk/{entity_set.bulk_path}", bulk, methods=["GET"],
                             response_model=dict[str, Any],
                             tags=["bulk"], name=f"bulk_{name}", openapi_extra=entity_operation(entity_set, "bulk"))


def _order_key(name: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    """Sort nulls first, then by value; values of one property share a type, so their text sorts them."""
    def key(record: dict[str, Any]) -> tuple[bool, str]:
        value = record.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (value is not None, f"{float(value) + 1e15:040.6f}")
        return (value is not None, "" if value is None else str(value))
    return key


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if too_deep(raw):
        raise BadRequest(f"Error processing request stream. The JSON nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Error processing request stream. The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadRequest("Error processing request stream. A JSON object is expected.")
    return body
