"""Every error the Exact mock answers, in Exact's error body: its own named errors, Starlette's 404 and 405,
and FastAPI's request validation (as Exact's 400)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mocks.common.edges import allowed_methods
from mocks.exact.errors import ExactError, error_body

__all__ = ["install_error_handlers"]


def install_error_handlers(app: FastAPI) -> None:
    async def exact_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ExactError)
        return JSONResponse(error_body(exc.message), status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        text = "Not found" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            text = "Method not allowed"
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(error_body(text), status_code=exc.status_code, headers=headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(error_body(f"Bad Request - {where}: {first.get('msg')}"), status_code=400)

    app.add_exception_handler(ExactError, exact_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
