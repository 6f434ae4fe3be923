"""A route that reads its parameters from a plan made once, when the route is made.

FastAPI reads a route's parameters anew on every request: it walks the route's dependencies and, for every
parameter, asks again what kind of annotation it has (a sequence? JSON? a model of parameters?) before it
validates the value. In process that was a quarter of a mock's answer: more than the mock's own work for
a read of Customcrm's change feed. A `PlannedRoute` asks those questions once. Per request it takes each
parameter from where the plan says, validates a present value with the same field FastAPI would use (a
plain text parameter needs none), and calls the dependencies, each once per request as FastAPI caches
them. Values, errors and their order are FastAPI's: the mocks' tests hold every route of both mocks to it.

What the plan does not cover is left to FastAPI's own handler: a body parameter, cookies, a synchronous or
generator dependency, a model of parameters, aliases with choices, and any route while dependency
overrides are set.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import types
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["NotPlanned", "PlannedRoute", "plan_of", "takes_many"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_ABSENT = object()
_MANY = (collections.abc.Sequence, collections.abc.Set)


class NotPlanned(Exception):
    """Something about a route the plan does not read as FastAPI would: FastAPI's own handler takes it."""


def takes_many(annotation: Any) -> bool:
    """Whether a parameter of this annotation takes every value given (`?resource=a&resource=b`), as FastAPI
    decides it: a sequence or set other than text, or a union with one."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return takes_many(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(takes_many(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    for candidate in (annotation, origin):
        if isinstance(candidate, type) and issubclass(candidate, _MANY) and not issubclass(candidate, str | bytes):
            return True
    return False


def _plain_text(annotation: Any) -> bool:
    return annotation in (str, str | None)


@dataclass(frozen=True)
class _Parameter:
    """One path, query or header parameter: where it is read, and how."""

    name: str
    where: str  # "path", "query" or "header"
    key: str  # its name in the request
    many: bool
    required: bool
    default: Any
    validate_default: bool
    plain: bool  # text taken as it is: validating it would give it back unchanged
    field: Any  # FastAPI's field for it: what validates a value and words an error

    @property
    def loc(self) -> tuple[str, str]:
        return (self.where, self.key)

    def read(self, source: Mapping[str, Any], values: dict[str, Any]) -> tuple[Any, list[Any]]:
        """The parameter's value from `source` (path parameters, query or headers), or the errors."""
        if self.many and self.where != "path":
            found: Any = source.getlist(self.key) or _ABSENT  # type: ignore[attr-defined]
        else:
            found = source.get(self.key, _ABSENT)
            if found is None:
                found = _ABSENT
        if found is _ABSENT:
            if self.required:
                return None, [_missing(self.loc)]
            if not self.validate_default:
                return copy.deepcopy(self.default), []
            found = copy.deepcopy(self.default)
        elif self.plain and type(found) is str:
            return found, []
        value, errors = self.field.validate(found, values, loc=self.loc)
        return value, list(errors or ())  # FastAPI before 0.116 gives None for no errors


def _missing(loc: tuple[str, str]) -> dict[str, Any]:
    """Pydantic's error for a required value not given, as FastAPI words it (no input)."""
    error = dict(ValidationError.from_exception_data("Field required", [{"type": "missing", "loc": loc, "input": {}}])
                 .errors(include_url=False)[0])
    error["input"] = None
    return error


def _parameter(field: Any) -> _Parameter:
    info = field.field_info
    if not isinstance(info, params.Path | params.Query | params.Header):
        raise NotPlanned(f"a {type(info).__name__} parameter")
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        raise NotPlanned("a model of parameters")
    if info.validation_alias not in (None, field.alias) or getattr(field, "config", None):
        raise NotPlanned("aliases other than the parameter's own")
    return _Parameter(name=field.name, where=info.in_.value, key=field.alias, many=takes_many(annotation),
                      required=info.is_required(), default=field.default,
                      validate_default=bool(info.validate_default),
                      plain=_plain_text(annotation) and not info.metadata, field=field)


def _is_coroutine(call: Any) -> bool:
    if inspect.isroutine(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)  # an instance, such as a security scheme


@dataclass(frozen=True)
class _Step:
    """A dependant (the endpoint or one of its dependencies) with what it needs, in FastAPI's order: its own
    dependencies first, then path, query and header parameters, then the request itself."""

    call: Any
    name: str | None
    use_cache: bool
    dependencies: tuple[_Step, ...]
    parameters: tuple[_Parameter, ...]
    request_names: tuple[str, ...]  # the parameters that take the request itself (as a Request or a connection)

    @classmethod
    def of(cls, dependant: Dependant) -> _Step:
        if dependant.call is None or not _is_coroutine(dependant.call):
            raise NotPlanned("a synchronous or generator callable")
        if (dependant.cookie_params or dependant.body_params or dependant.background_tasks_param_name
                or dependant.response_param_name or dependant.security_scopes_param_name
                or dependant.websocket_param_name or getattr(dependant, "concurrency", None) is not None):
            raise NotPlanned("cookies, a body, background tasks, a response, scopes or a websocket")
        fields = [*dependant.path_params, *dependant.query_params, *dependant.header_params]
        return cls(call=dependant.call, name=dependant.name, use_cache=dependant.use_cache,
                   dependencies=tuple(cls.of(sub) for sub in dependant.dependencies),
                   parameters=tuple(_parameter(field) for field in fields),
                   request_names=tuple(name for name in (dependant.http_connection_param_name,
                                                         dependant.request_param_name) if name))

    async def solve(self, request: Request, sources: dict[str, Mapping[str, Any]], cache: dict[Any, Any]
                    ) -> tuple[dict[str, Any], list[Any]]:
        """The keyword arguments of this step's call, or the errors that keep it from being called. `sources`:
        the request's path parameters, query and headers, by where a parameter is read."""
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for step in self.dependencies:
            given, failed = await step.solve(request, sources, cache)
            if failed:
                errors.extend(failed)
                continue
            if step.use_cache and step.call in cache:
                solved = cache[step.call]
            else:
                solved = await step.call(**given)
                cache.setdefault(step.call, solved)
            if step.name is not None:
                values[step.name] = solved
        for parameter in self.parameters:
            value, failed = parameter.read(sources[parameter.where], values)
            if failed:
                errors.extend(failed)
            else:
                values[parameter.name] = value
        for name in self.request_names:
            values[name] = request
        return values, errors


def plan_of(route: APIRoute) -> _Step:
    """The plan of a route's parameters; `NotPlanned` says why there is none."""
    if route.body_field is not None:
        raise NotPlanned("a body parameter")
    return _Step.of(route.dependant)


class PlannedRoute(APIRoute):
    """An `APIRoute` whose parameters are read from its plan (FastAPI's own handler where it has none)."""

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        try:
            plan = plan_of(self)
        except NotPlanned:
            return fastapi_handler
        status_code = self.status_code
        response_field = self.response_field
        overrides = self.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await fastapi_handler(request)
            sources = {"path": request.path_params, "query": request.query_params, "header": request.headers}
            values, errors = await plan.solve(request, sources, {})
            if errors:
                raise RequestValidationError(errors, body=None)
            answer = await plan.call(**values)
            if isinstance(answer, Response):
                return answer
            return _data_response(answer, response_field, status_code)

        return handler


def _data_response(answer: Any, field: Any, status_code: int | None) -> Response:
    """What an endpoint returned other than a response, as JSON: checked against its declared type first,
    where it declares one (a `ResponseValidationError` when it is not, as FastAPI raises)."""
    if field is not None:
        value, errors = field.validate(answer, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors, body=answer)
        return JSONResponse(field.serialize(value, mode="json", by_alias=True), status_code=status_code or 200)
    return JSONResponse(jsonable_encoder(answer), status_code=status_code or 200)
