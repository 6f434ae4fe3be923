"""Every error the Customcrm mock answers, as problem details: its own problems, Starlette's 404 and 405, and
FastAPI's request validation (one entry per invalid field)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mocks.common.edges import allowed_methods
from mocks.customcrm.errors import Problem, problem_body

__all__ = ["install_error_handlers", "problem_response"]


def problem_response(status: int, detail: str, errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None, instance: str | None = None) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, errors, instance), status_code=status, headers=headers,
                        media_type="application/problem+json")


def install_error_handlers(app: FastAPI) -> None:
    async def problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers, request.url.path)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, str(exc.detail), headers=headers, instance=request.url.path)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or str(e.get("loc", [""])[0]),
                   "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
        return problem_response(400, "The request is not valid.", errors, instance=request.url.path)

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
